"""`daisee report` end to end: a demo run on anvil, reported from the chain, checked against the chain and
rendered by a real browser."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from daisee.chain.connect import connect
from daisee.chain.deploy import save_deployment
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.cli.report import report
from daisee.demo import DemoRun, run_demo, simulated_households
from daisee.domain import AllocationKey
from daisee.loop import Loop, MemberResult
from daisee.report import build_report
from daisee.report.data import money
from daisee.report.html import SERIES

HOUSEHOLDS, INTERVALS = 5, 4
CHROMIUM = "chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


@pytest.fixture(scope="module")
def anvil_run(anvil_node: LocalNode) -> tuple[Loop, DemoRun]:
    sender = Sender.dev(connect(anvil_node.url))
    run = run_demo(sender, simulated_households(HOUSEHOLDS, 5), AllocationKey.PRORATA, INTERVALS, seed=5)
    return Loop(sender, run.deployment.address), run


@pytest.fixture(scope="module")
def reported(anvil_run: tuple[Loop, DemoRun], anvil_node: LocalNode, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder where `daisee report` wrote report.html, out.csv and intervals.csv; report.json is its stdout."""
    _, run = anvil_run
    folder = tmp_path_factory.mktemp("report")
    save_deployment(run.deployment, folder / "deployments")
    args = ["--chain", anvil_node.url, "--deployments", str(folder / "deployments"), "--json"]
    args += ["--out", str(folder / "report.html"), "--csv", str(folder / "out.csv")]
    args += ["--csv-intervals", str(folder / "intervals.csv")]
    result = CliRunner().invoke(report, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    (folder / "report.json").write_text(result.stdout)
    return folder


def _expected_members(loop: Loop, run: DemoRun) -> list[dict[str, Any]]:
    """The billing rows, from the demo's settlement receipts and the contract's ledger."""
    rows = []
    for h in run.households:
        mine = [run.results[t].get(h.meter_id, MemberResult()) for t in range(run.intervals)]
        consumed, allocated = sum(r.consumed for r in mine), sum(r.allocated for r in mine)
        produced, sold = sum(r.produced for r in mine), sum(r.sold for r in mine)
        rows.append(
            {
                "meter_id": "0x" + h.meter_id.hex(),
                "kind": h.kind.name.lower(),
                "payout": h.payout,
                "consumed_wh": consumed,
                "allocated_wh": allocated,
                "grid_wh": consumed - allocated,
                "produced_wh": produced,
                "sold_wh": sold,
                "exported_wh": produced - sold,
                "cost": sum(r.cost for r in mine),
                "revenue": sum(r.revenue for r in mine),
                "balance": loop.ledger_balance(h.payout),
                "debt": loop.account(h.payout).debt,
                "receivable": loop.account(h.payout).receivable,
            }
        )
    return rows


def test_report_json_equals_the_chain(anvil_run: tuple[Loop, DemoRun], reported: Path) -> None:
    loop, run = anvil_run
    data = json.loads((reported / "report.json").read_text())
    expected = _expected_members(loop, run)

    assert data["loop"] == run.deployment.address
    assert [{k: m[k] for k in expected[0]} for m in data["members"]] == expected
    assert [i["t"] for i in data["intervals"]] == list(range(INTERVALS))
    for interval in data["intervals"]:
        assert interval["members"] == {"0x" + mid.hex(): vars(r) for mid, r in run.results[interval["t"]].items()}
    treasury = loop.config().treasury
    accounts = [h.payout for h in run.households] + [treasury]
    assert data["ledger"] == {a: loop.ledger_balance(a) for a in accounts}
    assert {a: data["accounts"][a] for a in accounts} == {a: loop.account(a).as_json() for a in accounts}
    token = loop.settlement_token()
    assert token is not None
    assert data["held"] == token.functions.balanceOf(loop.address).call() > 0  # the demo's prepayments
    assert sum(data["ledger"].values()) == data["held"]  # what members may get back is what the loop holds
    for h in run.households:
        assert tuple(data["tokens"][h.payout].values()) == loop.tokens(h.payout)
    sold, produced = (sum(m[k] for m in expected) for k in ("sold_wh", "produced_wh"))
    allocated, consumed = (sum(m[k] for m in expected) for k in ("allocated_wh", "consumed_wh"))
    assert data["self_consumption"] == (sold / produced if produced else None)
    assert data["self_sufficiency"] == (allocated / consumed if consumed else None)


def test_billing_csv_equals_the_chain(anvil_run: tuple[Loop, DemoRun], reported: Path) -> None:
    loop, run = anvil_run
    rows = list(csv.DictReader((reported / "out.csv").open()))
    assert rows == [{k: str(v) for k, v in m.items()} for m in _expected_members(loop, run)]
    per_interval = list(csv.DictReader((reported / "intervals.csv").open()))
    assert len(per_interval) == sum(len(run.results[t]) for t in range(INTERVALS))


def test_tables_are_printed_without_json(
    anvil_run: tuple[Loop, DemoRun], anvil_node: LocalNode, reported: Path
) -> None:
    result = CliRunner().invoke(
        report, ["--chain", anvil_node.url, "--deployments", str(reported / "deployments")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    held = money(json.loads((reported / "report.json").read_text())["held"])
    said = " ".join(result.stdout.split())
    assert f"the loop holds {held} for its members; their net positions sum to {held}" in said
    assert "self-sufficiency: " in result.stdout


def test_build_report_on_the_embedded_chain_matches_the_demo_run() -> None:
    """What `daisee demo --report` will do in-process, where no deployment is recorded."""
    sender = Sender.dev(connect("embedded"))
    run = run_demo(sender, simulated_households(3, 2), AllocationKey.PRORATA, 2, seed=2)
    names = {h.meter_id: h.name for h in run.households}
    loop_report = build_report(Loop(sender, run.deployment.address), run.deployment.block, names)
    assert loop_report.settlements == run.results
    assert [m.label for m in loop_report.members] == [h.name for h in run.households]


def test_html_renders_offline_in_chromium(reported: Path, tmp_path: Path) -> None:
    """The page is JS-free; the browser's DOM has one chart point per interval and series, and no console error."""
    page = reported / "report.html"
    assert not re.search(r"https?://", page.read_text())
    if shutil.which(CHROMIUM) is None:
        pytest.fail("headless Chromium is missing: install it with `apt-get install chromium`")
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    command += ["--enable-logging=stderr", "--v=1", "--dump-dom", page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<script" not in dom
    for series in SERIES:
        points = re.findall(rf'<circle [^>]*data-series="{series}" data-interval="(\d+)"', dom)
        assert points == [str(t) for t in range(INTERVALS)], series
    assert len(re.findall(r'<rect [^>]*data-member="0x', dom)) == 4 * HOUSEHOLDS
    console_errors = [line for line in done.stderr.splitlines() if "Uncaught" in line or "ERROR:CONSOLE" in line]
    assert not console_errors
