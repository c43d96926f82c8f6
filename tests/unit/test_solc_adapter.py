"""The solc-js adapter speaks the solc command line well enough for py-solc-x and brownie, and
`find_compiler` prefers a native solc of the pinned version when one is installed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import solcx
from solcx.wrapper import get_solc_version

from daisee.chain import compiler
from daisee.chain.compiler import ADAPTER_MARKER, SOLC_VERSION, find_compiler, install_adapter
from daisee.errors import DaiseeError

ROOT = compiler.find_project_root(Path(__file__).parent)
PINNED = f"{SOLC_VERSION}+commit.7893614a"
OWNED = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
contract Owned is Ownable {
    constructor() Ownable(msg.sender) {}
}
"""


@pytest.fixture(autouse=True)
def solcx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty py-solc-x install folder, so no test reads or writes the real ~/.solcx."""
    folder = tmp_path / "solcx"
    folder.mkdir()
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(folder))
    assert solcx.get_solcx_install_folder() == folder
    return folder


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    return install_adapter(ROOT, tmp_path / "bin" / f"solc-v{SOLC_VERSION}")


def run(executable: Path, *args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(executable), *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def standard_json(sources: dict[str, str], remappings: tuple[str, ...] = ()) -> str:
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {name: {"content": content} for name, content in sources.items()},
            "settings": {
                "remappings": list(remappings),
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
            },
        }
    )


def errors(output: dict[str, Any]) -> list[str]:
    return [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]


def fake_solc(folder: Path, version: str) -> Path:
    """A stand-in for a native solc that only answers --version, like the real one does."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "solc"
    lines = [
        "#!/bin/sh",
        'echo "solc, the solidity compiler commandline interface"',
        f'echo "Version: {version}.Linux.g++"',
    ]
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


# --- the adapter on the command line -------------------------------------------------------------


@pytest.mark.node
def test_version_is_parsed_by_py_solc_x(shim: Path) -> None:
    assert str(get_solc_version(shim, with_commit_hash=True)) == PINNED
    assert run(shim, "--version").stdout.splitlines()[0] == "solc, the solidity compiler commandline interface"


@pytest.mark.node
def test_standard_json_output_has_no_banner_before_the_json(shim: Path) -> None:
    result = run(shim, "--standard-json", stdin=standard_json({"A.sol": "pragma solidity ^0.8.0; contract A {}"}))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{")
    output = json.loads(result.stdout)
    assert errors(output) == []
    assert output["contracts"]["A.sol"]["A"]["evm"]["bytecode"]["object"]


@pytest.mark.node
def test_accepts_and_ignores_allow_paths_as_py_solc_x_passes_them(shim: Path, tmp_path: Path) -> None:
    output = solcx.compile_standard(
        json.loads(standard_json({"A.sol": "pragma solidity ^0.8.0; contract A {}"})),
        solc_binary=shim,
        allow_paths=[tmp_path / "nowhere", tmp_path / "elsewhere"],
    )
    assert output["contracts"]["A.sol"]["A"]["abi"] == []


@pytest.mark.node
def test_resolves_an_openzeppelin_import_through_remappings_from_the_base_path(shim: Path, tmp_path: Path) -> None:
    source = standard_json({"Owned.sol": OWNED}, remappings=compiler.REMAPPINGS)

    # run from an unrelated folder: only --base-path can lead to node_modules
    result = run(shim, "--standard-json", "--base-path", str(ROOT), stdin=source, cwd=tmp_path)

    output = json.loads(result.stdout)
    assert errors(output) == []
    assert "node_modules/@openzeppelin/contracts/access/Ownable.sol" in output["sources"]
    assert output["contracts"]["Owned.sol"]["Owned"]["evm"]["bytecode"]["object"]


@pytest.mark.node
def test_reports_a_missing_import_as_a_json_error(shim: Path, tmp_path: Path) -> None:
    source = standard_json({"A.sol": 'pragma solidity ^0.8.0; import "./Missing.sol"; contract A {}'})

    result = run(shim, "--standard-json", "--base-path", str(tmp_path), stdin=source)

    assert result.returncode == 0, result.stderr
    [message] = errors(json.loads(result.stdout))
    assert "Missing.sol" in message
    assert "not found" in message


@pytest.mark.node
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--bin", "A.sol"], id="legacy-cli"),
        pytest.param(["--standard-json", "--output-dir", "out"], id="next-to-standard-json"),
        pytest.param(["--standard-json", "--base-path"], id="option-without-value"),
        pytest.param([], id="nothing"),
    ],
)
def test_rejects_unsupported_arguments_with_exit_code_2(shim: Path, args: list[str]) -> None:
    result = run(shim, *args)

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("solc adapter: unsupported arguments")
    assert "--standard-json" in line  # says what is supported


# --- install_adapter ---------------------------------------------------------------------------


@pytest.mark.node
def test_install_adapter_writes_an_executable_shim_carrying_the_marker(tmp_path: Path) -> None:
    destination = tmp_path / "bin" / f"solc-v{SOLC_VERSION}"

    shim = install_adapter(ROOT, destination)

    assert shim == destination
    assert os.access(shim, os.X_OK)
    assert shim.read_text().startswith("#!/bin/sh\n")
    assert ADAPTER_MARKER in shim.read_text()
    assert not list(shim.parent.glob("*.tmp"))


def fake_project(root: Path, solcjs_version: str | None) -> Path:
    (root / "contracts").mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"devDependencies": {"solc": SOLC_VERSION}}))
    if solcjs_version is not None:
        package = root / "node_modules" / "solc" / "package.json"
        package.parent.mkdir(parents=True)
        package.write_text(json.dumps({"name": "solc", "version": solcjs_version}))
    return root


def test_install_adapter_rejects_a_project_without_solcjs(tmp_path: Path) -> None:
    project = fake_project(tmp_path / "project", solcjs_version=None)
    destination = tmp_path / "bin" / "solc"

    with pytest.raises(DaiseeError, match="npm ci") as raised:
        install_adapter(project, destination)

    assert "\n" not in str(raised.value)
    assert not destination.exists()


def test_install_adapter_rejects_solcjs_of_another_version(tmp_path: Path) -> None:
    project = fake_project(tmp_path / "project", solcjs_version="0.8.30")
    destination = tmp_path / "bin" / "solc"

    with pytest.raises(DaiseeError, match="npm ci") as raised:
        install_adapter(project, destination)

    message = str(raised.value)
    assert "\n" not in message
    assert "0.8.30" in message
    assert SOLC_VERSION in message
    assert not destination.exists()


# --- find_compiler -----------------------------------------------------------------------------


def test_find_compiler_prefers_a_native_solc_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, solcx_home: Path
) -> None:
    native = fake_solc(tmp_path / "path", PINNED)
    monkeypatch.setenv("PATH", f"{native.parent}{os.pathsep}{os.environ['PATH']}")

    found = find_compiler(ROOT)

    assert found == compiler.Compiler(native, "native", PINNED)
    assert list(solcx_home.iterdir()) == []  # no adapter installed


@pytest.mark.node
def test_find_compiler_skips_a_native_solc_of_another_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, solcx_home: Path
) -> None:
    native = fake_solc(tmp_path / "path", "0.8.19+commit.7dd6d404")
    monkeypatch.setenv("PATH", f"{native.parent}{os.pathsep}{os.environ['PATH']}")

    found = find_compiler(ROOT)

    assert found.kind == "solc-js"
    assert found.path == solcx_home / f"solc-v{SOLC_VERSION}"
    assert found.version == PINNED
    # the shim now in the install folder is not mistaken for a native solc next time
    assert find_compiler(ROOT).kind == "solc-js"
