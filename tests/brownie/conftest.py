"""Brownie and the daisee CLI of `.venv-brownie` (eth-brownie 1.22, web3 7.16), run as subprocesses.

Brownie works in a copy of the project, so its build/ and deployments/ stay out of the working tree, with
HOME in a temporary folder: its ~/.brownie and ~/.solcx (holding daisee's solc-js adapter) are the tests' own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daisee.chain.compiler import SOLC_VERSION, install_adapter
from daisee.chain.nodes import LocalNode

BROWNIE_VENV = ".venv-brownie"
COMMAND_TIMEOUT = 240


@dataclass(frozen=True)
class Venv:
    """Commands of the brownie virtual environment, run with `env` in `cwd`."""

    bin: Path
    env: dict[str, str]

    def run(self, command: str, *args: str, cwd: Path) -> str:
        """Run `command` from the venv's bin/; fail the test with its output unless it exits with 0."""
        done = subprocess.run(
            [str(self.bin / command), *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{command} {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout


@pytest.fixture(scope="session")
def venv(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """The brownie venv with a private HOME (its ~/.solcx holds the solc-js adapter) and DAISEE_HOME."""
    bin_dir = project_root / BROWNIE_VENV / "bin"
    if not (bin_dir / "brownie").is_file():
        pytest.skip(f"no {BROWNIE_VENV} in {project_root}: run `make brownie` to create it")
    home = tmp_path_factory.mktemp("brownie-home")
    solcx_dir = home / ".solcx"
    install_adapter(project_root, solcx_dir / f"solc-v{SOLC_VERSION}")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DAISEE_", "VIRTUAL_ENV"))}
    env |= {"HOME": str(home), "SOLCX_BINARY_PATH": str(solcx_dir), "DAISEE_HOME": str(home / ".daisee")}
    return Venv(bin_dir, env)


@pytest.fixture(scope="session")
def brownie_project(project_root: Path, venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled brownie project: a copy of contracts/, scripts/ and brownie-config.yaml."""
    folder = tmp_path_factory.mktemp("brownie-project")
    for tree in ("contracts", "scripts"):
        shutil.copytree(project_root / tree, folder / tree, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(project_root / "brownie-config.yaml", folder)
    (folder / ".env").touch()
    (folder / "node_modules").symlink_to(project_root / "node_modules")
    venv.run("brownie", "compile", cwd=folder)
    return folder


@pytest.fixture(params=["anvil", "ganache"])
def dev_node(request: pytest.FixtureRequest, project_root: Path) -> Iterator[LocalNode]:
    """A fresh node per test: the scripts move its clock."""
    with LocalNode(request.param, project_root=project_root) as node:
        yield node
