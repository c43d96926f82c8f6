"""Compile the loop contracts with a pinned solc, native or solc-js through the bundled adapter.

The toolchain is pinned here, in one place: `SOLC_VERSION`, the EVM levels and the optimizer
settings. The same sources are compiled once per level in `EVM_VERSIONS`, with the same settings but
`evmVersion`. `package.json` (solc-js) and `brownie-config.yaml` must agree; a test checks that they do.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from daisee.errors import DaiseeError

SOLC_VERSION = "0.8.28"
# Ganache 7 stops at shanghai, and OpenZeppelin 5.4 is the last release that compiles without `mcopy`.
EVM_VERSION = "shanghai"
# Every level shipped: shanghai, and london for chains without PUSH0 (geth's Clique, Energy Web's Aura).
EVM_VERSIONS = (EVM_VERSION, "london")
OPTIMIZER_RUNS = 1_000
# The IR pipeline: about 4 % less gas per settled meter, 8 % per reading, and 10 % smaller contracts.
VIA_IR = True
REMAPPINGS = ("@openzeppelin/=node_modules/@openzeppelin/",)

ADAPTER_MARKER = "daisee solc-js adapter"
_VERSION_PATTERN = re.compile(r"Version: (\d+\.\d+\.\d+)\+(commit\.[0-9a-f]+)")


@dataclass(frozen=True)
class Compiler:
    """A solc executable that speaks the solc command line."""

    path: Path
    kind: str  # "native" or "solc-js"
    version: str  # "0.8.28+commit.7893614a", without the platform suffix


def find_project_root(start: Path | None = None) -> Path:
    """The daisee source tree: the nearest folder holding `contracts/` and `package.json`."""
    here = (start or Path.cwd()).resolve()
    package_parent = Path(__file__).resolve().parents[2]
    for folder in (here, *here.parents, package_parent):
        if (folder / "contracts").is_dir() and (folder / "package.json").is_file():
            return folder
    raise DaiseeError(
        f"no daisee source tree at or above {here}: run this from a clone of daisee "
        "(the folder with contracts/ and package.json)"
    )


def _reported_version(executable: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except OSError:
        return None
    match = _VERSION_PATTERN.search(out)
    return f"{match[1]}+{match[2]}" if match else None


def _is_adapter_shim(executable: Path) -> bool:
    try:
        return ADAPTER_MARKER in executable.read_text(errors="ignore")[:512]
    except (OSError, UnicodeDecodeError):
        return False


def _native_candidates() -> list[Path]:
    candidates = [solcx.get_solcx_install_folder() / f"solc-v{SOLC_VERSION}"]
    on_path = shutil.which("solc")
    if on_path:
        candidates.append(Path(on_path))
    return [c for c in candidates if c.is_file() and os.access(c, os.X_OK) and not _is_adapter_shim(c)]


def install_adapter(project_root: Path, destination: Path | None = None) -> Path:
    """Write an executable `solc-v<version>` shim that runs solc-js through the adapter.

    By default it goes into py-solc-x's install folder, where py-solc-x and brownie look for
    compilers, so both compile offline. It refuses to replace a native solc.
    """
    solcjs_package = project_root / "node_modules" / "solc" / "package.json"
    if not solcjs_package.is_file():
        raise DaiseeError(
            f"no Solidity compiler: solc-js is not installed in {project_root}; run `npm ci` there "
            f"(or install a native solc {SOLC_VERSION})"
        )
    installed = json.loads(solcjs_package.read_text())["version"]
    if installed != SOLC_VERSION:
        raise DaiseeError(
            f"solc-js {installed} is installed but daisee pins {SOLC_VERSION}: run `npm ci` in {project_root}"
        )
    node = shutil.which("node")
    if node is None:
        raise DaiseeError("node is not on PATH: install Node.js (18 or newer) to compile with solc-js")
    adapter = resources.files("daisee.chain").joinpath("solc_adapter.js")
    target = destination or solcx.get_solcx_install_folder() / f"solc-v{SOLC_VERSION}"
    if target.exists() and not _is_adapter_shim(target):
        raise DaiseeError(f"{target} is a native solc: daisee uses it as it is, no adapter needed")
    target.parent.mkdir(parents=True, exist_ok=True)
    shim = (
        "#!/bin/sh\n"
        f"# {ADAPTER_MARKER}: solc {SOLC_VERSION} from {project_root}/node_modules\n"
        f"DAISEE_SOLCJS_ROOT={shlex.quote(str(project_root))} exec {shlex.quote(node)} "
        f'{shlex.quote(str(adapter))} "$@"\n'
    )
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(shim)
    tmp.chmod(0o755)
    tmp.replace(target)
    return target


def find_compiler(project_root: Path) -> Compiler:
    """The pinned solc: a native binary if one is installed, otherwise solc-js via the adapter."""
    for candidate in _native_candidates():
        version = _reported_version(candidate)
        if version and version.startswith(SOLC_VERSION + "+"):
            return Compiler(candidate, "native", version)
    shim = install_adapter(project_root)
    version = _reported_version(shim)
    if version is None:
        raise DaiseeError(f"the solc-js adapter at {shim} does not answer --version: run `npm ci` in {project_root}")
    return Compiler(shim, "solc-js", version)


_OUTPUTS = (
    "abi",
    "evm.bytecode.object",
    "evm.bytecode.linkReferences",
    "evm.deployedBytecode.object",
    "devdoc",
    "userdoc",
)


def _codegen_settings(evm_version: str) -> dict[str, Any]:
    """The settings that decide the bytecode, recorded in every artifact."""
    return {"evmVersion": evm_version, "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS}, "viaIR": VIA_IR}


def standard_input(project_root: Path, evm_version: str = EVM_VERSION) -> dict[str, Any]:
    """The solc standard-JSON input for every source under `contracts/`, for the EVM `evm_version`."""
    sources = {
        path.relative_to(project_root).as_posix(): {"content": path.read_text()}
        for path in sorted((project_root / "contracts").rglob("*.sol"))
    }
    if not sources:
        raise DaiseeError(f"no Solidity sources under {project_root / 'contracts'}")
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            **_codegen_settings(evm_version),
            "remappings": list(REMAPPINGS),
            "outputSelection": {source: {"*": list(_OUTPUTS)} for source in sources},
        },
    }


def _first_error(exc: SolcError) -> str:
    """`contracts/X.sol:12:5: ParserError: Expected ';'…` for the first error solc reported."""
    for error in getattr(exc, "error_dict", None) or []:
        if error.get("severity") == "error":
            where = error.get("sourceLocation") or {}
            location = f"{where['file']}:{_line_col(where)}: " if where.get("file") else ""
            return f"{location}{error.get('type', 'Error')}: {error.get('message', '')}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else "unknown error"


def _line_col(where: dict[str, Any]) -> str:
    """Byte offset to line:column, read from the source file (solc reports offsets only)."""
    path = Path(where["file"])
    if not path.is_file():
        return str(where.get("start", "?"))
    head = path.read_bytes()[: int(where.get("start", 0))].decode(errors="replace")
    return f"{head.count(chr(10)) + 1}:{len(head) - head.rfind(chr(10))}"


def compile_all(project_root: Path, compiler: Compiler | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Compile `contracts/` for every level in `EVM_VERSIONS` (in parallel): artifacts by level, then name."""
    compiler = compiler or find_compiler(project_root)
    with ThreadPoolExecutor(len(EVM_VERSIONS)) as pool:
        runs = {level: pool.submit(compile_contracts, project_root, compiler, level) for level in EVM_VERSIONS}
        return {level: run.result() for level, run in runs.items()}


def compile_contracts(
    project_root: Path, compiler: Compiler | None = None, evm_version: str = EVM_VERSION
) -> dict[str, dict[str, Any]]:
    """Compile `contracts/` for `evm_version` and return one artifact per deployable contract, keyed by name."""
    compiler = compiler or find_compiler(project_root)
    try:
        output = solcx.compile_standard(
            standard_input(project_root, evm_version),
            solc_binary=compiler.path,
            base_path=project_root,
            allow_paths=[project_root],
        )
    except SolcError as exc:
        raise DaiseeError(f"solc {compiler.version} failed: {_first_error(exc)} (fix it and compile again)") from exc
    artifacts: dict[str, dict[str, Any]] = {}
    for source, contracts in output["contracts"].items():
        for name, data in contracts.items():
            bytecode = data["evm"]["bytecode"]["object"]
            if not bytecode or not data["abi"]:  # interfaces, abstract contracts and internal libraries
                continue
            artifacts[name] = {
                "contractName": name,
                "sourceName": source,
                "compiler": {
                    "version": compiler.version,
                    **_codegen_settings(evm_version),
                },
                "abi": data["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "linkReferences": data["evm"]["bytecode"].get("linkReferences", {}),
                "devdoc": data["devdoc"],
                "userdoc": data["userdoc"],
            }
    return artifacts
