"""The systemd units in oracles/ run real commands, wait for the clock, keep their secrets root-only, and the
Raspberry Pi guide shows the oracle's unit exactly as shipped."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from daisee.cli import cli

ORACLES = Path(__file__).parents[2] / "oracles"
GUIDE = Path(__file__).parents[2] / "docs" / "raspberry-pi.md"
UNITS = sorted(ORACLES.glob("*.service"))


def _settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_both_units_are_shipped() -> None:
    assert [unit.name for unit in UNITS] == ["daisee-keeper.service", "daisee-oracle.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_the_command_line_is_one_daisee_accepts(unit: Path) -> None:
    [exec_start] = _settings(unit)["ExecStart"]
    binary, *args = shlex.split(exec_start)
    assert binary == "/opt/daisee/bin/daisee"
    command: click.Command = cli
    context = None
    while isinstance(command, click.Group):  # walk down to the command, as click would
        name, args = args[0], args[1:]
        context = click.Context(command, info_name=name, parent=context)
        command = command.commands[name]
    command.make_context(command.name, list(args), parent=context)  # raises on an unknown option


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_the_service_waits_for_the_clock_and_stops_cleanly(unit: Path) -> None:
    settings = _settings(unit)
    for key in ("After", "Wants"):
        assert settings[key] == ["network-online.target time-sync.target"]
    assert settings["KillSignal"] == ["SIGTERM"]
    assert settings["User"] == settings["Group"] == ["daisee"]
    assert settings["ReadWritePaths"] == ["/var/lib/daisee"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_the_install_steps_leave_files_the_service_can_read(unit: Path) -> None:
    steps = [line for line in unit.read_text().splitlines() if line.startswith("#   sudo install")]
    for step in steps:
        if ".toml" in step or ".json" in step:  # read by the daisee user: root:daisee 640
            assert "-o root -g daisee -m 640" in step, step
        if ".env" in step:  # read by systemd as root only
            assert "-m 600 /dev/null" in step, step
    assert any("-d -o root -g daisee -m 750 /etc/daisee" in step for step in steps)


def test_the_guide_shows_the_oracle_unit_as_shipped() -> None:
    [shown] = re.findall(r"```ini\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    shipped = (ORACLES / "daisee-oracle.service").read_text()
    assert shown == shipped[shipped.index("[Unit]") :]
    assert "clock.conf" not in GUIDE.read_text()  # the unit waits for the clock itself
