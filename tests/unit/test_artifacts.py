"""Shipped artifacts: up to date with contracts/ at every EVM level, written and compared correctly, loaded
by name and level."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daisee.chain import artifacts
from daisee.chain.artifacts import linked_bytecode, load_artifact, stale_artifacts, write_artifacts
from daisee.chain.compiler import EVM_VERSIONS, SOLC_VERSION, compile_all, compile_contracts, find_project_root
from daisee.chain.deploy import LOOP_LIBRARIES
from daisee.errors import DaiseeError


def artifact(name: str, bytecode: str = "0x6080") -> dict[str, Any]:
    return {"contractName": name, "abi": [], "bytecode": bytecode, "deployedBytecode": bytecode}


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    load_artifact.cache_clear()
    yield
    load_artifact.cache_clear()


@pytest.mark.node
def test_shipped_artifacts_match_a_fresh_compile_of_the_contracts_at_every_level() -> None:
    compiled = compile_all(find_project_root())

    stale = stale_artifacts(compiled)

    assert sorted(compiled) == sorted(EVM_VERSIONS)
    assert all(compiled.values()), "contracts/ compiled to no deployable contract"
    assert stale == [], f"shipped artifacts differ from contracts/ for {stale}: run `daisee compile`"


def test_write_artifacts_writes_one_json_file_per_level_and_contract(tmp_path: Path) -> None:
    written = write_artifacts(
        {"x": {"B": artifact("B"), "A": artifact("A")}, "w": {"A": artifact("A", "0x5f")}}, tmp_path
    )

    assert written == [tmp_path / "w" / "A.json", tmp_path / "x" / "A.json", tmp_path / "x" / "B.json"]
    assert json.loads((tmp_path / "x" / "A.json").read_text()) == artifact("A")
    assert json.loads((tmp_path / "w" / "A.json").read_text()) == artifact("A", "0x5f")
    assert (
        stale_artifacts({"x": {"A": artifact("A"), "B": artifact("B")}, "w": {"A": artifact("A", "0x5f")}}, tmp_path)
        == []
    )


def test_stale_artifacts_reports_a_changed_bytecode_with_its_level(tmp_path: Path) -> None:
    write_artifacts({"x": {"A": artifact("A"), "B": artifact("B")}, "w": {"A": artifact("A")}}, tmp_path)

    stale = stale_artifacts(
        {"x": {"A": artifact("A"), "B": artifact("B")}, "w": {"A": artifact("A", "0x6081")}}, tmp_path
    )

    assert stale == ["w/A"]


def test_stale_artifacts_reports_a_missing_artifact(tmp_path: Path) -> None:
    write_artifacts({"x": {"A": artifact("A")}}, tmp_path)

    assert stale_artifacts({"x": {"A": artifact("A"), "C": artifact("C")}}, tmp_path) == ["x/C"]


def test_stale_artifacts_reports_a_missing_level(tmp_path: Path) -> None:
    write_artifacts({"x": {"A": artifact("A")}}, tmp_path)

    assert stale_artifacts({"x": {"A": artifact("A")}, "w": {"A": artifact("A")}}, tmp_path) == ["w/A"]


def test_stale_artifacts_reports_an_extra_artifact(tmp_path: Path) -> None:
    write_artifacts({"x": {"A": artifact("A"), "B": artifact("B")}}, tmp_path)

    assert stale_artifacts({"x": {"A": artifact("A")}}, tmp_path) == ["x/B"]


def test_write_artifacts_removes_stale_files_and_levels(tmp_path: Path) -> None:
    write_artifacts({"x": {"A": artifact("A"), "B": artifact("B")}, "w": {"A": artifact("A")}}, tmp_path)

    written = write_artifacts({"x": {"A": artifact("A", bytecode="0x6081")}}, tmp_path)

    assert written == [tmp_path / "x" / "A.json"]
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == ["x", "x/A.json"]
    assert stale_artifacts({"x": {"A": artifact("A", bytecode="0x6081")}}, tmp_path) == []


@pytest.mark.usefixtures("fresh_cache")
def test_write_artifacts_refreshes_what_load_artifact_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "ARTIFACTS_DIR", tmp_path)
    write_artifacts({"x": {"A": artifact("A")}}, tmp_path)
    assert load_artifact("A", "x")["bytecode"] == "0x6080"

    write_artifacts({"x": {"A": artifact("A", bytecode="0x6081")}}, tmp_path)

    assert load_artifact("A", "x")["bytecode"] == "0x6081"


@pytest.mark.parametrize("name", ["EnergyLoop", "MeterAdmin", "Ledger", "Settlement", "EuroToken", "ConsentRegistry"])
def test_every_level_ships_the_same_contract_with_other_bytecode(name: str) -> None:
    shanghai, london = (load_artifact(name, level) for level in ("shanghai", "london"))

    assert london["abi"] == shanghai["abi"]  # so the ABI of either level serves every chain
    assert london["linkReferences"].keys() == shanghai["linkReferences"].keys()
    assert london["bytecode"] != shanghai["bytecode"]


PUSH0 = 0x5F
_LIBRARY_PLACEHOLDER = re.compile(r"__\$[0-9a-f]{34}\$__")


def _opcodes(code: bytes) -> Iterator[int]:
    """The opcodes of runtime `code`, skipping the data of each PUSH1..PUSH32."""
    i = 0
    while i < len(code):
        op = code[i]
        yield op
        i += 1 + (op - PUSH0 if 0x60 <= op <= 0x7F else 0)


def _runtime_without_metadata(artifact: dict[str, Any]) -> bytes:
    code = bytes.fromhex(_LIBRARY_PLACEHOLDER.sub("00" * 20, artifact["deployedBytecode"][2:]))
    return code[: -(int.from_bytes(code[-2:], "big") + 2)]  # solc's CBOR metadata, and its length


@pytest.mark.parametrize("path", sorted((artifacts.ARTIFACTS_DIR / "london").glob("*.json")), ids=lambda p: p.stem)
def test_no_london_artifact_runs_push0_and_every_shanghai_one_does(path: Path) -> None:
    london = _runtime_without_metadata(json.loads(path.read_text()))
    shanghai = _runtime_without_metadata(load_artifact(path.stem, "shanghai"))

    assert PUSH0 not in set(_opcodes(london))
    assert PUSH0 in set(_opcodes(shanghai))  # so the scan sees a PUSH0 where there is one


def test_load_artifact_returns_a_shipped_contract() -> None:
    loop = load_artifact("EnergyLoop")
    bytecode = linked_bytecode(loop, dict.fromkeys(LOOP_LIBRARIES, "0x" + "00" * 20))

    assert loop["contractName"] == "EnergyLoop"
    assert bytes.fromhex(bytecode[2:])[-2:] == bytes.fromhex("0033")  # solc's CBOR metadata length
    assert any(entry["type"] == "constructor" for entry in loop["abi"])


def test_the_loop_links_the_libraries_deploy_loop_deploys_first() -> None:
    loop = load_artifact("EnergyLoop")

    linked = {name: source for source, names in loop["linkReferences"].items() for name in names}

    assert sorted(linked) == sorted(LOOP_LIBRARIES)
    assert linked == {name: f"contracts/libraries/{name}.sol" for name in LOOP_LIBRARIES}
    for name in LOOP_LIBRARIES:
        library = load_artifact(name)
        assert library["linkReferences"] == {}  # deployable as it is
        assert library["sourceName"] == linked[name]


def test_linked_bytecode_writes_each_library_address_at_its_references() -> None:
    loop = load_artifact("EnergyLoop")
    addresses = {name: "0x" + f"{i + 1:02x}" * 20 for i, name in enumerate(LOOP_LIBRARIES)}

    linked = linked_bytecode(loop, addresses)
    code = bytes.fromhex(linked[2:])  # hex throughout: no placeholder is left

    assert len(linked) == len(loop["bytecode"])
    for references in loop["linkReferences"].values():
        for name, places in references.items():
            assert places
            for place in places:
                start, length = place["start"], place["length"]
                assert loop["bytecode"][2 + 2 * start :].startswith("__$")  # solc's placeholder
                assert length == 20
                assert code[start : start + length] == bytes.fromhex(addresses[name][2:])


def test_linked_bytecode_refuses_a_missing_library() -> None:
    loop = load_artifact("EnergyLoop")

    with pytest.raises(DaiseeError, match="EnergyLoop links library Settlement: deploy it first"):
        linked_bytecode(loop, {"MeterAdmin": "0x" + "01" * 20, "Ledger": "0x" + "02" * 20})


@pytest.mark.usefixtures("fresh_cache")
@pytest.mark.parametrize(("name", "level"), [("NoSuchContract", "shanghai"), ("EnergyLoop", "paris")])
def test_load_artifact_of_an_unknown_name_or_level_raises_a_daisee_error(name: str, level: str) -> None:
    with pytest.raises(DaiseeError, match="daisee compile") as raised:
        load_artifact(name, level)

    assert f"{name} at EVM {level}" in str(raised.value)
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
