"""Shipped artifacts: up to date with contracts/, written and compared correctly, loaded by name."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daisee.chain import artifacts
from daisee.chain.artifacts import load_artifact, stale_artifacts, write_artifacts
from daisee.chain.compiler import SOLC_VERSION, compile_contracts, find_project_root
from daisee.errors import DaiseeError


def artifact(name: str, bytecode: str = "0x6080") -> dict[str, Any]:
    return {"contractName": name, "abi": [], "bytecode": bytecode, "deployedBytecode": bytecode}


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    load_artifact.cache_clear()
    yield
    load_artifact.cache_clear()


@pytest.mark.node
def test_shipped_artifacts_match_a_fresh_compile_of_the_contracts() -> None:
    compiled = compile_contracts(find_project_root())

    stale = stale_artifacts(compiled)

    assert compiled, "contracts/ compiled to no deployable contract"
    assert stale == [], f"shipped artifacts differ from contracts/ for {stale}: run `daisee compile`"


def test_write_artifacts_writes_one_json_file_per_contract(tmp_path: Path) -> None:
    written = write_artifacts({"B": artifact("B"), "A": artifact("A")}, tmp_path)

    assert written == [tmp_path / "A.json", tmp_path / "B.json"]
    assert json.loads((tmp_path / "A.json").read_text()) == artifact("A")
    assert stale_artifacts({"A": artifact("A"), "B": artifact("B")}, tmp_path) == []


def test_stale_artifacts_reports_a_changed_bytecode(tmp_path: Path) -> None:
    write_artifacts({"A": artifact("A"), "B": artifact("B")}, tmp_path)

    assert stale_artifacts({"A": artifact("A", bytecode="0x6081"), "B": artifact("B")}, tmp_path) == ["A"]


def test_stale_artifacts_reports_a_missing_artifact(tmp_path: Path) -> None:
    write_artifacts({"A": artifact("A")}, tmp_path)

    assert stale_artifacts({"A": artifact("A"), "C": artifact("C")}, tmp_path) == ["C"]


def test_stale_artifacts_reports_an_extra_artifact(tmp_path: Path) -> None:
    write_artifacts({"A": artifact("A"), "B": artifact("B")}, tmp_path)

    assert stale_artifacts({"A": artifact("A")}, tmp_path) == ["B"]


def test_write_artifacts_removes_stale_files(tmp_path: Path) -> None:
    write_artifacts({"A": artifact("A"), "B": artifact("B")}, tmp_path)

    written = write_artifacts({"A": artifact("A", bytecode="0x6081")}, tmp_path)

    assert written == [tmp_path / "A.json"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["A.json"]
    assert stale_artifacts({"A": artifact("A", bytecode="0x6081")}, tmp_path) == []


@pytest.mark.usefixtures("fresh_cache")
def test_write_artifacts_refreshes_what_load_artifact_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "ARTIFACTS_DIR", tmp_path)
    write_artifacts({"A": artifact("A")}, tmp_path)
    assert load_artifact("A")["bytecode"] == "0x6080"

    write_artifacts({"A": artifact("A", bytecode="0x6081")}, tmp_path)

    assert load_artifact("A")["bytecode"] == "0x6081"


def test_load_artifact_returns_a_shipped_contract() -> None:
    loop = load_artifact("EnergyLoop")

    assert loop["contractName"] == "EnergyLoop"
    assert bytes.fromhex(loop["bytecode"][2:])[-2:] == bytes.fromhex("0033")  # solc's CBOR metadata length
    assert any(entry["type"] == "constructor" for entry in loop["abi"])


@pytest.mark.usefixtures("fresh_cache")
def test_load_artifact_of_an_unknown_name_raises_a_daisee_error() -> None:
    with pytest.raises(DaiseeError, match="daisee compile") as raised:
        load_artifact("NoSuchContract")

    assert "NoSuchContract" in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.node
def test_reports_a_compile_error_in_one_line_naming_the_solc_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path / "solcx"))
    root = find_project_root()
    project = tmp_path / "project"
    shutil.copytree(root / "contracts", project / "contracts")
    shutil.copy(root / "package.json", project / "package.json")
    (project / "node_modules").symlink_to(root / "node_modules")
    with (project / "contracts" / "EnergyLoop.sol").open("a") as source:
        source.write("\ncontract Broken {\n")

    with pytest.raises(DaiseeError) as raised:
        compile_contracts(project)

    message = str(raised.value)
    assert "\n" not in message
    assert f"solc {SOLC_VERSION}+commit." in message
    assert "ParserError" in message
