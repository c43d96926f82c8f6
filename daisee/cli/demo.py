"""`daisee demo`: the main job, a simulated loop run through the contracts (the embedded chain by default)."""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich import box
from rich.progress import Progress
from rich.table import Table

from daisee.appliances import DAY_START_HOUR
from daisee.chain.transact import Sender
from daisee.cli.options import chain_options, open_chain, open_sender, token_option
from daisee.cli.output import console, log_to_stderr
from daisee.cli.regie import serve_until_stopped
from daisee.demo import (
    HISTORY_DAYS,
    SIMULATED_ZONE,
    DemoRun,
    Household,
    bill,
    compare_flexible,
    compared_day,
    flexible_households,
    run_demo,
    run_flexible_demo,
    simulated_households,
    simulated_payout_keys,
)
from daisee.domain import LEDGER_DECIMALS, AllocationKey
from daisee.errors import DaiseeError
from daisee.flex.signal import local_time
from daisee.loop import Loop, MemberResult
from daisee.regie.service import DEFAULT_PORT, Regie, RegieSettings
from daisee.report import build_report
from daisee.report.flexible import moved, render_flexible_html
from daisee.report.html import render_html
from daisee.simulation import WEATHER

_DAY = 86_400
GRID_PRICE_PER_WH = RegieSettings.grid_price_per_wh  # the price a flexible demo's bills put on grid purchases


def _share(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise DaiseeError(f"--flexible {value:g}: give a share from 0 to 1, e.g. 0.5")
    return value


@click.command()
@click.option("--households", type=click.IntRange(1, 1000), default=6, show_default=True, help="How many households.")
@click.option("--intervals", type=click.IntRange(1, 960), default=96, show_default=True, help="Intervals to simulate.")
@click.option("--interval-seconds", type=click.IntRange(60, 86_400), default=900, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same neighbourhood and weather.")
@click.option("--key", type=click.Choice(["prorata", "static", "weighted"]), default="prorata", show_default=True)
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the results, read back from the chain, to this file.",
)
@click.option(
    "--report",
    "report_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the loop's report (a standalone HTML page with its curves, bars and ledger).",
)
@click.option(
    "--regie",
    is_flag=True,
    help="Then serve the loop's régie (its pages and API, on loopback) until Ctrl-C, from a throwaway store.",
)
@click.option("--regie-port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--flexible",
    "flexible_share",
    type=float,
    metavar="SHARE",
    callback=_share,
    help="Add shiftable appliances and let this share (0 to 1) of the consuming households follow the loop's "
    f"signal: plays {HISTORY_DAYS} history day then the day it reports, 07:00 to 07:00 (development chains).",
)
@click.option(
    "--compare-flexible",
    "compare",
    is_flag=True,
    help="Play the --flexible day twice on the same seed and weather, nobody following the signal, then the share.",
)
@click.option(
    "--weather",
    type=click.Choice(sorted(WEATHER)),
    help="Force every simulated day's sky (default: each day's own, from the seed).",
)
@click.option(
    "--date",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="With --flexible: the day to report (default: the one after the chain's next 07:00 history day).",
)
@token_option
@chain_options
def demo(
    households: int,
    intervals: int,
    interval_seconds: int,
    seed: int,
    key: str,
    json_out: Path | None,
    report_out: Path | None,
    regie: bool,
    regie_port: int,
    flexible_share: float | None,
    compare: bool,
    weather: str | None,
    day: datetime | None,
    token: str | None,
    **chain_args: Any,
) -> None:
    """Simulate a neighbourhood's day on a real chain: deploy a loop, admit the households, sign and
    submit every interval's meter readings, finalize and settle each interval, and show who owes whom.

    A development chain's clock is moved through the day; on another network (--chain with a URL or a
    profile, --account, and --token with a real token or `none`) the demo plays its intervals in real
    time, from a few minutes after it starts, and prepays nothing.

    With --flexible the households have shiftable appliances (washing machine, dishwasher, water heater,
    electric car) and a share of them plan theirs on the signal the loop forecasts from its settled
    history; with --compare-flexible the day is played with and without the signal, and the self-consumption,
    self-sufficiency and bills of each are printed (and written with --json)."""
    sky = WEATHER[weather] if weather else None
    if flexible_share is not None or compare or day:
        _check_flexible(flexible_share, compare, regie)
    chain = open_chain(chain_args["chain_target"], chain_args["chain_id"])
    sender = open_sender(chain, chain_args["account"], chain_args["password_file"])
    crowd = simulated_households(households, seed)
    if flexible_share is not None:
        played = (sender, crowd, AllocationKey.parse(key), seed, interval_seconds, token)
        _flexible_demo(*played, flexible_share, compare, weather, day, json_out, report_out)
        return
    console.print(
        f"[bold]daisee demo[/] on {chain.label}: {households} households, {intervals} intervals "
        f"of {interval_seconds} s, key {key}, seed {seed}"
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("signing, submitting and settling", total=intervals)
        run = run_demo(
            sender,
            crowd,
            AllocationKey.parse(key),
            intervals,
            seed,
            interval_seconds,
            lambda _: progress.advance(task),
            token,
            sky,
        )
    loop = Loop(sender, run.deployment.address)
    summary = _summary(run, loop)
    _print_summary(run, summary)
    if json_out:
        json_out.write_text(json.dumps(summary, indent=1) + "\n")
        console.print(f"wrote {json_out}")
    if report_out:
        names = {h.meter_id: h.name for h in run.households}
        report_out.write_text(render_html(build_report(loop, run.deployment.block, names)))
        console.print(f"wrote {report_out}")
    if regie:
        _serve_regie(loop, run, seed, regie_port)


def _check_flexible(share: float | None, compare: bool, regie: bool) -> None:
    """One-line refusals of the options a flexible demo does not combine with."""
    if share is None:
        option = "--compare-flexible" if compare else "--date"
        raise DaiseeError(f"{option} goes with --flexible SHARE: give the share too, e.g. --flexible 0.5")
    if click.get_current_context().get_parameter_source("intervals") is not ParameterSource.DEFAULT:
        raise DaiseeError(
            f"--flexible plays whole days ({HISTORY_DAYS} history day, then the day reported): leave out --intervals"
        )
    if regie:
        raise DaiseeError("--regie serves a plain demo's loop: leave it out with --flexible")


def _flexible_demo(
    sender: Sender,
    crowd: list[Household],
    key: AllocationKey,
    seed: int,
    interval_seconds: int,
    token: str | None,
    share: float,
    compare: bool,
    weather: str | None,
    day: datetime | None,
    json_out: Path | None,
    report_out: Path | None,
) -> None:
    """Play the flexible demo (twice when compared), then print and write the day it reports."""
    flexible = flexible_households(crowd, share, seed)
    loops, intervals = (2 if compare else 1), (HISTORY_DAYS + 1) * _DAY // interval_seconds
    console.print(
        f"[bold]daisee demo[/] on {sender.chain.label}: {len(crowd)} households, {intervals} intervals of "
        f"{interval_seconds} s ({HISTORY_DAYS} history day, then the day reported){' twice' if compare else ''}, "
        f"key {key.name.lower()}, seed {seed}, {len(flexible)} following the signal, weather {weather or 'of the seed'}"
    )
    sky = WEATHER[weather] if weather else None
    start = None if day is None else _history_start(day.date())
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("signing, submitting and settling", total=loops * intervals)
        played = (sender, crowd, key, seed, flexible, interval_seconds, lambda _: progress.advance(task), token)
        runs = compare_flexible(*played, sky, start) if compare else (run_flexible_demo(*played, sky, start),)
    names = [crowd[i].name for i in flexible]
    labels = ("rigid", "flexible")[-len(runs) :]
    summary: dict[str, Any] = {
        label: _day_json(run, names if label == "flexible" else []) for label, run in zip(labels, runs, strict=True)
    }
    summary |= {
        "weather": weather,
        "flexible_share": share,
        "flexible_households": names,
        "day": local_time(runs[0].compared_start, SIMULATED_ZONE),
    }
    _print_flexible(summary)
    if json_out:
        json_out.write_text(json.dumps(summary, indent=1) + "\n")
        console.print(f"wrote {json_out}")
    if report_out:
        report_out.write_text(render_flexible_html(summary, GRID_PRICE_PER_WH / 1000))
        console.print(f"wrote {report_out}")


def _history_start(day: date) -> int:
    """07:00 local, HISTORY_DAYS before `day`: where a flexible demo reporting `day` starts its simulation."""
    return int(datetime.combine(day, time(DAY_START_HOUR), SIMULATED_ZONE).timestamp()) - HISTORY_DAYS * _DAY


def _serve_regie(loop: Loop, run: DemoRun, seed: int, port: int) -> None:
    """The demo loop's régie from a store that goes away with it; the households' wallets to sign in with."""
    console.print("\n[bold]The régie[/]: sign in on the member page with a household's payout wallet. These are")
    console.print("simulation keys, derived from the seed and public by construction: never send them real money.")
    for household, key in zip(run.households, simulated_payout_keys(len(run.households), seed), strict=True):
        console.print(f"  {household.name} ({household.kind.name.lower()}): {household.payout} key 0x{key.hex()}")
    with log_to_stderr("daisee.regie"), tempfile.TemporaryDirectory(prefix="daisee-regie-") as folder:
        settings = RegieSettings(f"sqlite:///{Path(folder) / 'regie.sqlite'}", port=port)
        registry = run.deployment.consent_registry
        serve_until_stopped(Regie(settings, loop, run.deployment.block, registry, loop.sender))


def _summary(run: DemoRun, loop: Loop) -> dict[str, Any]:
    """The run as JSON, every number read back from the chain."""
    treasury, token = loop.config().treasury, loop.settlement_token()
    return {
        "chain_id": run.deployment.chain_id,
        "loop": run.deployment.address,
        "members": [
            {"id": h.name, "kind": h.kind.name.lower(), "meter_id": "0x" + h.meter_id.hex()} for h in run.households
        ],
        "intervals": [
            {
                "t": t,
                "members": {
                    h.name: {
                        "consumption": r.consumed,
                        "production": r.produced,
                        "allocated": r.allocated,
                        "sold": r.sold,
                    }
                    for h in run.households
                    for r in [run.results.get(t, {}).get(h.meter_id, MemberResult())]
                },
            }
            for t in range(run.intervals)
        ],
        "ledger": {h.name: loop.ledger_balance(h.payout) for h in run.households}
        | {"treasury": loop.ledger_balance(treasury)},
        "accounts": {h.name: loop.account(h.payout).as_json() for h in run.households}
        | {"treasury": loop.account(treasury).as_json()},
        "held": int(token.functions.balanceOf(loop.address).call()) if token else 0,
        "tokens": {
            h.name: dict(zip(("produced", "consumed", "self_consumed"), loop.tokens(h.payout), strict=True))
            for h in run.households
        },
        "gas": {
            "registration": run.registration_gas,
            "readings": run.reading_gas,
            "settlement": run.settlement_gas,
            "transactions": run.transactions,
        },
    }


def _print_summary(run: DemoRun, summary: dict[str, Any]) -> None:
    console.print(f"loop {run.deployment.address}: {run.transactions} transactions")
    table = Table(
        "household",
        "kind",
        "used",
        "local",
        "grid",
        "made",
        "sold",
        "export",
        "net €",
        title="kWh: used = local (from the loop) + grid; made = sold (in the loop) + export",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    totals = {"consumed": 0, "allocated": 0, "produced": 0, "sold": 0}
    for member in summary["members"]:
        name = member["id"]
        rows = [i["members"].get(name, {}) for i in summary["intervals"]]
        consumed, allocated = sum(r.get("consumption", 0) for r in rows), sum(r.get("allocated", 0) for r in rows)
        produced, sold = sum(r.get("production", 0) for r in rows), sum(r.get("sold", 0) for r in rows)
        for k, v in zip(totals, (consumed, allocated, produced, sold), strict=True):
            totals[k] += v
        table.add_row(
            name,
            member["kind"],
            _kwh(consumed),
            _kwh(allocated),
            _kwh(consumed - allocated),
            _kwh(produced),
            _kwh(sold),
            _kwh(produced - sold),
            f"{summary['ledger'][name] / 1e6:+.2f}",
        )
    console.print(table)
    if totals["produced"]:
        console.print(
            f"self-consumption: {totals['sold'] / totals['produced']:.0%} of local production was used in the loop"
        )
    if totals["consumed"]:
        console.print(
            f"self-sufficiency: {totals['allocated'] / totals['consumed']:.0%} of consumption came from the loop"
        )
    total = sum(summary["ledger"].values())
    console.print(
        f"the loop holds {summary['held'] / 1e6:.2f} for its members; "
        f"their net positions sum to {total / 1e6:.2f} (treasury included)"
    )
    gas = summary["gas"]
    console.print(
        f"gas: readings {gas['readings']:,}, settlement {gas['settlement']:,}, registration {gas['registration']:,}"
    )


def _kwh(wh: int) -> str:
    return f"{wh / 1000:.2f}"


def _day_json(run: DemoRun, following: list[str]) -> dict[str, Any]:
    """A run's reported day, every figure from the chain's settlement events: the loop's rates (fractions),
    each household's bill in euros (grid purchases included) and energy in Wh, and its appliances' uses."""
    by_meter = compared_day(run)
    totals = {h.name: by_meter[h.meter_id] for h in run.households}
    produced, sold = sum(t.produced for t in totals.values()), sum(t.sold for t in totals.values())
    consumed, allocated = sum(t.consumed for t in totals.values()), sum(t.allocated for t in totals.values())
    return {
        "loop": run.deployment.address,
        "self_consumption": sold / produced if produced else 0.0,
        "self_sufficiency": allocated / consumed if consumed else 0.0,
        "bills": {name: bill(t, GRID_PRICE_PER_WH) / 10**LEDGER_DECIMALS for name, t in totals.items()},
        "members": {
            h.name: {
                "kind": h.kind.name.lower(),
                "follows_signal": h.name in following,
                "consumption": totals[h.name].consumed,
                "allocated": totals[h.name].allocated,
                "production": totals[h.name].produced,
                "sold": totals[h.name].sold,
            }
            for h in run.households
        },
        "uses": {
            h.name: [
                {
                    "appliance": r.use.appliance,
                    "energy_wh": r.use.energy_wh,
                    "usual_start": local_time(r.use.rigid_start, SIMULATED_ZONE),
                    "runs": [[local_time(a, SIMULATED_ZONE), local_time(b, SIMULATED_ZONE)] for a, b in r.runs],
                }
                for r in uses
            ]
            for h, uses in zip(run.households, run.uses, strict=True)
            if uses
        },
    }


def _print_flexible(summary: dict[str, Any]) -> None:
    """The reported day: each run's bills (side by side when compared), the uses moved, and the loop's rates."""
    runs = [label for label in ("rigid", "flexible") if label in summary]
    last = summary[runs[-1]]
    console.print(f"the day reported: from {summary['day']}, 24 h")
    title = f"bills over the day, € (grid purchases at {GRID_PRICE_PER_WH / 1000:.2f} €/kWh included)"
    table = Table("household", "kind", "signal", title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for label in runs:
        table.add_column(label, justify="right")
    if len(runs) == 2:
        table.add_column("change", justify="right")
    for name, member in last["members"].items():
        bills = [summary[label]["bills"][name] for label in runs]
        change = [f"{bills[1] - bills[0]:+.2f}"] if len(runs) == 2 else []
        signal = "follows" if member["follows_signal"] else ""
        table.add_row(name, member["kind"], signal, *(f"{b:.2f}" for b in bills), *change)
    console.print(table)
    for line in moved(last["uses"]):
        console.print(f"  {line}")
    meanings = {
        "self_consumption": "of local production used in the loop",
        "self_sufficiency": "of consumption from the loop",
    }
    for rate, meaning in meanings.items():
        values = [summary[label][rate] for label in runs]
        said = " → ".join(f"{label} {value:.1%}" for label, value in zip(runs, values, strict=True))
        ratio = f" ({values[1] / values[0]:.2f} times)" if len(values) == 2 and values[0] else ""
        console.print(f"{rate.replace('_', '-')}: {said}{ratio} {meaning}")
