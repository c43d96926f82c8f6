"""`daisee tutorial`: walk through a whole loop, one explained step at a time."""

from __future__ import annotations

from pathlib import Path

import click

from daisee.cli.output import console
from daisee.tutorial import run_tutorial


def _wait_for_enter() -> None:
    click.prompt("Press Enter to run this step", default="", show_default=False, prompt_suffix=" ")


@click.command()
@click.option(
    "--chain",
    "chain_target",
    default="embedded",
    show_default=True,
    help="embedded (in this process), anvil (started here) or an http(s):// RPC URL.",
)
@click.option("--yes", is_flag=True, help="Run every step without waiting for Enter.")
@click.option("--from-step", type=int, default=1, show_default=True, help="Resume from this step (saved progress).")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("daisee-tutorial"),
    show_default=True,
    help="Folder for everything the tutorial makes: keystores, deployment record, outboxes, report, progress.",
)
def tutorial(chain_target: str, yes: bool, from_step: int, workdir: Path) -> None:
    """Walk through a whole loop on a real chain: accounts, deployment, meters, a real Linky capture,
    signed readings, rejected cheats, oracles, settlement, balances and the report."""
    run_tutorial(chain_target, workdir, from_step, console, None if yes else _wait_for_enter)
