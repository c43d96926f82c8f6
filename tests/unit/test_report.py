"""The report's renderings from a hand-built LoopReport: terminal tables, billing CSV, standalone HTML."""

from __future__ import annotations

import csv
import io
import re

from rich.console import Console

from daisee.domain import AllocationKey, MeterKind
from daisee.loop import AccountBalance, MemberResult
from daisee.report import LoopReport, Member, Tokens
from daisee.report.csv import billing_csv, intervals_csv
from daisee.report.html import SERIES, render_html
from daisee.report.terminal import print_report

EVIL = '<script>alert("x")</script>&[bold]'
ALICE, BOB, PMO = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "cc" * 20
SUN, HOME = b"\x01" * 32, b"\x02" * 32


def _report() -> LoopReport:
    """A producer (SUN, payout ALICE) and a consumer (HOME, payout BOB) over intervals 4, 5, 6."""
    settlements = {
        4: {SUN: MemberResult(produced=1000, sold=600, revenue=60_000), HOME: MemberResult(600, 600, 60_000)},
        5: {SUN: MemberResult(produced=0), HOME: MemberResult(1500, 0, 0)},
        6: {SUN: MemberResult(produced=2000, sold=900, revenue=90_000), HOME: MemberResult(900, 900, 90_000)},
    }
    return LoopReport(
        chain_id=31337,
        address="0x" + "11" * 20,
        from_block=3,
        block=42,
        treasury=PMO,
        key=AllocationKey.PRORATA,
        price_per_wh=100,
        genesis=1_700_000_000,
        interval_seconds=900,
        members=[Member(SUN, MeterKind.PRODUCER, ALICE, name=EVIL), Member(HOME, MeterKind.CONSUMER, BOB)],
        settlements=settlements,
        ledger={ALICE: 150_000, BOB: -150_000, PMO: 0},
        tokens={ALICE: Tokens(3000, 0, 0), BOB: Tokens(0, 3200, 1500), PMO: Tokens()},
        accounts={
            ALICE: AccountBalance(50_000, 0, 100_000),
            BOB: AccountBalance(0, 100_000, 0),
            PMO: AccountBalance(0, 0, 0),
        },
        carried={HOME: (200, 0)},  # a late reading's energy of earlier intervals: from the grid
        notice_seconds=0,
        held=50_000,
    )


def test_totals_and_rates() -> None:
    report = _report()
    assert report.intervals == [4, 5, 6]
    assert report.totals(HOME) == MemberResult(consumed=3000, allocated=1500, cost=150_000)
    assert report.totals(SUN) == MemberResult(produced=3000, sold=1500, revenue=150_000)
    assert report.self_consumption == 0.5
    assert report.self_sufficiency == 0.5
    assert report.roles(PMO) == ["treasury"]


def test_billing_csv_has_one_row_per_member() -> None:
    rows = list(csv.DictReader(io.StringIO(billing_csv(_report()))))
    assert list(rows[0]) == list(LoopReport.BILLING_FIELDS)
    sun, home = rows
    assert sun["meter_id"] == "0x" + SUN.hex()
    assert (sun["kind"], sun["payout"], sun["produced_wh"], sun["sold_wh"], sun["exported_wh"]) == (
        "producer",
        ALICE,
        "3000",
        "1500",
        "1500",
    )
    assert (sun["revenue"], sun["balance"]) == ("150000", "150000")
    assert (home["consumed_wh"], home["allocated_wh"], home["grid_wh"], home["cost"], home["balance"]) == (
        "3200",
        "1500",
        "1700",
        "150000",
        "-150000",
    )
    assert (home["debt"], home["receivable"], sun["debt"], sun["receivable"]) == ("100000", "0", "0", "100000")


def test_interval_csv_has_one_row_per_interval_and_meter() -> None:
    rows = list(csv.DictReader(io.StringIO(intervals_csv(_report()))))
    assert [(r["interval"], r["meter_id"][:4]) for r in rows] == [
        (t, m) for t in ("4", "5", "6") for m in ("0x01", "0x02")
    ]
    assert rows[0]["start"] == str(1_700_000_000 + 4 * 900)


def test_terminal_shows_kwh_money_and_rates() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_report(_report(), console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    home_row = next(line for line in text.splitlines() if line.strip().startswith("0x02"))
    assert home_row.split()[1:] == ["consumer", "0.00", "3.20", "1.50", "1.70", "0.00", "-0.15"]
    assert EVIL in text  # rich markup is escaped, not interpreted
    assert "+0.15" in text
    bob_row = next(line for line in text.splitlines() if line.strip().startswith(BOB))
    assert bob_row.split()[2:] == ["+0.00", "-0.10", "+0.00", "-0.15"]  # balance, debt, receivable, net
    assert "the loop holds +0.05 for its members; their net positions sum to +0.00" in text
    assert "warning: notice period is 0" in text
    assert "self-consumption: 50%" in text
    assert "self-sufficiency: 50%" in text


def test_html_is_standalone_escaped_and_has_one_point_per_interval_and_series() -> None:
    page = render_html(_report())
    for series in SERIES:
        points = re.findall(rf'<circle [^>]*data-series="{series}" data-interval="(\d+)"', page)
        assert points == ["4", "5", "6"], series
    assert len(re.findall(r'<rect [^>]*data-member="0x01', page)) == 4  # local, grid, sold, exported
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;[bold]" in page
    assert "http://" not in page
    assert "https://" not in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page)


def test_html_of_a_loop_without_settled_intervals() -> None:
    report = _report()
    report.settlements.clear()
    page = render_html(report)
    assert "No settled interval yet." in page
    assert "data-series" not in page
