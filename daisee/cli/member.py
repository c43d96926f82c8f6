"""`daisee member`: the PMO admits and removes meters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from daisee.chain.deploy import load_deployment
from daisee.cli.options import chain_options, json_option, open_chain, open_sender
from daisee.cli.output import console, print_json
from daisee.domain import MeterKind, address, meter_id
from daisee.errors import DaiseeError
from daisee.loop import Loop

MAX_INDEX = 2**64 - 1  # the contract keeps indices as uint64 Wh


def _open_loop(
    chain_target: str, chain_id: int | None, account: str | None, password_file: Path | None, deployments_dir: Path
) -> Loop:
    chain = open_chain(chain_target, chain_id)
    deployment = load_deployment(chain, deployments_dir)
    return Loop(open_sender(chain, account, password_file), deployment.address)


def _index(value: str, option: str) -> int:
    """A meter index in Wh, as typed: a whole number from 0 to MAX_INDEX."""
    text = value.strip().replace("_", "")
    if not text.isdigit() or int(text) > MAX_INDEX:
        raise DaiseeError(
            f"{option} {value!r} is not a meter index: give the meter's cumulative index in Wh as a whole number "
            "(e.g. the Linky's EAST, or the sum of its tariff indices, as `daisee meter parse` shows it)"
        )
    return int(text)


@click.group()
def member() -> None:
    """Admit, list and remove the loop's meters (PMO)."""


@member.command("add")
@click.argument("meter")
@click.option("--signer", required=True, help="Address of the gateway key that signs this meter's readings.")
@click.option("--payout", help="Account that pays or earns for this meter (default: the signer).")
@click.option("--kind", type=click.Choice([k.name.lower() for k in MeterKind]), required=True)
@click.option(
    "--import-wh",
    default="0",
    show_default=True,
    help="The meter's cumulative import index now, in Wh: the first reading counts only what comes after it.",
)
@click.option(
    "--export-wh",
    default="0",
    show_default=True,
    help="The meter's cumulative export index now, in Wh (producers and prosumers).",
)
@chain_options
@json_option
def add(
    meter: str,
    signer: str,
    payout: str | None,
    kind: str,
    import_wh: str,
    export_wh: str,
    as_json: bool,
    **chain_args: Any,
) -> None:
    """Admit METER: 0x + 64 hex digits, or a local label (hashed; never the PRM, ids are public).

    Give the meter's current indices (--import-wh, --export-wh), else its first interval counts
    everything the meter measured since it was installed.
    """
    mid, meter_kind = meter_id(meter), MeterKind.parse(kind)
    signer, payout = address(signer, "--signer"), address(payout or signer, "--payout")
    indices = {"import_wh": _index(import_wh, "--import-wh"), "export_wh": _index(export_wh, "--export-wh")}
    loop = _open_loop(**chain_args)
    receipt = loop.add_meter(mid, signer, payout, meter_kind, **indices)
    info = loop.meter(mid)
    if as_json:
        print_json(
            {
                **info.as_json(),
                "import_wh": info.import_wh,
                "export_wh": info.export_wh,
                "tx_hash": receipt["transactionHash"].to_0x_hex(),
                "gas_used": receipt["gasUsed"],
            }
        )
    else:
        console.print(
            f"meter 0x{mid.hex()} ({kind}) admitted, signer {info.signer}, "
            f"indices {info.import_wh:,} Wh imported, {info.export_wh:,} Wh exported; gas {receipt['gasUsed']:,}"
        )


@member.command("remove")
@click.argument("meter")
@chain_options
def remove(meter: str, **chain_args: Any) -> None:
    """Remove METER for good; its history stays on-chain."""
    mid = meter_id(meter)
    receipt = _open_loop(**chain_args).remove_meter(mid)
    console.print(f"meter 0x{mid.hex()} removed; gas {receipt['gasUsed']:,}")


@member.command("list")
@click.option("--all", "include_removed", is_flag=True, help="Include removed meters.")
@chain_options
@json_option
def list_(include_removed: bool, as_json: bool, **chain_args: Any) -> None:
    """List the loop's meters, read from the contract."""
    meters = _open_loop(**chain_args).meters(include_removed=include_removed)
    if as_json:
        print_json([m.as_json() for m in meters])
        return
    table = Table("meter id", "kind", "signer", "payout", "active")
    for m in meters:
        table.add_row("0x" + m.meter_id.hex(), m.kind.name.lower(), m.signer, m.payout, "yes" if m.active else "no")
    console.print(table)
