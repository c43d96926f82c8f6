"""The toolchain is pinned once, in daisee.chain.compiler; package.json, brownie-config.yaml and the
shipped artifacts must agree with those pins."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from daisee.chain import compiler
from daisee.chain.artifacts import ARTIFACTS_DIR

ROOT = Path(__file__).resolve().parents[2]


def _remapping(entry: str) -> tuple[str, str]:
    """`prefix=path` with trailing slashes dropped: `@oz/=lib/@oz/` and `@oz=lib/@oz` remap alike."""
    prefix, _, target = entry.partition("=")
    return prefix.rstrip("/"), target.rstrip("/")


@pytest.fixture(scope="module")
def dev_dependencies() -> dict[str, str]:
    return json.loads((ROOT / "package.json").read_text())["devDependencies"]


@pytest.fixture(scope="module")
def brownie_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "brownie-config.yaml").read_text())


def test_package_json_pins_solcjs_to_the_compiler_version(dev_dependencies: dict[str, str]) -> None:
    assert dev_dependencies["solc"] == compiler.SOLC_VERSION


def test_package_json_pins_an_exact_openzeppelin_5_release(dev_dependencies: dict[str, str]) -> None:
    assert re.fullmatch(r"5\.\d+\.\d+", dev_dependencies["@openzeppelin/contracts"])


def test_brownie_config_pins_the_solc_version(brownie_config: dict[str, Any]) -> None:
    assert brownie_config["compiler"]["solc"]["version"] == compiler.SOLC_VERSION


def test_brownie_config_pins_the_evm_version(brownie_config: dict[str, Any]) -> None:
    assert brownie_config["compiler"]["evm_version"] == compiler.EVM_VERSION


def test_brownie_config_enables_the_optimizer_with_the_pinned_runs(brownie_config: dict[str, Any]) -> None:
    assert brownie_config["compiler"]["solc"]["optimizer"] == {"enabled": True, "runs": compiler.OPTIMIZER_RUNS}


def test_brownie_config_remaps_openzeppelin_like_the_compiler(brownie_config: dict[str, Any]) -> None:
    brownie_remappings = sorted(_remapping(entry) for entry in brownie_config["compiler"]["solc"]["remappings"])
    assert brownie_remappings == sorted(_remapping(entry) for entry in compiler.REMAPPINGS)


def test_brownie_config_runs_ganache_at_the_evm_version(brownie_config: dict[str, Any]) -> None:
    # brownie launches ganache with `--hardfork istanbul` unless told otherwise
    assert brownie_config["networks"]["ganache-cli"]["cmd_settings"]["evm_version"] == compiler.EVM_VERSION


def test_brownie_config_defaults_to_the_local_development_network(brownie_config: dict[str, Any]) -> None:
    assert brownie_config["networks"]["default"] == "development"
    assert brownie_config["networks"]["development"]["cmd_settings"]["port"] == 8545


def test_shipped_artifacts_were_compiled_with_the_pinned_settings() -> None:
    shipped = sorted(ARTIFACTS_DIR.glob("*.json"))
    assert shipped, f"no artifacts in {ARTIFACTS_DIR}: run `daisee compile`"
    for path in shipped:
        settings = json.loads(path.read_text())["compiler"]
        assert settings["version"].startswith(compiler.SOLC_VERSION + "+commit."), path.name
        assert settings["evmVersion"] == compiler.EVM_VERSION, path.name
        assert settings["optimizer"] == {"enabled": True, "runs": compiler.OPTIMIZER_RUNS}, path.name
