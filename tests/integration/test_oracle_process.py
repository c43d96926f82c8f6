"""`daisee oracle run` as a real process: killed with SIGKILL mid-run and restarted, nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from daisee.chain.accounts import import_account
from daisee.chain.nodes import LocalNode
from tests.contract.conftest import INTERVAL
from tests.integration.test_oracle import _accepted_intervals, _keep_settling, _lone_consumer_loop

READINGS = 8
PASSWORD = "gateway password"


def _confirmed(outbox: Path) -> int:
    if not outbox.exists():
        return 0
    with sqlite3.connect(outbox) as db:
        return int(db.execute("SELECT COUNT(*) FROM readings WHERE status = 'confirmed'").fetchone()[0])


def test_oracle_killed_mid_run_and_restarted_sends_everything_exactly_once(
    anvil_node: LocalNode, tmp_path: Path, isolated_home: Path
) -> None:
    loop, consumer = _lone_consumer_loop(anvil_node.url)
    import_account("gateway", consumer.key.key.hex(), PASSWORD)
    loop.pmo.chain.w3.eth.send_transaction({"from": loop.pmo.address, "to": consumer.key.address, "value": 10**18})
    curve = tmp_path / "curve.csv"
    rows = [f"{loop.genesis + k * INTERVAL + 1},{400 * k},0" for k in range(1, READINGS + 1)]
    curve.write_text("timestamp,import_wh,export_wh\n" + "\n".join(rows) + "\n")
    outbox = tmp_path / "outbox.sqlite"
    config = tmp_path / "oracle.toml"
    config.write_text(
        f"""
[loop]
rpc = "{anvil_node.url}"
chain_id = {loop.chain.chain_id}
address = "{loop.loop.address}"

[meter]
id = "0x{consumer.meter_id.hex()}"
signer = "gateway"

[send]
mode = "direct"

[gateway]
kind = "csv"
path = "{curve}"

[outbox]
path = "{outbox}"
"""
    )
    env = {**os.environ, "DAISEE_HOME": str(isolated_home), "DAISEE_PASSWORD": PASSWORD}
    command = [str(Path(sys.executable).with_name("daisee")), "oracle", "run", "--config", str(config)]
    stop = threading.Event()
    _keep_settling(loop.loop, stop)
    try:
        first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while _confirmed(outbox) < 2 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        _, first_log = first.communicate()
        assert 2 <= _confirmed(outbox) < READINGS, first_log

        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    finally:
        stop.set()

    assert second.returncode == 0, second.stderr
    assert "event=confirmed" in second.stderr
    assert _confirmed(outbox) == READINGS
    assert _accepted_intervals(loop.loop, consumer.meter_id) == list(range(READINGS))
    assert loop.counter(consumer) == (READINGS, 400 * READINGS, 0)
