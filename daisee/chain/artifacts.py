"""The compiled contracts shipped inside the package, so a gateway needs neither solc nor node.

One set per EVM level, in `daisee/artifacts/<level>/<Contract>.json`: the same sources and settings,
only `evmVersion` differs (the ABIs are the same). {daisee.chain.evm} says which set a chain takes.
"""

from __future__ import annotations

import contextlib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from daisee.chain.compiler import EVM_VERSION
from daisee.errors import DaiseeError

ARTIFACTS_DIR = Path(str(resources.files("daisee.artifacts")))
Artifacts = dict[str, dict[str, dict[str, Any]]]  # level -> contract name -> artifact


@cache
def load_artifact(name: str, evm_version: str = EVM_VERSION) -> dict[str, Any]:
    """The shipped artifact of contract `name` for the EVM `evm_version` (ABI, bytecode, compiler settings)."""
    path = ARTIFACTS_DIR / evm_version / f"{name}.json"
    try:
        artifact: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise DaiseeError(
            f"no compiled artifact for {name} at EVM {evm_version}: run `daisee compile` in the daisee source tree"
        ) from None
    return artifact


def linked_bytecode(artifact: dict[str, Any], libraries: dict[str, str]) -> str:
    """`artifact`'s creation bytecode with the addresses of the libraries it links (name -> address)."""
    code = artifact["bytecode"][2:]
    for references in artifact.get("linkReferences", {}).values():
        for name, places in references.items():
            if name not in libraries:
                raise DaiseeError(f"{artifact['contractName']} links library {name}: deploy it first")
            address = libraries[name].lower().removeprefix("0x")
            for place in places:
                start = 2 * place["start"]
                code = code[:start] + address + code[start + 2 * place["length"] :]
    return "0x" + code


def write_artifacts(artifacts: Artifacts, folder: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write one JSON file per level and contract, replacing the old set; returns the files written."""
    written = []
    for level, contracts in sorted(artifacts.items()):
        (folder / level).mkdir(parents=True, exist_ok=True)
        for name, artifact in sorted(contracts.items()):
            path = folder / level / f"{name}.json"
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
            tmp.replace(path)
            written.append(path)
    for stale in set(folder.glob("*/*.json")) - set(written):
        stale.unlink()
        with contextlib.suppress(OSError):  # the folder of a level no longer shipped, once empty
            stale.parent.rmdir()
    load_artifact.cache_clear()
    return written


def stale_artifacts(artifacts: Artifacts, folder: Path = ARTIFACTS_DIR) -> list[str]:
    """`level/Name` of each shipped artifact that differs from `artifacts` (or is missing or extra)."""
    shipped = {f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in folder.glob("*/*.json")}
    expected = {f"{level}/{name}": a for level, contracts in artifacts.items() for name, a in contracts.items()}
    return sorted(key for key in set(shipped) | set(expected) if shipped.get(key) != expected.get(key))
