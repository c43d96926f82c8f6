"""`daisee demo`: the main job, a simulated loop run through the contracts (the embedded chain by default)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.progress import Progress
from rich.table import Table

from daisee.cli.options import chain_options, open_chain, open_sender, token_option
from daisee.cli.output import console
from daisee.cli.regie import log_to_stderr, serve_until_stopped
from daisee.demo import DemoRun, run_demo, simulated_households, simulated_payout_keys
from daisee.domain import AllocationKey
from daisee.loop import Loop, MemberResult
from daisee.regie.service import DEFAULT_PORT, Regie, RegieSettings
from daisee.report import build_report
from daisee.report.html import render_html


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
    token: str | None,
    **chain_args: Any,
) -> None:
    """Simulate a neighbourhood's day on a real chain: deploy a loop, admit the households, sign and
    submit every interval's meter readings, finalize and settle each interval, and show who owes whom.

    A development chain's clock is moved through the day; on another network (--chain with a URL or a
    profile, --account, and --token with a real token or `none`) the demo plays its intervals in real
    time, from a few minutes after it starts, and prepays nothing."""
    chain = open_chain(chain_args["chain_target"], chain_args["chain_id"])
    sender = open_sender(chain, chain_args["account"], chain_args["password_file"])
    crowd = simulated_households(households, seed)
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


def _serve_regie(loop: Loop, run: DemoRun, seed: int, port: int) -> None:
    """The demo loop's régie from a store that goes away with it; the households' wallets to sign in with."""
    console.print("\n[bold]The régie[/]: sign in on the member page with a household's payout wallet. These are")
    console.print("simulation keys, derived from the seed and public by construction: never send them real money.")
    for household, key in zip(run.households, simulated_payout_keys(len(run.households), seed), strict=True):
        console.print(f"  {household.name} ({household.kind.name.lower()}): {household.payout} key 0x{key.hex()}")
    log_to_stderr()
    with tempfile.TemporaryDirectory(prefix="daisee-regie-") as folder:
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
