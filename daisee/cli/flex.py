"""`daisee flex`: when to run a shiftable task, from the loop's flexibility signal."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from daisee.cli.regie import ask_regie
from daisee.errors import DaiseeError
from daisee.flex.forecast import Expected
from daisee.flex.planner import Task, parse_deadline, parse_duration, plan
from daisee.loopback import LOOPBACK
from daisee.regie.service import DEFAULT_PORT, DEFAULT_TASK_POWER_W, MAX_TASK_POWER_W
from daisee.untrusted_json import UntrustedJSONError, parse_untrusted

MAX_SIGNAL_BYTES = 1024 * 1024  # two days of minutes, with room to spare


@click.group()
def flex() -> None:
    """The loop's flexibility signal: when the loop has sun to spare."""


@flex.command("plan")
@click.option("--duration", required=True, help="How long the task runs: 2h, 90min, 1h30.")
@click.option("--deadline", required=True, help="When it must be done: 18:00 (the next one) or 2026-06-01T18:00.")
@click.option(
    "--power", type=click.IntRange(1, MAX_TASK_POWER_W), default=DEFAULT_TASK_POWER_W, show_default=True, help="W."
)
@click.option("--interruptible", is_flag=True, help="It may pause and resume (an EV charge, a water heater).")
@click.option("--regie", "regie_url", default=f"http://{LOOPBACK}:{DEFAULT_PORT}", show_default=True)
@click.option(
    "--signal",
    "signal_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Plan on a signal saved from /api/signal instead of asking the régie.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(
    duration: str,
    deadline: str,
    power: int,
    interruptible: bool,
    regie_url: str,
    signal_file: Path | None,
    as_json: bool,
) -> None:
    """The best start for a task (a washing machine, a dishwasher, a water heater, an EV charge): the one
    the loop is expected to supply most of, done by the deadline."""
    if signal_file is None:
        query = {"duration": duration, "deadline": deadline, "power": str(power)}
        query |= {"interruptible": "true"} if interruptible else {}
        chosen = ask_regie(regie_url.rstrip("/"), "/api/plan?" + urlencode(query), what="the plan")["plan"]
    else:
        chosen = _plan_on_file(signal_file, duration, deadline, power, interruptible)
    if as_json:
        click.echo(json.dumps(chosen, indent=1))
        return
    runs = ", ".join(f"{r['start'][11:16]} to {r['end'][11:16]}" for r in chosen["runs"])
    click.echo(
        f"start at {chosen['start'][:16].replace('T', ' ')} (runs {runs}): {chosen['local_wh'] / 1000:.2f} of "
        f"{chosen['energy_wh'] / 1000:.2f} kWh from the loop's sun to spare ({chosen['local_share']:.0%})"
    )


def _plan_on_file(path: Path, duration: str, deadline: str, power: int, interruptible: bool) -> dict[str, Any]:
    signal = _read_signal(path)
    try:
        tz = ZoneInfo(str(signal.get("zone")))
        steps = [
            Expected(int(s["start"]), int(s["end"]), int(s["consumption_wh"]), int(s["production_wh"]))
            for s in signal["steps"]
        ]
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError):
        raise DaiseeError(
            f"{path} is not a régie's signal with its energy (steps with consumption_wh and production_wh): "
            "save /api/signal signed in as a member, or plan with --regie"
        ) from None
    now = max(int(time.time()), int(signal.get("computed_at", 0)))
    task = Task(parse_duration(duration), power, parse_deadline(deadline, now, tz), interruptible)
    return plan(steps, task, now).as_json(tz)


def _read_signal(path: Path) -> dict[str, Any]:
    try:
        found = parse_untrusted(path.read_bytes(), max_bytes=MAX_SIGNAL_BYTES)
    except (OSError, UntrustedJSONError) as exc:
        raise DaiseeError(f"{path}: {exc}: give a signal saved from the régie's /api/signal") from None
    if not isinstance(found, dict):
        raise DaiseeError(f"{path} is not a signal (a JSON object): give one saved from the régie's /api/signal")
    return found
