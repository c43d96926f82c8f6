"""The `daisee` commands end to end: what a PMO types, what it gets, and what is left on disk."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from daisee import __version__
from daisee.chain.compiler import SOLC_VERSION
from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode, free_port
from daisee.chain.transact import Sender
from daisee.cli import cli
from daisee.loop import Loop
from tests.e2e.conftest import Daisee
from tests.rpc_proxy import QuirkyNodeProxy

PASSWORD = {"DAISEE_PASSWORD": "correct horse battery staple"}


def _all_commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _all_commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_version_names_daisee_the_pinned_solc_and_the_evm_levels_shipped(daisee: Daisee) -> None:
    outcome = daisee("--version")
    assert outcome.exit_code == 0
    assert outcome.stdout.strip() == f"daisee {__version__} (solc {SOLC_VERSION}, evm shanghai/london)"


@pytest.mark.parametrize("command", _all_commands(cli), ids=lambda c: " ".join(c) or "daisee")
def test_every_command_has_help(daisee: Daisee, command: tuple[str, ...]) -> None:
    outcome = daisee(*command, "--help")
    assert outcome.exit_code == 0
    assert "Usage: " in outcome.stdout
    assert len(outcome.stdout.splitlines()) > 3


def test_demo_runs_a_loop_and_reports_what_the_chain_says(daisee: Daisee, tmp_path: Path) -> None:
    outcome = daisee("demo", "--households", "5", "--intervals", "4", "--seed", "7", "--json", "out.json")

    assert outcome.exit_code == 0, outcome.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    held = result["held"]  # what the PMO prepaid for the consumers: the members' net positions sum to it
    assert held == 20_000_000 * 3
    said = " ".join(outcome.stdout.split())
    assert f"the loop holds {held / 1e6:.2f} for its members; their net positions sum to {held / 1e6:.2f}" in said
    assert [m["id"] for m in result["members"]] == [f"house-0{i}" for i in range(1, 6)]
    assert [m["kind"] for m in result["members"]] == ["producer", "consumer", "prosumer", "producer", "consumer"]
    assert [i["t"] for i in result["intervals"]] == [0, 1, 2, 3]
    assert set(result["ledger"]) == {f"house-0{i}" for i in range(1, 6)} | {"treasury"}
    assert sum(result["ledger"].values()) == held
    for name, account in result["accounts"].items():
        assert account["net"] == account["balance"] + account["receivable"] - account["debt"] == result["ledger"][name]
    for name, tokens in result["tokens"].items():
        rows = [i["members"].get(name, {}) for i in result["intervals"]]
        assert tokens["consumed"] == sum(r.get("consumption", 0) for r in rows)
        assert tokens["produced"] == sum(r.get("production", 0) for r in rows)
        assert tokens["self_consumed"] == sum(r.get("allocated", 0) for r in rows)
    assert not (tmp_path / "deployments").exists()


def test_demo_is_deterministic_by_seed(daisee: Daisee, tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        assert daisee("demo", "--households", "3", "--intervals", "2", "--seed", "42", "--json", name).exit_code == 0
    first, second = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert first["members"] == second["members"]
    assert first["intervals"] == second["intervals"]


def _euro_token(url: str) -> str:
    """A settlement token already on the chain, deployed by someone else."""
    address, _ = Sender.dev(connect(url), 6).deploy("EuroToken")
    return str(address)


def test_demo_settles_in_a_token_already_on_the_chain(daisee: Daisee, anvil_node: LocalNode, tmp_path: Path) -> None:
    token = _euro_token(anvil_node.url)
    demo = ("demo", "--chain", anvil_node.url, "--token", token, "--households", "3", "--intervals", "2")
    outcome = daisee(*demo, "--json", "out.json")

    assert outcome.exit_code == 0, outcome.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    loop = Loop(Sender.dev(connect(anvil_node.url)), result["loop"])
    assert loop.contract.functions.settlementToken().call() == token
    assert result["held"] == 0  # nothing prepaid in a token the demo did not mint
    assert sum(result["ledger"].values()) == 0
    assert sum(r["consumption"] for i in result["intervals"] for r in i["members"].values()) > 0


def test_demo_on_a_real_network_waits_for_each_interval_in_real_time(
    daisee: Daisee, anvil_node: LocalNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a proxy that calls itself geth, anvil is a real network to daisee: nobody moves its clock but
    time itself, played here faster: each pause of the demo passes as much time on the chain."""
    token = _euro_token(anvil_node.url)
    created = daisee("account", "new", "pmo", "--json", env=PASSWORD)
    pmo = created.json()["address"]
    funder = Sender.dev(connect(anvil_node.url), 3)
    funder.chain.w3.eth.send_transaction({"from": funder.address, "to": pmo, "value": 10**18})
    waited: list[float] = []

    def time_passes(seconds: float) -> None:
        waited.append(seconds)
        anvil = connect(anvil_node.url).w3.provider
        anvil.make_request("evm_increaseTime", [max(1, round(seconds))])  # type: ignore[arg-type]
        anvil.make_request("evm_mine", [])  # type: ignore[arg-type]

    monkeypatch.setattr("daisee.demo.sleep", time_passes)
    with QuirkyNodeProxy(anvil_node.url, client="Geth/v1.13.15-stable/linux-amd64/go1.21.6") as node:
        real = ("--chain", node.url, "--account", "pmo", "--confirmations", "0")
        refused = daisee("demo", *real, env=PASSWORD)
        assert "the test euro is for development chains only" in _one_line_error(refused.stderr)
        demo = ("demo", *real, "--token", token, "--households", "3", "--intervals", "2", "--interval-seconds", "60")
        outcome = daisee(*demo, "--json", "out.json", env=PASSWORD)

    assert outcome.exit_code == 0, outcome.stderr
    assert "daisee demo on rpc (chain id 31337)" in outcome.stdout
    result = json.loads((tmp_path / "out.json").read_text())
    assert [i["t"] for i in result["intervals"]] == [0, 1]
    assert sum(r["consumption"] for i in result["intervals"] for r in i["members"].values()) > 0
    assert sum(result["ledger"].values()) == 0
    assert sum(waited) >= 300 + 60  # the lead before genesis, then interval 0 at least
    loop = Loop(Sender.dev(connect(anvil_node.url)), result["loop"])
    assert loop.pmo() == pmo
    assert loop.next_to_settle() == 2


def test_deploy_records_the_loop_and_refuses_to_overwrite_it(daisee: Daisee, anvil_node: LocalNode) -> None:
    first = daisee("deploy", "--chain", anvil_node.url, "--interval-seconds", "600", "--price", "0.125", "--json")
    assert first.exit_code == 0, first.stderr
    record_path = Path("deployments/31337.json")
    record = json.loads(record_path.read_text())
    assert record["chain_id"] == 31337
    assert record["contracts"]["EnergyLoop"] == first.json()["address"]
    assert record["parameters"] | {"genesis": 0} == {
        "genesis": 0,
        "interval_seconds": 600,
        "key": "prorata",
        "price_per_wh": 125,
        "price_per_kwh": "0.125",
        "grace_seconds": 200,
        "notice_seconds": 0,  # a development chain
        "price_cap_per_wh": 250,  # twice the price
        "treasury": record["deployer"],
        "gas_used": record["parameters"]["gas_used"],
    }
    assert record["contracts"]["SettlementToken"] == record["token"]

    again = daisee("deploy", "--chain", anvil_node.url)
    assert again.exit_code == 1
    assert "already recorded for chain 31337" in _one_line_error(again.stderr)
    assert json.loads(record_path.read_text()) == record

    forced = daisee("deploy", "--chain", anvil_node.url, "--force", "--json")
    assert forced.exit_code == 0
    assert json.loads(record_path.read_text())["address"] == forced.json()["address"] != record["address"]


def test_pmo_adds_lists_and_removes_members(daisee: Daisee, anvil_node: LocalNode) -> None:
    chain = ("--chain", anvil_node.url)
    assert daisee("deploy", *chain).exit_code == 0
    signer = "0x" + "ab" * 20
    added = daisee("member", "add", "house-1", "--signer", signer, "--kind", "prosumer", *chain, "--json")
    assert added.exit_code == 0, added.stderr
    assert added.json()["payout"] == added.json()["signer"]
    assert daisee("member", "add", "house-2", "--signer", signer, "--kind", "producer", *chain).exit_code == 0

    assert daisee("member", "remove", "house-1", *chain).exit_code == 0

    active = daisee("member", "list", *chain, "--json").json()["meters"]
    everything = daisee("member", "list", "--all", *chain, "--json").json()["meters"]
    assert [m["kind"] for m in active] == ["producer"]
    assert [(m["kind"], m["active"]) for m in everything] == [("prosumer", False), ("producer", True)]
    assert everything[0]["meter_id"] == added.json()["meter_id"]


def test_deploy_signs_locally_with_a_keystore_account(daisee: Daisee, anvil_node: LocalNode) -> None:
    created = daisee("account", "new", "pmo", "--json", env=PASSWORD)
    assert created.exit_code == 0, created.stderr
    pmo = created.json()["address"]
    funder = Sender.dev(connect(anvil_node.url), 3)
    funder.chain.w3.eth.send_transaction({"from": funder.address, "to": pmo, "value": 10**18})

    outcome = daisee("deploy", "--chain", anvil_node.url, "--account", "pmo", "--json", env=PASSWORD)

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["deployer"] == pmo
    assert daisee("member", "add", "h", "--signer", pmo, "--kind", "consumer", "--chain", anvil_node.url).exit_code == 1


def test_account_import_and_list(daisee: Daisee, tmp_path: Path) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n")

    imported = daisee("account", "import", "gateway", "--key-file", str(key_file), "--json", env=PASSWORD)

    assert imported.exit_code == 0, imported.stderr
    assert imported.json()["address"] == "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
    listed = daisee("account", "list", "--json").json()
    assert [(a["name"], a["address"]) for a in listed] == [("gateway", "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")]
    assert "4c0883a6" not in Path(listed[0]["path"]).read_text()


# --- bad input: one line naming the cause and the fix, exit code 1, nothing half-written ---


def test_unreachable_rpc(daisee: Daisee) -> None:
    outcome = daisee("deploy", "--chain", f"http://127.0.0.1:{free_port()}")
    assert outcome.exit_code == 1
    assert "cannot reach the RPC node at http://127.0.0.1:" in _one_line_error(outcome.stderr)
    assert not Path("deployments").exists()


def test_unreachable_named_anvil_says_how_to_start_one(daisee: Daisee, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("daisee.chain.connect.DEFAULT_RPC_URL", f"http://127.0.0.1:{free_port()}")
    outcome = daisee("member", "list", "--chain", "anvil")
    assert "start one with `daisee chain start`" in _one_line_error(outcome.stderr)


def test_wrong_chain_id(daisee: Daisee, anvil_node: LocalNode) -> None:
    outcome = daisee("deploy", "--chain", anvil_node.url, "--chain-id", "246")
    assert outcome.exit_code == 1
    assert "has chain id 31337, expected 246" in _one_line_error(outcome.stderr)
    assert not Path("deployments").exists()


def test_missing_anvil_names_the_install_command(
    daisee: Daisee, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("daisee.chain.nodes.find_project_root", lambda: tmp_path)  # a machine without node_modules
    monkeypatch.setenv("PATH", str(tmp_path))
    outcome = daisee("chain", "start", "--port", str(free_port()))
    assert outcome.exit_code == 1
    assert "anvil not found: run `npm ci`" in _one_line_error(outcome.stderr)


def test_wrong_keystore_password(daisee: Daisee, anvil_node: LocalNode) -> None:
    assert daisee("account", "new", "pmo", env=PASSWORD).exit_code == 0
    outcome = daisee("deploy", "--chain", anvil_node.url, "--account", "pmo", env={"DAISEE_PASSWORD": "guess"})
    assert outcome.exit_code == 1
    assert "wrong password for account 'pmo'" in _one_line_error(outcome.stderr)
    assert not Path("deployments").exists()


def test_missing_password_without_a_terminal(daisee: Daisee) -> None:
    outcome = daisee("account", "new", "pmo")
    assert outcome.exit_code == 1
    assert "set DAISEE_PASSWORD or pass --password-file" in _one_line_error(outcome.stderr)


def test_account_without_funds_leaves_no_record(daisee: Daisee, anvil_node: LocalNode) -> None:
    assert daisee("account", "new", "broke", env=PASSWORD).exit_code == 0
    outcome = daisee("deploy", "--chain", anvil_node.url, "--account", "broke", env=PASSWORD)
    assert outcome.exit_code == 1
    assert re.search(r"account 0x[0-9a-fA-F]{40} .*fund it", _one_line_error(outcome.stderr))
    assert not Path("deployments/31337.json").exists()


def test_unknown_deployment(daisee: Daisee, anvil_node: LocalNode) -> None:
    outcome = daisee("member", "list", "--chain", anvil_node.url)
    assert outcome.exit_code == 1
    assert "no loop deployed on chain 31337" in _one_line_error(outcome.stderr)


def test_deployment_whose_chain_was_reset(daisee: Daisee, project_root: Path) -> None:
    with LocalNode("anvil", project_root=project_root) as node:
        assert daisee("deploy", "--chain", node.url).exit_code == 0
    with LocalNode("anvil", port=node.port, project_root=project_root):
        outcome = daisee("member", "list", "--chain", node.url)
    assert "was the node reset?" in _one_line_error(outcome.stderr)


def test_embedded_chain_keeps_no_deployment(daisee: Daisee) -> None:
    outcome = daisee("member", "list")
    assert outcome.exit_code == 1
    assert "embedded chain lives only inside one command" in _one_line_error(outcome.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--price", "0.1234"], "price 0.1234 per kWh is not a whole number of ledger units"),
        (["deploy", "--chain", "mainnet-please"], "unknown chain 'mainnet-please'"),
        (["member", "add", "0x12", "--signer", "0x" + "ab" * 20, "--kind", "consumer"], "meter id '0x12'"),
    ],
    ids=["price", "chain", "meter-id"],
)
def test_bad_values_are_named(daisee: Daisee, args: list[str], message: str) -> None:
    outcome = daisee(*args)
    assert outcome.exit_code == 1
    assert message in _one_line_error(outcome.stderr)


def test_installed_command_prints_no_traceback_for_a_user_mistake(tmp_path: Path) -> None:
    daisee_bin = Path(sys.executable).with_name("daisee")
    result = subprocess.run(
        [str(daisee_bin), "deploy", "--chain", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot reach the RPC node")


def test_bench_reports_gas_per_reading_and_per_settled_member(daisee: Daisee, anvil_node: LocalNode) -> None:
    outcome = daisee("bench", "--members", "12,100", "--chain", anvil_node.url, "--json", "bench.json")

    assert outcome.exit_code == 0, outcome.stderr
    figures = json.loads(Path("bench.json").read_text())
    assert set(figures["members"]) == {"12", "100"}
    # DESIGN.md's reading budget: a signed reading in a batch of 100 at most 35k, flat in the loop's size
    assert 15_000 < figures["members"]["100"]["reading_gas"] <= 35_000
    assert figures["marginal"]["reading_gas"] <= 30_000
    # and its settlement budget: one more member settled, tokens included, at most 30k
    assert 15_000 < figures["marginal"]["settle_gas"] <= 30_000
    for size in figures["members"].values():
        assert size["settle_gas"] > 15_000
        assert size["first_settle_gas"] > size["settle_gas"]  # fresh slots of each member's first interval
    assert figures["baseline"]["readings"] == 100
    assert figures["baseline"]["gas_per_reading"] > figures["marginal"]["reading_gas"]
