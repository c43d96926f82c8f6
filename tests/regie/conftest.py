"""The régie's stores: one PostgreSQL cluster for the session, a fresh database or SQLite file a test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daisee.regie.postgres import LocalPostgres, local_postgres

STORE_KINDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    with local_postgres() as cluster:
        yield cluster


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of each kind, by URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'regie.sqlite'}"
    cluster: LocalPostgres = request.getfixturevalue("postgres")
    return cluster.new_database()
