"""`daisee compile`: build the contracts into the artifacts shipped with the package, for every EVM level."""

from __future__ import annotations

import os

import click

from daisee.chain.artifacts import stale_artifacts, write_artifacts
from daisee.chain.compiler import EVM_VERSIONS, compile_all, find_compiler, find_project_root
from daisee.cli.output import console
from daisee.errors import DaiseeError


@click.command("compile")
@click.option("--check", is_flag=True, help="Do not write; fail if the shipped artifacts differ from the sources.")
def compile_command(check: bool) -> None:
    """Compile contracts/ into daisee/artifacts/<evm>/ of the source tree, once per EVM level.

    The pinned solc is used: a native one if installed, else solc-js from node_modules.
    """
    root = find_project_root()
    compiler = find_compiler(root)
    levels = ", ".join(EVM_VERSIONS)
    console.print(f"solc {compiler.version} ({compiler.kind}), evm {levels}: compiling {root / 'contracts'}")
    artifacts = compile_all(root, compiler)
    folder = root / "daisee" / "artifacts"
    if check:
        stale = stale_artifacts(artifacts, folder)
        if stale:
            raise DaiseeError(
                f"shipped artifacts are stale for {', '.join(stale)}: run `daisee compile` and commit them"
            )
        names = sorted({name for contracts in artifacts.values() for name in contracts})
        console.print(f"artifacts up to date at evm {levels}: {', '.join(names)}")
        return
    for path in write_artifacts(artifacts, folder):
        console.print(f"wrote {os.path.relpath(path)}")
