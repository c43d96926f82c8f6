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
from daisee.chain.deploy import LOOP_CONTRACT, LOOP_LIBRARIES

ROOT = Path(__file__).resolve().parents[2]


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


def test_brownie_config_compiles_through_the_ir_pipeline_as_the_adapter_does(brownie_config: dict[str, Any]) -> None:
    assert brownie_config["compiler"]["solc"]["viaIR"] is compiler.VIA_IR


def test_brownie_config_remaps_openzeppelin_with_the_compiler_strings(brownie_config: dict[str, Any]) -> None:
    # the same strings, not just the same mapping: remappings enter the metadata hash in the bytecode
    assert tuple(brownie_config["compiler"]["solc"]["remappings"]) == compiler.REMAPPINGS


def test_brownie_config_runs_ganache_at_the_evm_version(brownie_config: dict[str, Any]) -> None:
    # brownie launches ganache with `--hardfork istanbul` unless told otherwise
    assert brownie_config["networks"]["ganache-cli"]["cmd_settings"]["evm_version"] == compiler.EVM_VERSION


def test_brownie_config_networks_hold_only_mappings(brownie_config: dict[str, Any]) -> None:
    # brownie 1.22's compiled config loader crashes on `networks: {default: development}` and the like
    not_mappings = {name: value for name, value in brownie_config["networks"].items() if not isinstance(value, dict)}
    assert not_mappings == {}


def test_artifacts_are_shipped_for_every_pinned_evm_level_and_no_other() -> None:
    shipped = sorted(path.name for path in ARTIFACTS_DIR.iterdir() if path.is_dir() and any(path.glob("*.json")))

    assert shipped == sorted(compiler.EVM_VERSIONS), f"run `daisee compile` to ship {compiler.EVM_VERSIONS}"
    assert compiler.EVM_VERSION in compiler.EVM_VERSIONS  # the level brownie, ganache and the gas snapshot use


@pytest.mark.parametrize("level", compiler.EVM_VERSIONS)
def test_shipped_artifacts_were_compiled_with_the_pinned_settings(level: str) -> None:
    shipped = sorted((ARTIFACTS_DIR / level).glob("*.json"))
    assert shipped, f"no artifacts in {ARTIFACTS_DIR / level}: run `daisee compile`"
    for path in shipped:
        settings = json.loads(path.read_text())["compiler"]
        assert settings["version"].startswith(compiler.SOLC_VERSION + "+commit."), path.name
        assert settings["evmVersion"] == level, path.name
        assert settings["optimizer"] == {"enabled": True, "runs": compiler.OPTIMIZER_RUNS}, path.name
        assert settings["viaIR"] is compiler.VIA_IR, path.name


def test_every_level_ships_the_same_contracts_from_the_same_sources_and_settings_but_the_evm() -> None:
    def shipped(level: str) -> dict[str, dict[str, Any]]:
        return {path.stem: json.loads(path.read_text()) for path in (ARTIFACTS_DIR / level).glob("*.json")}

    def but_evm(settings: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in settings.items() if key != "evmVersion"}

    default = shipped(compiler.EVM_VERSION)
    for level in compiler.EVM_VERSIONS:
        other = shipped(level)
        assert sorted(other) == sorted(default), level
        for name, artifact in other.items():
            assert artifact["sourceName"] == default[name]["sourceName"], (level, name)
            assert but_evm(artifact["compiler"]) == but_evm(default[name]["compiler"]), (level, name)


def test_the_optimizer_runs_stay_at_1000() -> None:
    # the gas snapshot, the README's gas table and the contracts' size margin were measured at 1000 runs
    assert compiler.OPTIMIZER_RUNS == 1000


@pytest.mark.parametrize("level", compiler.EVM_VERSIONS)
def test_the_libraries_the_loop_links_are_shipped_with_the_pinned_settings(level: str) -> None:
    loop = json.loads((ARTIFACTS_DIR / level / f"{LOOP_CONTRACT}.json").read_text())
    linked = sorted(name for names in loop["linkReferences"].values() for name in names)

    assert linked == sorted(LOOP_LIBRARIES)
    for name in linked:
        library = json.loads((ARTIFACTS_DIR / level / f"{name}.json").read_text())
        assert library["compiler"] == loop["compiler"], name  # one solc run, one set of settings
