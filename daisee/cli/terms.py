"""`daisee terms`: the allocation key and price, those in force and those announced (PMO schedules them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daisee.chain.clock import chain_time
from daisee.cli.options import (
    chain_options,
    json_option,
    known_meter,
    open_loop,
    open_reader,
    read_chain_options,
    require_pmo,
)
from daisee.cli.output import console, print_json, sent
from daisee.cli.values import describe_duration, moment, percent_of_bp, share_bp
from daisee.domain import AllocationKey, meter_id, price_per_kwh, price_per_wh
from daisee.errors import DaiseeError
from daisee.loop import Loop, LoopConfig
from daisee.model import Terms

MAX_WEIGHT = 2**16 - 1  # weights are uint16 on-chain


def _terms_json(terms: Terms, config: LoopConfig) -> dict[str, Any]:
    return {
        "key": terms.key.name.lower(),
        "price_per_wh": terms.price_per_wh,
        "price_per_kwh": str(price_per_kwh(terms.price_per_wh)),
        "from_interval": terms.from_interval,
        "starts_at": config.genesis + terms.from_interval * config.interval_seconds,
        "epoch": terms.epoch,
    }


def _terms_text(terms: Terms, config: LoopConfig) -> str:
    starts = moment(config.genesis + terms.from_interval * config.interval_seconds)
    return (
        f"key {terms.key.name.lower()}, price {price_per_kwh(terms.price_per_wh)} per kWh, "
        f"from interval {terms.from_interval} ({starts})"
    )


@click.group()
def terms() -> None:
    """The allocation key and price: see them, and schedule new ones a notice period ahead (PMO)."""


@terms.command("show")
@read_chain_options
@json_option
def show(chain_target: str, chain_id: int | None, deployments_dir: Path, as_json: bool) -> None:
    """The terms in force, those announced, the price cap and the notice period. Needs no account."""
    loop, _ = open_reader(chain_target, chain_id, deployments_dir)
    config = loop.config()
    in_force, scheduled = loop.terms_at(loop.next_to_settle()), loop.scheduled_terms()
    earliest = config.first_noticed_interval(chain_time(loop.sender.chain))
    if as_json:
        print_json(
            {
                "in_force": _terms_json(in_force, config),
                "scheduled": _terms_json(scheduled, config) if scheduled else None,
                "price_cap_per_wh": config.price_cap_per_wh,
                "price_cap_per_kwh": str(price_per_kwh(config.price_cap_per_wh)),
                "notice_seconds": config.notice_seconds,
                "earliest_from": earliest,
                "unprotected": config.unprotected(),
            }
        )
        return
    console.print(f"in force: {_terms_text(in_force, config)}")
    console.print(f"announced: {_terms_text(scheduled, config)}" if scheduled else "announced: nothing")
    console.print(
        f"price cap {price_per_kwh(config.price_cap_per_wh)} per kWh; "
        f"notice {describe_duration(config.notice_seconds)}: "
        f"terms scheduled now may start at interval {earliest} at the earliest"
    )
    for said in config.unprotected():
        console.print(f"[bold yellow]warning:[/] {said}")


def _coefficients(
    loop: Loop, key: AllocationKey, shares: tuple[str, ...], weights: tuple[str, ...]
) -> dict[bytes, tuple[int, int]]:
    """{meter id: (share bp, weight)} from `--share METER=PERCENT` and `--weight METER=N`, checked against the key."""
    if shares and key is not AllocationKey.STATIC:
        raise DaiseeError(f"--share sets the static key's shares, and these terms use the {key.name.lower()} key")
    if weights and key is not AllocationKey.WEIGHTED:
        raise DaiseeError(f"--weight sets the weighted key's weights, and these terms use the {key.name.lower()} key")
    found: dict[bytes, tuple[int, int]] = {}
    for given, option in [(s, "--share") for s in shares] + [(w, "--weight") for w in weights]:
        label, equals, value = given.rpartition("=")
        if not equals or not label:
            raise DaiseeError(f"{option} {given!r} is not METER=VALUE: give e.g. {option} house-12=25")
        mid = meter_id(label)
        info = known_meter(loop, mid)
        if option == "--share":
            found[mid] = (share_bp(value, option), info.weight)
        elif value.strip().isdigit() and int(value) <= MAX_WEIGHT:
            found[mid] = (info.share, int(value))
        else:
            raise DaiseeError(f"--weight {given!r}: a weight is a whole number from 0 to {MAX_WEIGHT}")
    total = sum(share for share, _ in found.values())
    if shares and total > 10_000:
        raise DaiseeError(f"the shares add up to {percent_of_bp(total)}: at most 100% of production can be shared")
    return found


@terms.command("schedule")
@click.option("--key", type=click.Choice([k.name.lower() for k in AllocationKey]), help="Default: the latest terms'.")
@click.option("--price", help="Price in currency per kWh, at most the loop's cap (default: the latest terms').")
@click.option(
    "--from",
    "from_interval",
    type=click.IntRange(0, 2**32 - 1),
    help="First interval under these terms (default: the earliest the notice period allows).",
)
@click.option("--share", "shares", multiple=True, help="Static key: METER=PERCENT of production, e.g. house-12=25.")
@click.option("--weight", "weights", multiple=True, help="Weighted key: METER=WEIGHT, a whole number, e.g. house-12=3.")
@chain_options
@json_option
def schedule(
    key: str | None,
    price: str | None,
    from_interval: int | None,
    shares: tuple[str, ...],
    weights: tuple[str, ...],
    as_json: bool,
    **chain_args: Any,
) -> None:
    """Announce a key and price (and with them static shares or weights) for intervals from --from on.

    They may start no sooner than the first interval that begins after the loop's notice period, and the
    price may not exceed the cap fixed at deployment. Terms not yet in force are replaced. PMO only.
    """
    wanted_price = None if price is None else price_per_wh(price)
    loop = open_loop(**chain_args)
    require_pmo(loop)
    config = loop.config()
    latest = loop.scheduled_terms() or loop.terms_at(loop.next_to_settle())
    new_key = AllocationKey.parse(key) if key else latest.key
    new_price = latest.price_per_wh if wanted_price is None else wanted_price
    if new_price > config.price_cap_per_wh:
        raise DaiseeError(
            f"price {price_per_kwh(new_price)} per kWh is above the loop's cap of "
            f"{price_per_kwh(config.price_cap_per_wh)} per kWh, fixed at deployment: give --price at most the cap"
        )
    now = chain_time(loop.sender.chain)
    started = now >= config.genesis and latest.from_interval <= (now - config.genesis) // config.interval_seconds
    if latest.epoch and started and latest.from_interval > loop.next_to_settle():
        raise DaiseeError(
            f"the terms from interval {latest.from_interval} are in force but earlier intervals are not settled yet: "
            "run `daisee keeper run`, then schedule again"
        )
    earliest = config.first_noticed_interval(now)
    first = earliest if from_interval is None else from_interval
    if first < earliest:
        raise DaiseeError(
            f"terms scheduled now may start at interval {earliest} at the earliest (the loop's notice is "
            f"{describe_duration(config.notice_seconds)}), not {first}: give --from {earliest} or later"
        )
    coefficients = _coefficients(loop, new_key, shares, weights)
    receipts = [loop.schedule_terms(new_key, new_price, first)]
    if coefficients:
        receipts.append(loop.set_coefficients(coefficients))
    scheduled = loop.terms_at(first)
    if as_json:
        print_json(
            {
                "scheduled": _terms_json(scheduled, config),
                "coefficients": {
                    "0x" + mid.hex(): {"share_bp": share, "weight": weight}
                    for mid, (share, weight) in coefficients.items()
                },
                "transactions": [sent(r) for r in receipts],
            }
        )
        return
    gas = sum(int(r["gasUsed"]) for r in receipts)
    console.print(f"announced: {_terms_text(scheduled, config)}; gas {gas:,}")
    for mid, (share, weight) in coefficients.items():
        said = f"share {percent_of_bp(share)}" if new_key is AllocationKey.STATIC else f"weight {weight}"
        console.print(f"  meter 0x{mid.hex()}: {said}")
