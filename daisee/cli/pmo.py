"""`daisee pmo`: who organises the loop, and handing the role over (offered, then accepted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daisee.cli.options import chain_options, json_option, open_loop, open_reader, read_chain_options, require_pmo
from daisee.cli.output import console, print_json, sent
from daisee.domain import address
from daisee.errors import DaiseeError


@click.group()
def pmo() -> None:
    """The loop's organiser: see it, offer the role to another account, accept it."""


@pmo.command("show")
@read_chain_options
@json_option
def show(chain_target: str, chain_id: int | None, deployments_dir: Path, as_json: bool) -> None:
    """The PMO, the account the role is offered to (if any) and the treasury. Needs no account."""
    loop, _ = open_reader(chain_target, chain_id, deployments_dir)
    config, pending = loop.config(), loop.pending_pmo()
    if as_json:
        print_json({"pmo": config.pmo, "pending_pmo": pending, "treasury": config.treasury})
        return
    console.print(f"PMO {config.pmo}; treasury {config.treasury}")
    console.print(f"the role is offered to {pending}" if pending else "the role is offered to no one")


@pmo.command("transfer")
@click.argument("new_pmo")
@chain_options
@json_option
def transfer(new_pmo: str, as_json: bool, **chain_args: Any) -> None:
    """Offer the PMO role to NEW_PMO; it moves when NEW_PMO accepts (`daisee pmo accept`). PMO only."""
    offered = address(new_pmo, "NEW_PMO")
    loop = open_loop(**chain_args)
    require_pmo(loop)
    receipt = loop.transfer_pmo(offered)
    if as_json:
        print_json({"pmo": loop.pmo(), "pending_pmo": loop.pending_pmo(), **sent(receipt)})
        return
    console.print(
        f"the PMO role is offered to {offered}; it moves when that account runs `daisee pmo accept` "
        f"(until then {loop.sender.address} stays PMO); gas {receipt['gasUsed']:,}"
    )


@pmo.command("accept")
@chain_options
@json_option
def accept(as_json: bool, **chain_args: Any) -> None:
    """Take the PMO role offered to the signing account."""
    loop = open_loop(**chain_args)
    pending = loop.pending_pmo()
    if pending is None:
        raise DaiseeError("the PMO role is offered to no one: the PMO offers it first with `daisee pmo transfer`")
    if pending != loop.sender.address:
        raise DaiseeError(
            f"the PMO role is offered to {pending}, not to {loop.sender.address}: "
            "pass --account with that account's key"
        )
    receipt = loop.accept_pmo()
    if as_json:
        print_json({"pmo": loop.pmo(), "pending_pmo": loop.pending_pmo(), **sent(receipt)})
        return
    console.print(f"{loop.sender.address} is now the loop's PMO; gas {receipt['gasUsed']:,}")
