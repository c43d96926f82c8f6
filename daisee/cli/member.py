"""`daisee member`: the PMO admits, lists, re-keys, repairs and removes meters; members confirm changes."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Column, Table

from daisee.chain.clock import chain_time
from daisee.cli.options import chain_options, json_option, known_meter, open_loop, require_pmo
from daisee.cli.output import console, print_json, sent
from daisee.cli.values import describe_duration, kilo, moment, power_w
from daisee.domain import MeterKind, address, meter_id
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterChange, MeterInfo, default_limits

MAX_INDEX = 2**64 - 1  # the contract keeps indices as uint64 Wh


def _index(value: str, option: str) -> int:
    """A meter index in Wh, as typed: a whole number from 0 to MAX_INDEX."""
    text = value.strip().replace("_", "")
    if not text.isdigit() or int(text) > MAX_INDEX:
        raise DaiseeError(
            f"{option} {value!r} is not a meter index: give the meter's cumulative index in Wh as a whole number "
            "(e.g. the Linky's EAST, or the sum of its tariff indices, as `daisee meter parse` shows it)"
        )
    return int(text)


def _limits(kind: MeterKind, import_kva: str | None, export_kwc: str | None) -> tuple[int, int]:
    """(import, export) limits in W: as given, else a household's defaults; refused if the kind cannot have them."""
    default_import, default_export = default_limits(kind)
    import_w = default_import if import_kva is None else power_w(import_kva, "--import-kva", "kVA")
    export_w = default_export if export_kwc is None else power_w(export_kwc, "--export-kwc", "kWc")
    name = kind.name.lower()
    if kind is MeterKind.PRODUCER and import_w:
        raise DaiseeError("a producer imports nothing: drop --import-kva, or admit the meter as a prosumer")
    if kind is MeterKind.CONSUMER and export_w:
        raise DaiseeError("a consumer exports nothing: drop --export-kwc, or admit the meter as a prosumer")
    if kind is not MeterKind.PRODUCER and not import_w:
        raise DaiseeError(f"a {name} imports: give its subscribed power above 0, e.g. --import-kva 6")
    if kind is not MeterKind.CONSUMER and not export_w:
        raise DaiseeError(f"a {name} exports: give its installed peak above 0, e.g. --export-kwc 3")
    return import_w, export_w


def _limits_text(info: MeterInfo) -> str:
    """'import 12 kVA, export 9 kWc', or only the flow the meter has."""
    said = [f"import {kilo(info.import_limit_w)} kVA"] if info.import_limit_w else []
    return ", ".join(said + ([f"export {kilo(info.export_limit_w)} kWc"] if info.export_limit_w else []))


def _pending(loop: Loop, mid: bytes) -> MeterChange:
    change = loop.meter_change(mid)
    if change is None:
        raise DaiseeError(f"no change is announced for meter 0x{mid.hex()}: see `daisee member list`")
    return change


def _change_text(change: MeterChange) -> str:
    indices = f", counting from {change.import_wh:,} Wh imported, {change.export_wh:,} Wh exported"
    reset = indices if change.reset else ""
    return f"signer {change.signer}{reset}, effective {moment(change.effective_at)}"


def _meter_json(info: MeterInfo, change: MeterChange | None) -> dict[str, Any]:
    return {
        **info.as_json(),
        "import_wh": info.import_wh,
        "export_wh": info.export_wh,
        "change": change.as_json() if change else None,
    }


@click.group()
def member() -> None:
    """Admit, list, re-key, repair and remove the loop's meters (PMO); confirm a change (member)."""


@member.command("add")
@click.argument("meter")
@click.option("--signer", required=True, help="Address of the gateway key that signs this meter's readings.")
@click.option("--payout", help="Account that pays or earns for this meter (default: the signer).")
@click.option("--kind", type=click.Choice([k.name.lower() for k in MeterKind]), required=True)
@click.option(
    "--import-kva",
    help="Subscribed power in kVA, as the Linky shows it (default 12 for consumers and prosumers; 0 for producers).",
)
@click.option(
    "--export-kwc",
    help="Installed peak in kWc (default 9 for producers and prosumers; 0 for consumers).",
)
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
    import_kva: str | None,
    export_kwc: str | None,
    import_wh: str,
    export_wh: str,
    as_json: bool,
    **chain_args: Any,
) -> None:
    """Admit METER: 0x + 64 hex digits, or a local label (hashed; never the PRM, ids are public).

    Give the meter's physical limits (--import-kva, --export-kwc): the loop refuses a reading with more
    energy than the limit allows for the time it covers. Give its current indices (--import-wh,
    --export-wh), else its first interval counts everything the meter measured since it was installed.
    The meter reports from the first interval that starts after the loop's notice period.
    """
    mid, meter_kind = meter_id(meter), MeterKind.parse(kind)
    signer, payout = address(signer, "--signer"), address(payout or signer, "--payout")
    import_limit_w, export_limit_w = _limits(meter_kind, import_kva, export_kwc)
    indices = {"import_wh": _index(import_wh, "--import-wh"), "export_wh": _index(export_wh, "--export-wh")}
    loop = open_loop(**chain_args)
    require_pmo(loop)
    receipt = loop.add_meter(
        mid, signer, payout, meter_kind, import_limit_w=import_limit_w, export_limit_w=export_limit_w, **indices
    )
    info = loop.meter(mid)
    if as_json:
        print_json({**_meter_json(info, None), **sent(receipt)})
        return
    console.print(
        f"meter 0x{mid.hex()} ({kind}) admitted, signer {info.signer}, {_limits_text(info)}, "
        f"indices {info.import_wh:,} Wh imported, {info.export_wh:,} Wh exported, "
        f"reports from interval {info.active_from}; gas {receipt['gasUsed']:,}"
    )


@member.command("remove")
@click.argument("meter")
@chain_options
@json_option
def remove(meter: str, as_json: bool, **chain_args: Any) -> None:
    """Remove METER for good; its history stays on-chain and its unsettled energy is still settled."""
    mid = meter_id(meter)
    loop = open_loop(**chain_args)
    require_pmo(loop)
    known_meter(loop, mid)
    receipt = loop.remove_meter(mid)
    if as_json:
        print_json({"meter_id": "0x" + mid.hex(), "active": False, **sent(receipt)})
        return
    console.print(f"meter 0x{mid.hex()} removed; gas {receipt['gasUsed']:,}")


@member.command("list")
@click.option("--all", "include_removed", is_flag=True, help="Include removed meters.")
@chain_options
@json_option
def list_(include_removed: bool, as_json: bool, **chain_args: Any) -> None:
    """List the loop's meters with their limits, the interval each reports from and the changes announced."""
    loop = open_loop(**chain_args)
    config = loop.config()
    meters = [(m, loop.meter_change(m.meter_id)) for m in loop.meters(include_removed=include_removed)]
    if as_json:
        print_json(
            {
                "loop": loop.address,
                "notice_seconds": config.notice_seconds,
                "unprotected": config.unprotected(),
                "meters": [_meter_json(m, c) for m, c in meters],
            }
        )
        return
    table = Table(
        Column("meter id", overflow="fold"),
        Column("kind", no_wrap=True),
        Column("import kVA", justify="right"),
        Column("export kWc", justify="right"),
        Column("reports from interval", justify="right"),
        Column("signer", overflow="fold"),
        Column("payout", overflow="fold"),
    )
    for m, _ in meters:
        table.add_row(
            "0x" + m.meter_id.hex(),
            m.kind.name.lower(),
            kilo(m.import_limit_w),
            kilo(m.export_limit_w),
            str(m.active_from) if m.active else "removed",
            m.signer,
            m.payout,
        )
    console.print(table)
    for m, c in meters:
        if c:
            console.print(f"meter 0x{m.meter_id.hex()}: change announced: {_change_text(c)}")
    for said in config.unprotected():
        console.print(f"[bold yellow]warning:[/] {said}")
    if config.notice_seconds:
        console.print(f"notice period: {describe_duration(config.notice_seconds)}")


def _announced(loop: Loop, mid: bytes, receipt: Any, as_json: bool) -> None:
    """What a rotation or repair did: in effect now (no notice), or announced until when."""
    info, change = loop.meter(mid), loop.meter_change(mid)
    if as_json:
        print_json({**_meter_json(info, change), "applied": change is None, **sent(receipt)})
    elif change is None:
        console.print(
            f"meter 0x{mid.hex()}: signer is now {info.signer}, at once (the loop's notice period is 0); "
            f"gas {receipt['gasUsed']:,}"
        )
    else:
        console.print(
            f"meter 0x{mid.hex()}: announced {_change_text(change)}; its payout account {info.payout} may make it "
            f"effective now with `daisee member change confirm 0x{mid.hex()}`; gas {receipt['gasUsed']:,}"
        )


@member.command("rotate")
@click.argument("meter")
@click.option("--signer", required=True, help="Address of the meter's new gateway key.")
@chain_options
@json_option
def rotate(meter: str, signer: str, as_json: bool, **chain_args: Any) -> None:
    """Give METER a new gateway key (a lost or compromised gateway), after the loop's notice period.

    Its payout account may make it effective at once (`daisee member change confirm`); anyone applies
    it once due (`daisee member change apply`, or a keeper). PMO only.
    """
    mid, new_signer = meter_id(meter), address(signer, "--signer")
    loop = open_loop(**chain_args)
    require_pmo(loop)
    known_meter(loop, mid)
    _announced(loop, mid, loop.rotate_signer(mid, new_signer), as_json)


@member.command("repair")
@click.argument("meter")
@click.option("--signer", help="Address of the gateway key from now on (default: the meter's current signer).")
@click.option(
    "--import-wh",
    required=True,
    help="The repaired or new meter's cumulative import index now, in Wh: its readings count from there.",
)
@click.option("--export-wh", default="0", show_default=True, help="Its cumulative export index now, in Wh.")
@chain_options
@json_option
def repair(meter: str, signer: str | None, import_wh: str, export_wh: str, as_json: bool, **chain_args: Any) -> None:
    """Repair METER (a swapped meter, a reset or stolen key): new indices, and a new key if given.

    Takes effect as a rotation does: after the notice period, or at once when the payout account
    confirms it. PMO only.
    """
    mid = meter_id(meter)
    indices = _index(import_wh, "--import-wh"), _index(export_wh, "--export-wh")
    new_signer = address(signer, "--signer") if signer else None
    loop = open_loop(**chain_args)
    require_pmo(loop)
    info = known_meter(loop, mid)
    _announced(loop, mid, loop.repair_meter(mid, new_signer or info.signer, *indices), as_json)


@member.group("change")
def change() -> None:
    """Cancel (PMO), confirm (the meter's payout account) or apply (anyone) an announced meter change."""


def _open_change(meter: str, chain_args: dict[str, Any]) -> tuple[Loop, bytes, MeterInfo, MeterChange]:
    """The loop, and METER's id, record and announced change (or a one-line error if none)."""
    mid = meter_id(meter)
    loop = open_loop(**chain_args)
    info = known_meter(loop, mid, active=False)
    return loop, mid, info, _pending(loop, mid)


def _changed(loop: Loop, mid: bytes, receipt: Any, as_json: bool, done: str) -> None:
    info = loop.meter(mid)
    if as_json:
        print_json({**_meter_json(info, loop.meter_change(mid)), **sent(receipt)})
    else:
        console.print(f"meter 0x{mid.hex()}: {done}, signer {info.signer}; gas {receipt['gasUsed']:,}")


@change.command("cancel")
@click.argument("meter")
@chain_options
@json_option
def cancel(meter: str, as_json: bool, **chain_args: Any) -> None:
    """Withdraw the change announced for METER; its key and indices stay as they are. PMO only."""
    loop, mid, _, _ = _open_change(meter, chain_args)
    require_pmo(loop)
    _changed(loop, mid, loop.cancel_meter_change(mid), as_json, "announced change cancelled")


@change.command("confirm")
@click.argument("meter")
@chain_options
@json_option
def confirm(meter: str, as_json: bool, **chain_args: Any) -> None:
    """Agree to the change announced for METER, so that it takes effect now: sign as its payout account."""
    loop, mid, info, _ = _open_change(meter, chain_args)
    if loop.sender.address != info.payout:
        raise DaiseeError(
            f"only meter 0x{mid.hex()}'s payout account {info.payout} may confirm its change, "
            f"not {loop.sender.address}: pass --account with the payout account's key"
        )
    _changed(loop, mid, loop.confirm_meter_change(mid), as_json, "change confirmed and in effect")


@change.command("apply")
@click.argument("meter")
@chain_options
@json_option
def apply(meter: str, as_json: bool, **chain_args: Any) -> None:
    """Put the change announced for METER into effect once its notice has passed (anyone may)."""
    loop, mid, _, pending = _open_change(meter, chain_args)
    if chain_time(loop.sender.chain) < pending.effective_at:
        raise DaiseeError(
            f"the change of meter 0x{mid.hex()} takes effect at {moment(pending.effective_at)}, not before: "
            "apply it then, or its payout account confirms it now with `daisee member change confirm`"
        )
    _changed(loop, mid, loop.apply_meter_change(mid), as_json, "change in effect")
