"""The report as rich tables: per member energy and money, the ledger, and the loop's rates."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from daisee.report.data import LoopReport, money, percent


def print_report(report: LoopReport, console: Console) -> None:
    """Members' kWh (consumed = local + grid, produced = sold + surplus) and money, then the ledger and rates."""
    console.print(
        f"loop {report.address} on chain {report.chain_id}: {len(report.members)} meters, "
        f"{len(report.intervals)} settled intervals (blocks {report.from_block}-{report.block}), "
        f"key {report.key.name.lower()}"
    )
    for warning in report.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}")
    table = Table(
        "meter",
        "kind",
        *(Column(h, justify="right") for h in ("produced", "consumed", "self-consumed", "grid", "surplus", "money")),
        title="kWh: consumed = self-consumed (from the loop) + grid; surplus = produced - sold in the loop",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for m, row in zip(report.members, report.billing(), strict=True):
        table.add_row(
            escape(m.label) + ("" if m.active else " (removed)"),
            str(row["kind"]),
            _kwh(row["produced_wh"]),
            _kwh(row["consumed_wh"]),
            _kwh(row["allocated_wh"]),
            _kwh(row["grid_wh"]),
            _kwh(row["exported_wh"]),
            money(int(row["balance"])),
        )
    console.print(table)

    ledger = Table(
        "account",
        "role",
        *(Column(h, justify="right") for h in ("balance", "debt", "receivable", "net")),
        title="ledger (currency units): balance may be withdrawn; debt is owed to the loop, receivable by it",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for account, position in report.ledger.items():
        a = report.accounts.get(account)
        parts = (money(a.balance), money(-a.debt), money(a.receivable)) if a else ("", "", "")
        ledger.add_row(account, escape(", ".join(report.roles(account))), *parts, money(position))
    console.print(ledger)
    total = money(sum(report.ledger.values()))
    console.print(f"the loop holds {money(report.held)} for its members; their net positions sum to {total}")
    console.print(f"self-consumption: {percent(report.self_consumption)} of local production was used in the loop")
    console.print(f"self-sufficiency: {percent(report.self_sufficiency)} of consumption came from the loop")


def _kwh(wh: str | int) -> str:
    return f"{int(wh) / 1000:.2f}"
