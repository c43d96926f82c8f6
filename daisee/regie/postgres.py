"""A throwaway PostgreSQL cluster on loopback, for the régie's tests and benchmark: initdb in a fresh
folder, a server on 127.0.0.1 and a free port, removed when the block ends.

PostgreSQL refuses to run as root; as root the cluster runs as the system's `postgres` user (Debian's
package creates it). Durability is off (fsync, full-page writes, synchronous commit): nothing in a
throwaway cluster outlives it. A régie in service uses a cluster its operator runs, by URL.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from daisee.chain.nodes import free_port
from daisee.errors import DaiseeError
from daisee.loopback import LOOPBACK

SEARCHED = [Path("/usr/lib/postgresql")]  # Debian: /usr/lib/postgresql/<major>/bin
USER = "regie"
_INSTALL_HINT = "install PostgreSQL (Debian: apt-get install postgresql) or put its initdb on PATH"


@dataclass(frozen=True)
class LocalPostgres:
    """A running throwaway cluster: `url` for SQLAlchemy (psycopg 3)."""

    port: int
    folder: Path

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://{USER}@{LOOPBACK}:{self.port}/{name}"

    def new_database(self) -> str:
        """The URL of a database created empty for the caller."""
        name = f"regie_{secrets.token_hex(6)}"
        with psycopg.connect(f"host={LOOPBACK} port={self.port} user={USER} dbname=postgres", autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")  # a name of hex digits: nothing to quote
        return self.database_url(name)


def find_bin() -> Path:
    """The folder of the newest PostgreSQL's initdb and pg_ctl (DaiseeError if there is none)."""
    on_path = shutil.which("initdb")
    if on_path is not None and shutil.which("pg_ctl") is not None:
        return Path(on_path).resolve().parent
    versions = sorted(
        (folder for root in SEARCHED if root.is_dir() for folder in root.iterdir() if (folder / "bin/initdb").exists()),
        key=lambda folder: int(folder.name) if folder.name.isdigit() else 0,
    )
    if not versions:
        raise DaiseeError(f"PostgreSQL not found: {_INSTALL_HINT}")
    return versions[-1] / "bin"


@contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    """A fresh cluster for the block; DaiseeError, with initdb's or the server's last words, if it fails."""
    binaries = find_bin()
    folder = Path(tempfile.mkdtemp(prefix="daisee-pg-"))  # in the system's temp folder: the user must reach it
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    options = f"-c listen_addresses={LOOPBACK} -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
    options += " -c synchronous_commit=off"
    pg_ctl = [*prefix, str(binaries / "pg_ctl"), "-D", str(data)]
    try:
        _run([*prefix, str(binaries / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8"], "initdb")
        _run([*pg_ctl, "-l", str(folder / "log"), "-w", "-o", options, "start"], "starting PostgreSQL", folder / "log")
        try:
            yield LocalPostgres(port, folder)
        finally:
            subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C.UTF-8"})
    if done.returncode != 0:
        said = (log.read_text(errors="replace") if log is not None and log.exists() else "") or done.stderr
        last = said.strip().splitlines()[-1] if said.strip() else f"exit code {done.returncode}"
        raise DaiseeError(f"{what} failed: {last}: {_INSTALL_HINT}")
