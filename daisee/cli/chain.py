"""`daisee chain`: run a local development node."""

from __future__ import annotations

import click

from daisee.chain.connect import Chain, connect
from daisee.chain.nodes import LOOPBACK, LocalNode
from daisee.cli.output import console


@click.group()
def chain() -> None:
    """Run a local development chain (Anvil or Ganache from node_modules)."""


@chain.command("start")
@click.option("--kind", type=click.Choice(["anvil", "ganache"]), default="anvil", show_default=True)
@click.option("--host", default=LOOPBACK, show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", type=int, default=8545, show_default=True)
@click.option("--block-time", type=float, help="Mine a block every N seconds instead of on each transaction.")
@click.option("--chain-id", type=int, help="Chain id to report (default: 31337 for anvil, 1337 for ganache).")
def start(kind: str, host: str, port: int, block_time: float | None, chain_id: int | None) -> None:
    """Start a node in the foreground until Ctrl-C, then stop it cleanly."""
    node = LocalNode(kind, port=port, host=host, block_time=block_time, chain_id=chain_id)
    with node:
        info: Chain = connect(node.url)
        console.print(f"{kind} listening on [bold]{node.url}[/], chain id {info.chain_id}")
        console.print("development accounts (publicly known keys, for local use only):")
        for address in info.dev_accounts()[:3]:
            console.print(f"  {address}")
        console.print(
            f"use it with [bold]--chain {kind if port == 8545 and host == LOOPBACK else node.url}[/]; Ctrl-C stops it"
        )
        try:
            node.wait()
        except KeyboardInterrupt:
            console.print(f"stopping {kind}")
