"""`daisee bench`: gas per signed reading and per settled member as the loop grows, and a naive baseline."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from daisee.bench import bench_baseline, bench_loop, figures_as_json, marginal
from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.cli.output import console


@click.command()
@click.option(
    "--members",
    "sizes",
    default="10,100,1000",
    show_default=True,
    help="Comma-separated loop sizes to measure.",
)
@click.option("--chain", "chain_target", help="An anvil URL to use; by default a fresh anvil is started on loopback.")
@click.option(
    "--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the figures here."
)
def bench(sizes: str, chain_target: str | None, json_out: Path | None) -> None:
    """Measure gas on anvil: mean gas per signed reading (batches of 100) and per member settled per
    interval (tokens included), in steady state and in each member's first interval, for loops of
    several sizes; and the naive baseline of one unsigned transaction per reading."""
    try:
        members = sorted({int(n) for n in sizes.split(",")})
    except ValueError:
        raise click.BadParameter(f"{sizes!r}: give sizes like 10,100,1000", param_hint="--members") from None
    if chain_target:
        _run(Sender.dev(connect(chain_target)), members, json_out)
        return
    with LocalNode("anvil") as node:
        _run(Sender.dev(connect(node.url)), members, json_out)


def _run(sender: Sender, members: list[int], json_out: Path | None) -> None:
    loops = []
    with console.status("measuring") as status:
        for n in members:
            loops.append(bench_loop(sender, n, lambda text: status.update(text)))
        status.update(f"baseline: {members[-1]} unsigned transactions")
        baseline = bench_baseline(sender, loops[-1])
    table = Table(
        "members",
        "gas / reading",
        "gas / member settled",
        "first interval: reading",
        "first: settled",
        title=f"daisee gas on {sender.chain.label}",
    )
    for f in loops:
        table.add_row(
            f"{f.members:,}",
            f"{f.reading_gas:,.0f}",
            f"{f.settle_gas:,.0f}",
            f"{f.first_reading_gas:,.0f}",
            f"{f.first_settle_gas:,.0f}",
        )
    console.print(table)
    if len(loops) > 1:
        m = marginal(loops[-2], loops[-1])
        reading, settled = m["reading_gas"], m["settle_gas"]
        console.print(f"marginal cost of one more member: reading {reading:,.0f} gas, settlement {settled:,.0f} gas")
    console.print(
        f"baseline, {baseline.readings:,} unsigned transactions: {baseline.gas_per_reading:,.0f} gas per reading, "
        f"{baseline.gas_ratio:.2f}x the gas and {baseline.wall_ratio:.1f}x the time of signed batches"
    )
    if json_out:
        json_out.write_text(json.dumps(figures_as_json(loops, baseline), indent=2) + "\n")
        console.print(f"wrote {json_out}")
