"""`daisee chain`: run a local development node."""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click
from rich.table import Table

from daisee.chain.compiler import EVM_VERSIONS
from daisee.chain.connect import Chain, connect
from daisee.chain.networks import Network, load_networks, networks_file
from daisee.chain.nodes import LocalNode
from daisee.cli.options import json_option
from daisee.cli.output import console, print_json
from daisee.loopback import LOOPBACK


@click.group()
def chain() -> None:
    """Run a local development chain (Anvil or Ganache from node_modules); list network profiles."""


@chain.command("start")
@click.option("--kind", type=click.Choice(["anvil", "ganache"]), default="anvil", show_default=True)
@click.option("--host", default=LOOPBACK, show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", type=int, default=8545, show_default=True)
@click.option("--block-time", type=float, help="Mine a block every N seconds instead of on each transaction.")
@click.option("--chain-id", type=int, help="Chain id to report (default: 31337 for anvil, 1337 for ganache).")
@click.option(
    "--hardfork",
    type=click.Choice(EVM_VERSIONS),
    help="The EVM the node runs (default: its latest); london is a Clique chain's, without PUSH0.",
)
def start(
    kind: str, host: str, port: int, block_time: float | None, chain_id: int | None, hardfork: str | None
) -> None:
    """Start a node in the foreground until Ctrl-C or SIGTERM, then stop it cleanly."""
    node = LocalNode(kind, port=port, host=host, block_time=block_time, chain_id=chain_id, hardfork=hardfork)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # leaves `with node` below, which stops the node

    # SIGTERM (systemd, docker, kill) and SIGHUP (the terminal closed) stop the node as Ctrl-C does;
    # left to their default they would end this process and orphan the node on its port. SIGINT too, even
    # where it came ignored (a job started with & from a script): "Ctrl-C stops it" holds everywhere
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, on_signal) for signum in stopping}
    try:
        with node:
            with _signals_held(*stopping):
                info: Chain = connect(node.url)
                console.print(f"{kind} listening on [bold]{node.url}[/], chain id {info.chain_id}")
                console.print("development accounts (publicly known keys, for local use only):")
                for address in info.dev_accounts()[:3]:
                    console.print(f"  {address}")
                target = kind if port == 8545 and host == LOOPBACK else node.url
                console.print(f"use it with [bold]--chain {target}[/]; Ctrl-C stops it")
            node.wait()
    except KeyboardInterrupt:  # `with node` has stopped the node
        console.print(f"stopped {kind}")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _signals_held(*signums: int) -> Iterator[None]:
    """Signals wait until the block is done: a Ctrl-C that lands while a line is flushed would print it twice."""
    held = set(signums)
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


@chain.command("networks")
@json_option
def networks(as_json: bool) -> None:
    """The network profiles `--chain NAME` accepts: built in, and yours in networks.toml."""
    profiles = load_networks()
    if as_json:
        print_json([_profile_json(n) for n in profiles.values()])
        return
    table = Table("network", "chain id", "RPC URL in", "confirmations", "fees", "description", box=None)
    for n in profiles.values():
        env = f"${n.rpc_env}" + ("" if os.environ.get(n.rpc_env) else " (unset)")
        fees = n.policy.fees if n.policy.gas_price_gwei is None else f"legacy at {n.policy.gas_price_gwei} gwei"
        if n.policy.max_fee_gwei is not None:
            fees += f", at most {n.policy.max_fee_gwei} gwei"
        table.add_row(n.name, str(n.chain_id), env, str(n.policy.confirmations), fees, n.description)
    console.print(table)
    console.print(f"add or override profiles in {networks_file()}")


def _profile_json(network: Network) -> dict[str, object]:
    return {
        "name": network.name,
        "chain_id": network.chain_id,
        "rpc_env": network.rpc_env,
        "rpc_set": bool(os.environ.get(network.rpc_env)),
        "description": network.description,
        **dataclasses.asdict(network.policy),
    }
