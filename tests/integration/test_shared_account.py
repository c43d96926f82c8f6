"""Several programs and threads sending from one account never fail each other and land every call
exactly once, on anvil with automine and with one-second blocks."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_utils import keccak

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from tests.integration.shared_account_worker import declare_all

PROCESSES = 2
THREADS = 3
CALLS = 6


@pytest.fixture(params=[None, 1.0], ids=["automine", "block-time-1"])
def node(request: pytest.FixtureRequest, project_root: Path) -> Iterator[LocalNode]:
    with LocalNode("anvil", block_time=request.param, project_root=project_root) as started:
        yield started


def test_every_call_from_one_account_lands_exactly_once(node: LocalNode, project_root: Path) -> None:
    chain = connect(node.url)
    address, _ = Sender.dev(chain, 0).deploy("NaiveReadings")
    command = [sys.executable, "-m", "tests.integration.shared_account_worker", node.url, address]
    others = [
        subprocess.Popen(
            [*command, f"process-{p}", str(THREADS), str(CALLS)], cwd=project_root, stdout=subprocess.PIPE, text=True
        )
        for p in range(PROCESSES)
    ]
    errors = declare_all(node.url, address, "here", THREADS, CALLS)
    outputs = [process.communicate(timeout=300)[0] for process in others]

    assert errors == []
    assert [process.returncode for process in others] == [0] * PROCESSES, outputs
    naive = chain.w3.eth.contract(address=address, abi=load_artifact("NaiveReadings")["abi"])
    landed = Counter(e["args"]["meterId"] for e in naive.events.Declared().get_logs(from_block=0))
    names = ["here"] + [f"process-{p}" for p in range(PROCESSES)]
    expected = {keccak(text=f"{n}/{t}/{i}") for n in names for t in range(THREADS) for i in range(CALLS)}
    assert set(landed) == expected
    assert set(landed.values()) == {1}
