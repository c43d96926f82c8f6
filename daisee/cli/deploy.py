"""`daisee deploy`: create a loop on a chain and record it."""

from __future__ import annotations

from pathlib import Path

import click

from daisee.chain.deploy import (
    TEST_EURO,
    LoopParameters,
    deploy_loop,
    ensure_can_record,
    journal_path,
    save_deployment,
)
from daisee.cli.options import chain_options, json_option, open_chain, open_sender
from daisee.cli.output import console, print_json
from daisee.domain import AllocationKey, address, price_per_wh


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
    type=click.IntRange(0, 86_400),
    help="How long an interval waits for missing readings after its end (default: a third of an interval).",
)
@click.option(
    "--token",
    default=TEST_EURO,
    show_default=True,
    help="Settlement ERC-20 address for deposits and withdrawals, `test-euro` (dev chains) or `none`.",
)
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
    token: str,
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
        None if token == "none" else token if token == TEST_EURO else address(token, "--token"),
    )
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
    if as_json:
        print_json({**vars(deployment), "record": str(path) if path else None})
        return
    console.print(f"loop deployed at [bold]{deployment.address}[/] on {chain.label}")
    console.print(f"  tx {deployment.tx_hash} in block {deployment.block}, gas {deployment.parameters['gas_used']:,}")
    console.print(f"  PMO {deployment.deployer}; interval {interval_seconds} s; key {key}; price {price} per kWh")
    if path:
        console.print(f"  recorded in {path}")
    else:
        console.print(
            "  the embedded chain ends with this command, so nothing was recorded (use --chain anvil to keep a loop)"
        )
