"""The compiled contracts shipped inside the package, so a gateway needs neither solc nor node."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from daisee.errors import DaiseeError

ARTIFACTS_DIR = Path(str(resources.files("daisee.artifacts")))


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The shipped artifact of contract `name` (ABI, bytecode, compiler settings)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        artifact: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise DaiseeError(f"no compiled artifact for {name}: run `daisee compile` in the daisee source tree") from None
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


def write_artifacts(artifacts: dict[str, dict[str, Any]], folder: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write one JSON file per contract, replacing the old set; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = folder / f"{name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
        tmp.replace(path)
        written.append(path)
    for stale in set(folder.glob("*.json")) - set(written):
        stale.unlink()
    load_artifact.cache_clear()
    return written


def stale_artifacts(artifacts: dict[str, dict[str, Any]], folder: Path = ARTIFACTS_DIR) -> list[str]:
    """Names of contracts whose shipped artifact differs from `artifacts` (or is missing or extra)."""
    shipped = {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}
    names = set(shipped) | set(artifacts)
    return sorted(name for name in names if shipped.get(name) != artifacts.get(name))
