"""Shared fixtures: chains (embedded, anvil, anvil at London, ganache started from node_modules on loopback)
and an isolated home."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daisee.chain.compiler import find_project_root
from daisee.chain.connect import Chain, connect
from daisee.chain.nodes import LocalNode
from tests.mosquitto import Broker, mosquitto

__all__ = ["Broker", "mosquitto"]  # the broker fixture, for every folder of tests

CHAIN_KINDS = ("embedded", "anvil", "anvil-london", "ganache")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keystores and other per-user state go to a fresh folder, never the real ~/.daisee."""
    home = tmp_path_factory.mktemp("daisee-home")
    monkeypatch.setenv("DAISEE_HOME", str(home))
    monkeypatch.delenv("DAISEE_PASSWORD", raising=False)
    monkeypatch.delenv("DAISEE_CHAIN", raising=False)
    return home


DAISEE_THREADS = ("relay-", "regie-", "keeper", "gateway")  # the names daisee gives its threads
LEFT_BEHIND_GRACE = 10.0  # seconds a stopped service's threads may take to end


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    """A test stops every relay, keeper and gateway it starts: none survives into the next test (where,
    on a shared node, it would send from the same accounts)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + LEFT_BEHIND_GRACE
    while left := [t for t in threading.enumerate() if t not in before and t.name.startswith(DAISEE_THREADS)]:
        if time.monotonic() > deadline:
            pytest.fail(f"the test left threads running: {', '.join(sorted(t.name for t in left))}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return find_project_root(Path(__file__).parent)


@pytest.fixture(scope="session")
def anvil_node(project_root: Path) -> Iterator[LocalNode]:
    with LocalNode("anvil", project_root=project_root) as node:
        yield node


@pytest.fixture(scope="session")
def anvil_london_node(project_root: Path) -> Iterator[LocalNode]:
    """Anvil at the London EVM, as a Clique chain runs it (geth 1.13): no PUSH0."""
    with LocalNode("anvil", hardfork="london", project_root=project_root) as node:
        yield node


@pytest.fixture(scope="session")
def ganache_node(project_root: Path) -> Iterator[LocalNode]:
    with LocalNode("ganache", project_root=project_root) as node:
        yield node


@pytest.fixture(params=CHAIN_KINDS)
def any_chain(request: pytest.FixtureRequest) -> Chain:
    """The same test on py-evm (embedded), anvil (latest and London) and ganache; nodes are shared by the session."""
    if request.param == "embedded":
        return connect("embedded")
    node: LocalNode = request.getfixturevalue(f"{request.param.replace('-', '_')}_node")
    return connect(node.url)


@pytest.fixture
def embedded() -> Chain:
    return connect("embedded")
