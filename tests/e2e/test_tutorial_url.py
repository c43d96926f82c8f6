"""`daisee tutorial --chain URL`: unattended on the URL of an anvil and a ganache node, checked on the chain;
refused in one line on a node that cannot fund it, and on a resume whose node lost the loop.

A node that is not a development one at all (a geth, a PoA network's node) cannot be started here: no such
client installs from PyPI, npm or Debian, and anvil and ganache name themselves development nodes in
`web3_clientVersion`. The refusal is the same one line; these tests reach it with real anvil and ganache
nodes started without accounts, with poor accounts, and with locked accounts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.cli import cli
from daisee.loop import Loop
from daisee.tutorial.steps import HOUSEHOLDS, INTERVALS, Context, traces

pytestmark = pytest.mark.node


def _tutorial(*args: str) -> Result:
    return CliRunner().invoke(cli, ["tutorial", "--yes", *args], catch_exceptions=False)


@dataclass
class _Node(LocalNode):
    """A LocalNode started with extra command-line options."""

    extra: tuple[str, ...] = field(default=())

    def command(self) -> list[str]:
        return [*super().command(), *self.extra]


def _check_on_chain(url: str, workdir: Path, chain_id: int) -> None:
    """The deployment record, the progress and the report the run left, and what the chain holds."""
    chain = connect(url)
    assert chain.chain_id == chain_id
    record = json.loads((workdir / "deployments" / f"{chain_id}.json").read_text())
    assert record["chain_id"] == chain_id
    assert record["network"] == chain.kind
    progress = json.loads((workdir / "progress.json").read_text())
    assert progress["chain"] == url
    assert progress["done"] == 12
    state = progress["state"]
    assert record["address"] == state["loop"]
    assert chain.w3.eth.get_code(record["address"])
    assert (workdir / "report.html").read_text().startswith("<!")

    loop = Loop(Sender(chain, chain.w3.to_checksum_address(record["deployer"])), record["address"])
    assert loop.next_to_settle() == INTERVALS
    ctx = Context(chain, workdir, Console(quiet=True), state)
    expected = traces(ctx)
    accounts = {meter.meter_id: meter.payout for meter in loop.meters()}
    assert len(accounts) == len(HOUSEHOLDS)
    ledger = 0
    for name, trace in expected.items():
        payout = accounts[ctx.meter_id(name)]
        produced, consumed, self_consumed = loop.tokens(payout)
        assert produced == trace.exports[INTERVALS] - trace.exports[0], name
        assert consumed == trace.imports[INTERVALS] - trace.imports[0], name
        assert 0 <= self_consumed <= consumed
        ledger += loop.ledger_balance(payout)
    ledger += loop.ledger_balance(loop.config().treasury)
    assert ledger == 0
    assert loop.ledger_balance(accounts[ctx.meter_id("producer")]) > 0
    assert loop.ledger_balance(accounts[ctx.meter_id("consumer")]) < 0


def _run_and_check(url: str, workdir: Path, chain_id: int) -> None:
    result = _tutorial("--chain", url, "--workdir", str(workdir))
    assert result.exit_code == 0, result.output
    assert "BAD_SIGNATURE" in result.stdout
    assert "ledger sum (treasury included): 0" in result.stdout
    _check_on_chain(url, workdir, chain_id)

    resumed = _tutorial("--chain", url, "--from-step", "11", "--workdir", str(workdir))
    assert resumed.exit_code == 0, resumed.output
    assert "step 10/12" not in resumed.stdout
    assert "ledger sum (treasury included): 0" in resumed.stdout


def test_tutorial_on_an_anvil_url_then_resume_after_a_restart(project_root: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "tut"
    with LocalNode("anvil", project_root=project_root) as node:  # its own node: the test restarts it
        port = node.port
        _run_and_check(node.url, workdir, 31337)
    with LocalNode("anvil", port=port, project_root=project_root) as node:  # the same URL, a fresh chain
        result = _tutorial("--chain", node.url, "--from-step", "10", "--workdir", str(workdir))
    _assert_one_error_line(result, "is not on anvil", "start again without --from-step")


def test_tutorial_on_a_ganache_url(ganache_node: LocalNode, tmp_path: Path) -> None:
    _run_and_check(ganache_node.url, tmp_path / "tut", 1337)


def _assert_one_error_line(result: Result, *needles: str) -> None:
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("anvil", ("--accounts", "0")),  # no unlocked account at all
        ("anvil", ("--balance", "5")),  # unlocked accounts too poor to fund the tutorial's (13 ETH)
        ("ganache", ("--wallet.lock",)),  # funded accounts, but locked: the node signs nothing
    ],
)
def test_node_that_cannot_fund_is_refused_in_one_line(
    kind: str, extra: tuple[str, ...], project_root: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "tut"
    with _Node(kind, project_root=project_root, extra=extra) as node:
        result = _tutorial("--chain", node.url, "--workdir", str(workdir))
    _assert_one_error_line(result, "has no unlocked account holding", "--chain anvil")
    assert not workdir.exists()  # nothing written before the refusal


def test_unreachable_url_is_one_line(tmp_path: Path) -> None:
    with LocalNode("anvil") as node:
        url = node.url  # a port that answered a moment ago and no longer does
    result = _tutorial("--chain", url, "--workdir", str(tmp_path / "tut"))
    _assert_one_error_line(result, "cannot reach the RPC node")
    assert not (tmp_path / "tut").exists()
