"""`daisee chain start` as a real process: SIGTERM (systemd, docker, kill) stops its node as Ctrl-C does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from daisee.chain.nodes import free_port, rpc_answers
from daisee.loopback import LOOPBACK


def _kill_if_running(process: subprocess.Popen[str]) -> None:
    """Kill a `daisee chain start` that did not stop, with its node: its session holds both."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((LOOPBACK, port)) != 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_node_and_frees_its_port(project_root: Path, signum: signal.Signals) -> None:
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    command = [str(Path(sys.executable).with_name("daisee")), "chain", "start", "--port", str(port)]
    # started as a script's `daisee chain start &` is, with SIGINT ignored: Ctrl-C (or kill -INT) stops it all the same
    process = subprocess.Popen(
        command,
        cwd=project_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]  # the node answers before it is announced
        assert lines[-1].startswith(f"use it with --chain {url}; Ctrl-C stops it"), lines
        assert rpc_answers(url)

        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        _kill_if_running(process)

    assert process.returncode == 0, stderr
    assert lines[0] == f"anvil listening on {url}, chain id 31337\n"
    assert stdout == "stopped anvil\n"
    assert not rpc_answers(url)
    assert _refused(port)


@pytest.mark.parametrize("kind", ["anvil", "ganache"])
def test_a_node_started_at_london_gets_the_london_bytecode(project_root: Path, tmp_path: Path, kind: str) -> None:
    port = free_port()
    daisee_bin = str(Path(sys.executable).with_name("daisee"))
    command = [daisee_bin, "chain", "start", "--kind", kind, "--port", str(port), "--hardfork", "london"]
    process = subprocess.Popen(
        command, cwd=project_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        assert lines[-1].startswith("use it with --chain"), lines
        deploy = [daisee_bin, "deploy", "--chain", f"http://{LOOPBACK}:{port}", "--json"]
        deployed = subprocess.run(deploy, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        finally:
            _kill_if_running(process)

    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["evm_version"] == "london"
