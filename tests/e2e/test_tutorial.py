"""`daisee tutorial`: unattended, resumed, interactive through a real terminal, and refused bad starts."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result

from daisee.cli import cli

PROMPT = b"Press Enter to run this step"


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["tutorial", *args], catch_exceptions=False)


def test_unattended_run_settles_and_reports(tmp_path: Path) -> None:
    workdir = tmp_path / "tut"
    result = _run("--yes", "--workdir", str(workdir))
    assert result.exit_code == 0, result.output
    assert "ledger sum (treasury included): 0" in result.stdout
    assert "BAD_SIGNATURE" in result.stdout
    assert "STALE_INTERVAL" in result.stdout
    assert (workdir / "report.html").read_text().startswith("<!")
    assert list((workdir / "home" / "keystores").glob("*.json"))
    assert list((workdir / "deployments").glob("*.json"))
    assert json.loads((workdir / "progress.json").read_text())["done"] == 12

    resumed = _run("--yes", "--from-step", "10", "--workdir", str(workdir))
    assert resumed.exit_code == 0, resumed.output
    assert "step 9/12" not in resumed.stdout
    assert "step 10/12" in resumed.stdout
    assert "ledger sum (treasury included): 0" in resumed.stdout


def test_bad_starts_are_one_error_line(tmp_path: Path) -> None:
    for step in ("99", "5"):
        result = _run("--yes", "--from-step", step, "--workdir", str(tmp_path / "empty"))
        assert result.exit_code == 1
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("error:")


def _read_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    """What the terminal shows until `wanted` appears."""
    seen = b""
    while wanted not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {wanted!r}; got:\n{seen.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
    return seen


def test_interactive_run_then_resume(tmp_path: Path) -> None:
    workdir = tmp_path / "tut"
    master, slave = pty.openpty()
    env = os.environ | {"COLUMNS": "200"}
    child = subprocess.Popen(
        [str(Path(sys.executable).with_name("daisee")), "tutorial", "--workdir", str(workdir)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=tmp_path,
    )
    os.close(slave)
    try:
        deadline = time.monotonic() + 120
        for _ in range(3):
            _read_until(master, PROMPT, deadline)
            os.write(master, b"\n")
        _read_until(master, PROMPT, deadline)  # step 4 waits: steps 1 to 3 are done
    finally:
        child.kill()
        child.wait()
        os.close(master)
    assert json.loads((workdir / "progress.json").read_text())["done"] == 3

    resumed = _run("--yes", "--from-step", "3", "--workdir", str(workdir))
    assert resumed.exit_code == 0, resumed.output
    assert (workdir / "report.html").exists()
    assert "ledger sum (treasury included): 0" in resumed.stdout
