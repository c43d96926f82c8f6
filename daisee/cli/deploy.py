"""`daisee deploy`: create a loop on a chain and record it."""

from __future__ import annotations

from pathlib import Path

import click

from daisee.chain.deploy import (
    MIN_GRACE_SECONDS,
    REAL_NETWORK_NOTICE,
    LoopParameters,
    deploy_loop,
    ensure_can_record,
    journal_path,
    save_deployment,
)
from daisee.cli.options import chain_options, json_option, open_chain, open_sender, token_option
from daisee.cli.output import console, print_json
from daisee.cli.values import describe_duration, duration
from daisee.domain import AllocationKey, address, price_per_kwh, price_per_wh
from daisee.errors import DaiseeError
from daisee.loop import Loop


@click.command()
@chain_options
@click.option(
    "--interval-seconds",
    type=click.IntRange(60, 86_400),
    default=900,
    show_default=True,
    help="Settlement interval (15 min in France).",
)
@click.option(
    "--key",
    type=click.Choice(["prorata", "static", "weighted"]),
    default="prorata",
    show_default=True,
    help="Allocation key.",
)
@click.option("--price", default="0.10", show_default=True, help="Price of locally shared energy, in currency per kWh.")
@click.option("--genesis", type=int, help="Start of interval 0 (unix seconds); default: the current interval boundary.")
@click.option(
    "--grace-seconds",
    type=click.IntRange(max=86_400),
    help=f"How long an interval waits for missing readings after its end, {MIN_GRACE_SECONDS} s or more "
    "(default: a third of an interval).",
)
@click.option(
    "--notice",
    help="How long ahead the PMO announces new meters, key changes and terms: 7d, 12h, 30m, 0 or seconds "
    f"(default: 0 on development chains, {describe_duration(REAL_NETWORK_NOTICE)} elsewhere).",
)
@click.option(
    "--price-cap",
    help="The highest price the PMO may ever set, in currency per kWh (default: twice --price).",
)
@token_option
@click.option("--treasury", help="The PMO's ledger account (default: the PMO).")
@click.option("--force", is_flag=True, help="Replace an existing deployment record for this chain.")
@json_option
def deploy(
    chain_target: str,
    chain_id: int | None,
    account: str | None,
    password_file: Path | None,
    deployments_dir: Path,
    interval_seconds: int,
    key: str,
    price: str,
    genesis: int | None,
    grace_seconds: int | None,
    notice: str | None,
    price_cap: str | None,
    token: str | None,
    treasury: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Deploy a loop administered by the signing account (the PMO) and write deployments/<chain-id>.json."""
    params = LoopParameters(
        interval_seconds,
        AllocationKey.parse(key),
        price_per_wh(price),
        genesis,
        grace_seconds,
        address(treasury, "--treasury") if treasury else None,
        token,
        notice_seconds=None if notice is None else duration(notice, "--notice"),
        price_cap_per_wh=None if price_cap is None else _price_cap(price_cap),
    )
    params.check()
    chain = open_chain(chain_target, chain_id)
    recorded = chain.kind != "embedded"
    if recorded:
        ensure_can_record(chain, deployments_dir, force=force)
    sender = open_sender(chain, account, password_file)
    journal = journal_path(chain.chain_id, deployments_dir) if recorded else None
    if journal and journal.exists() and not as_json:
        console.print(f"resuming the unfinished deployment noted in {journal}")
    deployment = deploy_loop(sender, params, journal)
    path = save_deployment(deployment, deployments_dir) if recorded else None
    unprotected = Loop(sender, deployment.address).config().unprotected()
    if as_json:
        print_json({**vars(deployment), "record": str(path) if path else None, "unprotected": unprotected})
        return
    recorded_params = deployment.parameters
    console.print(f"loop deployed at [bold]{deployment.address}[/] on {chain.label}")
    console.print(f"  tx {deployment.tx_hash} in block {deployment.block}, gas {recorded_params['gas_used']:,}")
    console.print(f"  PMO {deployment.deployer}; interval {interval_seconds} s; key {key}; price {price} per kWh")
    console.print(
        f"  grace {recorded_params['grace_seconds']} s; notice {describe_duration(recorded_params['notice_seconds'])}; "
        f"price cap {price_per_kwh(recorded_params['price_cap_per_wh'])} per kWh"
    )
    for said in unprotected:
        console.print(f"  [bold yellow]warning:[/] {said}")
    if path:
        console.print(f"  recorded in {path}")
    else:
        console.print(
            "  the embedded chain ends with this command, so nothing was recorded (use --chain anvil to keep a loop)"
        )


def _price_cap(text: str) -> int:
    try:
        return price_per_wh(text)
    except DaiseeError as exc:
        raise DaiseeError(f"--price-cap: {exc}") from None
