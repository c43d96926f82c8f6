"""`daisee demo`: the main job, a simulated loop on a chain (the embedded one by default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress
from rich.table import Table

from daisee.chain.deploy import LoopParameters
from daisee.cli.options import chain_options, open_chain, open_sender
from daisee.cli.output import console
from daisee.demo import run_demo, simulated_households
from daisee.domain import AllocationKey
from daisee.loop import Loop


@click.command()
@click.option("--households", type=click.IntRange(1, 1000), default=6, show_default=True, help="How many households.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same households.")
@click.option("--key", type=click.Choice(["prorata", "static", "weighted"]), default="prorata", show_default=True)
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the results, read back from the chain, to this file.",
)
@chain_options
def demo(households: int, seed: int, key: str, json_out: Path | None, **chain_args: Any) -> None:
    """Deploy a loop and admit simulated producers, consumers and prosumers, for real, on-chain."""
    chain = open_chain(chain_args["chain_target"], chain_args["chain_id"])
    sender = open_sender(chain, chain_args["account"], chain_args["password_file"])
    crowd = simulated_households(households, seed)
    console.print(f"[bold]daisee demo[/] on {chain.label}: {households} households, key {key}, seed {seed}")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("admitting households", total=households)
        deployment, admissions = run_demo(
            sender, crowd, LoopParameters(key=AllocationKey.parse(key)), lambda _: progress.advance(task)
        )
    console.print(
        f"loop deployed at [bold]{deployment.address}[/] by PMO {deployment.deployer} "
        f"(gas {deployment.parameters['gas_used']:,}, interval {deployment.parameters['interval_seconds']} s)"
    )
    table = Table("household", "kind", "meter id", "gateway signer", "tx", "gas", title="meters admitted on-chain")
    for a in admissions:
        h = a.household
        table.add_row(
            h.name,
            h.kind.name.lower(),
            "0x" + h.meter_id.hex()[:12] + "…",
            h.signer,
            a.tx_hash[:14] + "…",
            f"{a.gas_used:,}",
        )
    console.print(table)
    registered = Loop(sender, deployment.address).meters()
    console.print(f"{len(registered)} active meters read back from the contract")
    if json_out:
        names = {h.meter_id: h.name for h in crowd}
        members = [{"id": names[m.meter_id], **m.as_json()} for m in registered]
        json_out.write_text(
            json.dumps({"chain_id": chain.chain_id, "loop": deployment.address, "members": members}, indent=2) + "\n"
        )
        console.print(f"wrote {json_out}")
