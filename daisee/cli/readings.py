"""`daisee readings`: the PMO stops and resumes the loop's intake of readings; money moves on regardless."""

from __future__ import annotations

from typing import Any

import click

from daisee.cli.options import chain_options, json_option, open_loop, require_pmo
from daisee.cli.output import console, print_json, sent
from daisee.errors import DaiseeError


@click.group()
def readings() -> None:
    """Pause and resume the loop's readings (PMO): a compromised gateway, a migration."""


def _switch(pause: bool, as_json: bool, chain_args: dict[str, Any]) -> None:
    loop = open_loop(**chain_args)
    require_pmo(loop)
    if loop.paused() == pause:
        state = "paused already" if pause else "not paused"
        raise DaiseeError(f"the loop's readings are {state}: nothing to do")
    receipt = loop.pause_readings() if pause else loop.unpause_readings()
    if as_json:
        print_json({"paused": loop.paused(), **sent(receipt)})
    elif pause:
        console.print(
            f"readings paused: the loop refuses every reading until `daisee readings resume`; settlement, "
            f"deposits and withdrawals go on; gas {receipt['gasUsed']:,}"
        )
    else:
        console.print(f"readings resumed; gas {receipt['gasUsed']:,}")


@readings.command("pause")
@chain_options
@json_option
def pause(as_json: bool, **chain_args: Any) -> None:
    """Refuse every reading from now on, until resumed. PMO only."""
    _switch(True, as_json, chain_args)


@readings.command("resume")
@chain_options
@json_option
def resume(as_json: bool, **chain_args: Any) -> None:
    """Accept readings again. PMO only."""
    _switch(False, as_json, chain_args)
