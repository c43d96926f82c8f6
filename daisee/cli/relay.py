"""`daisee relay`: take households' signed readings over HTTP and submit them to the loop in batches."""

from __future__ import annotations

from pathlib import Path

import click

from daisee.chain.accounts import daisee_home
from daisee.chain.deploy import load_deployment
from daisee.cli.options import chain_options, open_chain, open_sender
from daisee.cli.output import log_to_stderr
from daisee.cli.signals import stop_on_signals, wait_for
from daisee.domain import address
from daisee.errors import DaiseeError
from daisee.http_service import settle_heap
from daisee.keeper import KEEP_EVERY
from daisee.loop import READING_BATCH, Loop
from daisee.loopback import LOOPBACK
from daisee.relay import Relay, RelaySettings
from daisee.relay.service import DEFAULT_PORT


@click.group()
def relay() -> None:
    """Relay households' signed readings to the loop, paying the gas for them."""


@relay.command("serve")
@chain_options
@click.option("--loop", "loop_address", help="Loop contract address (default: the deployment record's).")
@click.option("--host", default=LOOPBACK, show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=READING_BATCH, show_default=True, help="Readings per batch."
)
@click.option(
    "--batch-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Send a smaller batch once its oldest reading has waited this long.",
)
@click.option(
    "--in-flight",
    type=click.IntRange(1, 16),
    default=RelaySettings.in_flight,
    show_default=True,
    help="Batches sent at once, without waiting for the one before (consecutive nonces).",
)
@click.option(
    "--queue",
    "queue_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="SQLite queue file (default: relay-<chain id>.sqlite in $DAISEE_HOME or ~/.daisee).",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=RelaySettings.rate_limit,
    show_default=True,
    help="Readings per meter per minute.",
)
@click.option(
    "--keeper/--no-keeper",
    default=True,
    show_default=True,
    help=f"Also finalize and settle the loop's intervals every {KEEP_EVERY:g} s (as `daisee keeper run --watch`), "
    "so the loop keeps taking readings without anything else.",
)
def serve(
    chain_target: str,
    chain_id: int | None,
    account: str | None,
    password_file: Path | None,
    deployments_dir: Path,
    loop_address: str | None,
    host: str,
    port: int,
    batch_size: int,
    batch_seconds: float,
    in_flight: int,
    queue_path: Path | None,
    rate_limit: int,
    keeper: bool,
) -> None:
    """Serve the relay's HTTP API until Ctrl-C (or SIGTERM), then stop cleanly.

    POST /readings takes one signed reading or {"readings": [...]}, checks each against its meter on the
    chain and queues it; GET /readings/<meter id>/<interval> tells what became of it; GET /status and
    GET /health are for the operator. The account pays the gas of every batch, and of the settlements
    unless --no-keeper.
    """
    chain = open_chain(chain_target, chain_id)
    given = address(loop_address, "--loop") if loop_address else load_deployment(chain, deployments_dir).address
    loop_at = chain.w3.to_checksum_address(given)
    if not chain.w3.eth.get_code(loop_at):
        raise DaiseeError(f"no contract at {loop_at} on {chain.label}: check --loop")
    loop = Loop(open_sender(chain, account, password_file), loop_at)
    settings = RelaySettings(
        host,
        port,
        batch_size,
        batch_seconds,
        rate_limit,
        in_flight=in_flight,
        keeper_seconds=KEEP_EVERY if keeper else None,
    )
    stop = stop_on_signals()
    queue = queue_path or daisee_home() / f"relay-{chain.chain_id}.sqlite"
    with log_to_stderr("daisee.relay", "daisee.keeper"), Relay(loop, queue, settings):
        settle_heap()
        wait_for(stop)
