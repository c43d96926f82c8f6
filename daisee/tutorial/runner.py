"""Walk through the steps: explain, prompt, act, save progress; resume from a saved step."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule

from daisee.chain.accounts import HOME_ENV
from daisee.chain.connect import Chain, connect
from daisee.chain.nodes import LocalNode
from daisee.errors import DaiseeError
from daisee.tutorial.steps import STEPS, Context, funder, unlock_keys

PROGRESS_FILE = "progress.json"


def load_progress(workdir: Path) -> dict[str, Any]:
    """The saved progress, or an empty one."""
    path = workdir / PROGRESS_FILE
    if not path.exists():
        return {"done": 0, "state": {}}
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DaiseeError(f"unreadable progress file {path} ({exc}): delete it and start again") from None
    return data


def save_progress(workdir: Path, chain_target: str, done: int, state: dict[str, Any]) -> None:
    path = workdir / PROGRESS_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"chain": chain_target, "done": done, "state": state}, indent=1) + "\n")
    tmp.replace(path)


def check_start(workdir: Path, chain_target: str, from_step: int) -> dict[str, Any]:
    """The progress to resume from, refusing a step that does not exist or whose earlier steps never ran."""
    if not 1 <= from_step <= len(STEPS):
        raise DaiseeError(f"there is no step {from_step}: the tutorial has steps 1 to {len(STEPS)}")
    if from_step == 1:
        return {"done": 0, "state": {}}
    progress = load_progress(workdir)
    if progress.get("done", 0) < from_step - 1:
        raise DaiseeError(
            f"no saved progress up to step {from_step - 1} in {workdir}: run `daisee tutorial` from the start first"
        )
    if progress.get("chain") != chain_target:
        raise DaiseeError(
            f"the saved progress in {workdir} is for --chain {progress.get('chain')}, not {chain_target}: "
            "pass the same --chain, or start again without --from-step"
        )
    return progress


@contextmanager
def home_inside(workdir: Path) -> Iterator[None]:
    """Point DAISEE_HOME (keystores) inside the working folder for the run."""
    before = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(workdir / "home")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = before


def open_chain(chain_target: str, workdir: Path, stack: ExitStack) -> Chain:
    """The embedded chain, an anvil started here (its state kept in the working folder), or a URL."""
    if chain_target == "anvil":
        workdir.mkdir(parents=True, exist_ok=True)
        node = stack.enter_context(LocalNode("anvil", state_file=workdir / "anvil-state.json"))
        return connect(node.url)
    return connect(chain_target)


def check_resumable(chain: Chain, state: dict[str, Any]) -> None:
    """Refuse to resume on a chain that no longer holds the saved loop (a development node restarted)."""
    loop = state.get("loop")
    if loop and not chain.w3.eth.get_code(loop):
        raise DaiseeError(
            f"the tutorial's loop {loop} is not on {chain.label} (was the node restarted?): "
            "start again without --from-step"
        )


def run_tutorial(
    chain_target: str, workdir: Path, from_step: int, console: Console, prompt: Callable[[], None] | None
) -> None:
    """Run the steps from `from_step`; `prompt` (None when unattended) waits before each step's action."""
    progress = check_start(workdir, chain_target, from_step)
    with ExitStack() as stack:
        chain = open_chain(chain_target, workdir, stack)
        replay = chain.kind == "embedded" and from_step > 1
        if from_step <= 2 or replay:
            funder(chain)  # before anything is written: a node that cannot fund the tutorial is refused here
        else:
            check_resumable(chain, progress["state"])
        workdir.mkdir(parents=True, exist_ok=True)
        stack.enter_context(home_inside(workdir))
        ctx = Context(chain, workdir, Console(quiet=True) if replay else console, dict(progress["state"]))
        if replay:
            with console.status(f"replaying steps 1 to {from_step - 1} on a fresh embedded chain"):
                for step in STEPS[: from_step - 1]:
                    step.run(ctx)
            ctx.out = console
        elif from_step > 2:
            unlock_keys(ctx)
        for number, step in enumerate(STEPS[from_step - 1 :], start=from_step):
            console.print(Rule(f"step {number}/{len(STEPS)}: {step.title}"))
            console.print(step.why)
            console.print(f"[dim]$ {step.command}[/]", soft_wrap=True)
            if prompt is not None:
                prompt()
            step.run(ctx)
            save_progress(workdir, chain_target, number, ctx.state)
    console.print(f"[bold green]done:[/] everything the tutorial made is in {workdir}")
