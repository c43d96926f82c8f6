"""`daisee report`: a recorded loop's report, read from the chain: tables, a standalone HTML page, CSV."""

from __future__ import annotations

from pathlib import Path

import click

from daisee.cli.options import json_option, open_reader, read_chain_options
from daisee.cli.output import console, print_json
from daisee.report.csv import billing_csv, intervals_csv
from daisee.report.data import build_report
from daisee.report.html import render_html
from daisee.report.terminal import print_report

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.command()
@read_chain_options
@click.option("--out", type=_FILE, help="Write a standalone HTML page (charts included, opens offline).")
@click.option("--csv", "csv_out", type=_FILE, help="Write the billing CSV: one row per member.")
@click.option("--csv-intervals", type=_FILE, help="Write a CSV with one row per settled interval and meter.")
@json_option
def report(
    chain_target: str,
    chain_id: int | None,
    deployments_dir: Path,
    out: Path | None,
    csv_out: Path | None,
    csv_intervals: Path | None,
    as_json: bool,
) -> None:
    """Report on the recorded loop: each member's energy and money, the ledger, and the loop's
    self-consumption and self-sufficiency, every number read from the chain. Needs no account."""
    loop, block = open_reader(chain_target, chain_id, deployments_dir)
    loop_report = build_report(loop, block)
    written = []
    for path, text in ((out, render_html), (csv_out, billing_csv), (csv_intervals, intervals_csv)):
        if path:
            path.write_text(text(loop_report))
            written.append(path)
    if as_json:
        print_json(loop_report.as_json())
        return
    print_report(loop_report, console)
    for path in written:
        console.print(f"wrote {path}")
