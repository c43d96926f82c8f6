"""Run the `daisee` command in-process, as a user would type it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from daisee.cli import cli


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def error(self) -> str:
        """The one line a refused command prints, without `error: `; fails unless it exited 1 with one line."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert self.exit_code == 1, (self.exit_code, self.stdout, self.stderr)
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), self.stderr
        return lines[0].removeprefix("error: ")


Daisee = Callable[..., Outcome]


@pytest.fixture
def daisee(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Daisee:
    """`daisee(*args, env=...)` runs the CLI in a fresh working folder and returns its outcome."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Outcome:
        result = CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return run
