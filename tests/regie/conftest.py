"""The régie's stores (one PostgreSQL cluster for the session, a fresh database or SQLite file a test) and
a loop played on an anvil of the régie's own (its reorganisation test rewinds it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.demo import DemoRun, run_demo, simulated_households
from daisee.domain import AllocationKey
from daisee.loop import Loop
from daisee.regie.postgres import LocalPostgres, local_postgres
from daisee.regie.service import Regie, RegieSettings
from daisee.regie.store import open_store

STORE_KINDS = ("sqlite", "postgresql")
HOUSEHOLDS, INTERVALS, INTERVAL_SECONDS = 6, 8, 7200  # of the played loop: from midnight to 16:00


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


@pytest.fixture
def store(store_url: str) -> Iterator[Engine]:
    engine = open_store(store_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def regie_node(project_root: Path) -> Iterator[LocalNode]:
    with LocalNode("anvil", project_root=project_root) as anvil:
        yield anvil


@pytest.fixture(scope="session")
def played(regie_node: LocalNode) -> tuple[Loop, DemoRun]:
    """A demo loop of HOUSEHOLDS households over INTERVALS settled intervals, sun at midday."""
    sender = Sender.dev(connect(regie_node.url))
    households = simulated_households(HOUSEHOLDS, 4)
    run = run_demo(sender, households, AllocationKey.PRORATA, INTERVALS, seed=4, interval_seconds=INTERVAL_SECONDS)
    return Loop(sender, run.deployment.address), run


@pytest.fixture(scope="module")
def served(played: tuple[Loop, DemoRun], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Regie]:
    """The played loop's régie on a free loopback port, from a SQLite store of its own."""
    loop, run = played
    store = tmp_path_factory.mktemp("regie") / "regie.sqlite"
    settings = RegieSettings(f"sqlite:///{store}", port=0, poll_seconds=0.2)
    service = Regie(settings, loop, run.deployment.block, run.deployment.consent_registry, loop.sender)
    service.start()
    yield service
    service.stop()
