"""`daisee keeper`: finalize and settle the loop's intervals, so that readings keep being accepted."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click
from web3.exceptions import ContractLogicError

from daisee.chain.deploy import load_deployment
from daisee.cli.options import chain_options, json_option, open_chain, open_sender
from daisee.cli.output import console, log_to_stderr, print_json
from daisee.cli.values import moment
from daisee.errors import DaiseeError
from daisee.keeper import KEEP_EVERY, Keeper
from daisee.loop import Loop, SettleResult, tx_hash


@click.group()
def keeper() -> None:
    """Finalize and settle the loop's intervals (anyone may; the account pays the gas)."""


def _as_json(result: SettleResult) -> dict[str, Any]:
    return {
        "interval": result.interval,
        "transactions": len(result.receipts),
        "gas_used": result.gas_used,
        "tx_hash": tx_hash(result.receipts[-1]),
    }


@keeper.command("run")
@click.option("--watch", is_flag=True, help="Keep going until Ctrl-C or SIGTERM, retrying when the node fails.")
@click.option(
    "--every",
    type=click.FloatRange(min=0, min_open=True),
    help=f"With --watch: seconds between passes (default {KEEP_EVERY:g}).",
)
@chain_options
@json_option
def run(
    watch: bool,
    every: float | None,
    as_json: bool,
    chain_target: str,
    chain_id: int | None,
    account: str | None,
    password_file: Path | None,
    deployments_dir: Path,
) -> None:
    """Finalize and settle every interval that is ready, once or (--watch) continuously.

    An interval is ready once it has ended and every active meter reported it or its grace period passed.
    Readings may run at most two intervals ahead of settlement, so a loop needs one keeper running: the
    PMO's, the relay's (`daisee relay serve` keeps by default) or anyone's. One log line per settled
    interval goes to stderr; --json prints the settled intervals on stdout (with --watch, one JSON line
    each).
    """
    if every is not None and not watch:
        raise DaiseeError("--every only applies with --watch: add --watch, or drop --every for a single pass")
    chain = open_chain(chain_target, chain_id)
    deployment = load_deployment(chain, deployments_dir)
    loop = Loop(open_sender(chain, account, password_file), deployment.address)
    on_settled = (lambda result: print(json.dumps(_as_json(result)), flush=True)) if watch and as_json else None
    the_keeper = Keeper(loop, every or KEEP_EVERY, on_settled=on_settled, from_block=deployment.block)
    with log_to_stderr("daisee.keeper"), _stopping_on_signals(the_keeper):
        if watch:
            the_keeper.run()
            return
        settled = the_keeper.run_once()
    pending = {
        "next_to_finalize": loop.next_to_finalize(),
        "next_to_settle": loop.next_to_settle(),
        "current_interval": _current_interval(loop),
    }
    if as_json:
        print_json({"settled": [_as_json(r) for r in settled], **pending})
    elif settled:
        gas = sum(r.gas_used for r in settled)
        first, last = settled[0].interval, settled[-1].interval
        span = f"interval {first}" if first == last else f"intervals {first} to {last}"
        console.print(f"settled {span} ({len(settled)}, gas {gas:,}); next to settle: {pending['next_to_settle']}")
    elif pending["current_interval"] is None:
        console.print(f"nothing to settle: the loop's interval 0 starts at {moment(loop.config().genesis)}")
    else:
        console.print(
            f"nothing to settle: next to settle is interval {pending['next_to_settle']}, "
            f"the current one is {pending['current_interval']}"
        )


def _current_interval(loop: Loop) -> int | None:
    """The interval under way; None before the loop's genesis (the contract's view refuses to answer then)."""
    try:
        return loop.current_interval()
    except ContractLogicError:
        return None


@contextmanager
def _stopping_on_signals(the_keeper: Keeper) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the keeper after the transaction in progress, not in its middle."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        the_keeper.stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
