"""Development nodes (Anvil, Ganache) run as child processes on loopback, from the project's node_modules."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from daisee.chain.compiler import find_project_root
from daisee.errors import DaiseeError
from daisee.loopback import LOOPBACK, urlopen

# anvil writes the whole state of each older block to disk (~10 MB apiece once a chain holds thousands of
# meters) and by default keeps thousands of them: a long test session filled the disk. Keep few, in a
# folder of the node's own, removed when it stops.
ANVIL_STATES_ON_DISK = 32
_INSTALL_HINT = {
    "anvil": "run `npm ci` in the daisee folder (it installs @foundry-rs/anvil) or install Foundry's anvil on PATH",
    "ganache": "run `npm ci` in the daisee folder (it installs ganache 7)",
}


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_node_binary(kind: str, project_root: Path | None = None) -> Path:
    """The `anvil` or `ganache` executable: the daisee tree's node_modules, then PATH.

    The tree is `project_root`, or found from the working directory (see {find_project_root}).
    """
    if kind not in _INSTALL_HINT:
        raise DaiseeError(f"unknown node kind {kind!r}: use anvil or ganache")
    try:
        root = project_root or find_project_root()
    except DaiseeError:
        root = None
    if root and (root / "node_modules" / ".bin" / kind).is_file():
        return root / "node_modules" / ".bin" / kind
    on_path = shutil.which(kind)
    if on_path:
        return Path(on_path)
    raise DaiseeError(f"{kind} not found: {_INSTALL_HINT[kind]}")


def rpc_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a JSON-RPC node answers `eth_chainId` at `url`."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urlopen(request, timeout) as response:
            return "result" in json.load(response)
    except (OSError, ValueError, urllib.error.URLError):
        return False


@dataclass
class LocalNode:
    """An Anvil or Ganache node on loopback, started and stopped by this process.

    Use it as a context manager; `url` is valid inside the block.
    """

    kind: str = "anvil"
    port: int | None = None
    host: str = LOOPBACK
    block_time: float | None = None
    chain_id: int | None = None
    state_file: Path | None = None  # anvil: load the chain from it at start, save it there at stop
    hardfork: str | None = None  # the EVM it runs (e.g. `london`, as a Clique chain), else its latest
    project_root: Path | None = None
    startup_timeout: float = 60.0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _states: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts this node."""
        binary = str(find_node_binary(self.kind, self.project_root))
        if self.kind == "anvil":
            cmd = [binary, "--host", self.host, "--port", str(self.port), "--silent"]
            if self._states is not None:
                cmd += ["--cache-path", self._states.name, "--max-persisted-states", str(ANVIL_STATES_ON_DISK)]
            if self.block_time:
                cmd += ["--block-time", str(self.block_time)]
            if self.chain_id is not None:
                cmd += ["--chain-id", str(self.chain_id)]
            if self.state_file is not None:
                cmd += ["--state", str(self.state_file)]
            if self.hardfork is not None:
                cmd += ["--hardfork", self.hardfork]
            return cmd
        cmd = [binary, "--server.host", self.host, "--server.port", str(self.port)]
        cmd += ["--wallet.deterministic", "--logging.quiet"]
        if self.block_time:
            cmd += ["--miner.blockTime", str(self.block_time)]
        if self.chain_id is not None:
            cmd += ["--chain.chainId", str(self.chain_id)]
        if self.hardfork is not None:
            cmd += ["--chain.hardfork", self.hardfork]
        return cmd

    def start(self) -> str:
        """Start the node and wait until it answers; returns its URL."""
        if self.port is None:
            self.port = free_port(self.host)
        if rpc_answers(self.url):
            raise DaiseeError(f"a node already answers at {self.url}: stop it or pick another --port")
        if self.kind == "anvil":
            self._states = tempfile.TemporaryDirectory(prefix="daisee-anvil-states-")
        self._process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            return self._await_answer()
        except BaseException:  # a failed start, or Ctrl-C / SIGTERM meanwhile: never leave the node behind
            self.stop()
            raise

    def _await_answer(self) -> str:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace").strip() if self._process.stderr else ""
                last = err.splitlines()[-1] if err else f"exit code {self._process.returncode}"
                raise DaiseeError(f"{self.kind} stopped at start-up ({last}): is port {self.port} free?")
            if rpc_answers(self.url, timeout=0.5):
                return self.url
            time.sleep(0.1)
        raise DaiseeError(f"{self.kind} did not answer at {self.url} within {self.startup_timeout:.0f} s")

    @property
    def states_folder(self) -> Path | None:
        """Where a running anvil keeps the states of older blocks (ANVIL_STATES_ON_DISK at most)."""
        return Path(self._states.name) if self._states is not None else None

    def wait(self) -> int:
        """Block until the node exits; returns its exit code."""
        assert self._process is not None, "node not started"
        return self._process.wait()

    def stop(self) -> None:
        """Stop the node (terminate, then kill after 10 s)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        if self._states is not None:
            self._states.cleanup()
            self._states = None

    def __enter__(self) -> LocalNode:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
