"""Finding and starting development nodes, and connecting to chains with errors a user can act on."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from daisee.chain.connect import Chain, _uses_poa_extra_data, connect, redact
from daisee.chain.nodes import ANVIL_STATES_ON_DISK, LocalNode, find_node_binary, free_port, rpc_answers
from daisee.errors import DaiseeError

ANVIL_CHAIN_ID = 31337


def executable(path: Path, script: str) -> Path:
    """An executable shell script at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_binary(root: Path, kind: str, script: str) -> Path:
    """An executable `root/node_modules/.bin/<kind>` shell script."""
    return executable(root / "node_modules" / ".bin" / kind, script)


class CannedBlockProvider(BaseProvider):
    """Answers `eth_getBlockByNumber` with a canned block; nothing else is expected."""

    def __init__(self, block: dict[str, Any] | None) -> None:
        super().__init__()
        self.block = block
        self.calls: list[tuple[str, Any]] = []

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.calls.append((method, params))
        if method != "eth_getBlockByNumber":
            raise AssertionError(f"unexpected call {method}")
        return {"jsonrpc": "2.0", "id": 1, "result": self.block}

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


def release(node: LocalNode) -> None:
    """Stop `node` and close its stderr pipe, which LocalNode leaves open after a failed start."""
    node.stop()
    if node._process is not None and node._process.stderr is not None:
        node._process.stderr.close()


def block_with_extra_data(n_bytes: int) -> dict[str, Any]:
    return {"number": "0x10", "hash": "0x" + "12" * 32, "extraData": "0x" + "ab" * n_bytes}


# --- find_node_binary ----------------------------------------------------------------------------


def test_find_node_binary_without_node_modules_or_path_says_to_run_npm_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))

    with pytest.raises(DaiseeError) as excinfo:
        find_node_binary("anvil", project_root=tmp_path)

    message = str(excinfo.value)
    assert message.startswith("anvil not found")
    assert "`npm ci`" in message


def test_find_node_binary_prefers_the_project_node_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    executable(tmp_path / "bin" / "ganache", "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    project = tmp_path / "project"
    local = fake_binary(project, "ganache", "exit 0\n")

    assert find_node_binary("ganache", project_root=project) == local


def test_find_node_binary_falls_back_to_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = executable(tmp_path / "bin" / "anvil", "exit 0\n")
    monkeypatch.setenv("PATH", str(on_path.parent))
    project = tmp_path / "project"
    project.mkdir()

    assert find_node_binary("anvil", project_root=project) == on_path


@pytest.mark.parametrize("kind", ["geth", "hardhat", ""])
def test_find_node_binary_rejects_an_unknown_kind(kind: str) -> None:
    with pytest.raises(DaiseeError, match=f"unknown node kind {kind!r}: use anvil or ganache"):
        find_node_binary(kind)


# --- LocalNode -----------------------------------------------------------------------------------


def test_local_node_commands_carry_host_port_block_time_and_chain_id(tmp_path: Path) -> None:
    anvil_bin = fake_binary(tmp_path, "anvil", "exit 0\n")
    ganache_bin = fake_binary(tmp_path, "ganache", "exit 0\n")

    anvil = LocalNode("anvil", port=9001, block_time=2, chain_id=42, project_root=tmp_path)
    ganache = LocalNode("ganache", port=9002, block_time=3, chain_id=43, project_root=tmp_path)

    assert anvil.command() == [
        str(anvil_bin),
        *("--host", "127.0.0.1", "--port", "9001", "--silent", "--block-time", "2", "--chain-id", "42"),
    ]
    assert ganache.command() == [
        str(ganache_bin),
        *("--server.host", "127.0.0.1", "--server.port", "9002", "--wallet.deterministic", "--logging.quiet"),
        *("--miner.blockTime", "3", "--chain.chainId", "43"),
    ]
    assert anvil.url == "http://127.0.0.1:9001"


def test_local_node_refuses_a_port_where_a_node_already_answers(anvil_node: LocalNode, tmp_path: Path) -> None:
    # the fake binary would fail loudly if start() went as far as launching it
    fake_binary(tmp_path, "anvil", "echo 'should not run' >&2\nexit 9\n")
    second = LocalNode("anvil", port=anvil_node.port, project_root=tmp_path)

    with pytest.raises(DaiseeError) as excinfo:
        second.start()

    message = str(excinfo.value)
    assert f"a node already answers at {anvil_node.url}" in message
    assert "--port" in message
    assert second._process is None
    assert rpc_answers(anvil_node.url)  # the running node is untouched


def test_local_node_whose_binary_exits_at_once_gives_a_one_line_error(tmp_path: Path) -> None:
    fake_binary(tmp_path, "anvil", "echo 'starting...' >&2\necho 'error: address already in use' >&2\nexit 1\n")
    node = LocalNode("anvil", project_root=tmp_path, startup_timeout=20)

    with pytest.raises(DaiseeError) as excinfo:
        node.start()
    release(node)

    message = str(excinfo.value)
    assert "\n" not in message
    assert message == f"anvil stopped at start-up (error: address already in use): is port {node.port} free?"


def test_local_node_whose_binary_exits_silently_reports_the_exit_code(tmp_path: Path) -> None:
    fake_binary(tmp_path, "ganache", "exit 3\n")
    node = LocalNode("ganache", project_root=tmp_path, startup_timeout=20)

    with pytest.raises(DaiseeError, match=r"^ganache stopped at start-up \(exit code 3\)"):
        node.start()
    release(node)


def test_local_node_closes_the_stderr_pipe_after_a_failed_start(tmp_path: Path) -> None:
    fake_binary(tmp_path, "anvil", "echo 'error: boom' >&2\nexit 1\n")
    node = LocalNode("anvil", project_root=tmp_path, startup_timeout=20)

    with pytest.raises(DaiseeError, match="boom"):
        node.start()
    node.stop()

    assert node._process is not None
    assert node._process.stderr is not None
    stderr_closed = node._process.stderr.closed
    node._process.stderr.close()  # do not leak it from the test itself
    assert stderr_closed


def test_local_anvil_starts_with_a_chain_id_and_connect_adds_no_poa_middleware(project_root: Path) -> None:
    with LocalNode("anvil", chain_id=4242, project_root=project_root) as node:
        chain = connect(node.url)

        assert chain.kind == "anvil"
        assert chain.chain_id == 4242
        assert ExtraDataToPOAMiddleware not in chain.w3.middleware_onion
        assert _uses_poa_extra_data(chain.w3) is False
        assert chain.w3.eth.get_block("latest")["number"] >= 0
        url = node.url

    assert not rpc_answers(url, timeout=0.5)  # stopped on leaving the block


# --- connect -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["mainnet", "ws://127.0.0.1:8545", "127.0.0.1:8545", "Anvil"])
def test_connect_rejects_an_unknown_target_listing_the_choices(target: str) -> None:
    with pytest.raises(DaiseeError) as excinfo:
        connect(target)

    message = str(excinfo.value)
    assert f"unknown chain {target!r}" in message
    for choice in ("embedded", "anvil", "ganache", "http(s)://"):
        assert choice in message


def test_connect_reports_an_unreachable_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(DaiseeError) as excinfo:
        connect(url, timeout=5)

    message = str(excinfo.value)
    assert message.startswith(f"cannot reach the RPC node at {url}")
    assert "check the URL" in message


def test_connect_never_shows_credentials_of_an_unreachable_url() -> None:
    port = free_port()

    with pytest.raises(DaiseeError) as excinfo:
        connect(f"http://alice:s3cret@127.0.0.1:{port}/v3/APIKEY123?token=x", timeout=5)

    message = str(excinfo.value)
    assert f"http://127.0.0.1:{port}" in message
    for secret in ("alice", "s3cret", "APIKEY123", "token"):
        assert secret not in message


def test_connect_to_anvil_by_url(anvil_node: LocalNode) -> None:
    chain = connect(anvil_node.url)

    assert chain.kind == "anvil"
    assert chain.is_dev is True
    assert chain.chain_id == ANVIL_CHAIN_ID
    assert chain.url == anvil_node.url
    assert chain.label == f"anvil (chain id {ANVIL_CHAIN_ID})"
    assert len(chain.dev_accounts()) == 10


def test_connect_accepts_the_expected_chain_id(anvil_node: LocalNode) -> None:
    assert connect(anvil_node.url, expected_chain_id=ANVIL_CHAIN_ID).chain_id == ANVIL_CHAIN_ID


def test_connect_rejects_the_wrong_chain_naming_both_ids(anvil_node: LocalNode) -> None:
    with pytest.raises(DaiseeError) as excinfo:
        connect(anvil_node.url, expected_chain_id=1)

    message = str(excinfo.value)
    assert message.startswith("wrong chain")
    assert f"chain id {ANVIL_CHAIN_ID}" in message
    assert "expected 1" in message
    assert anvil_node.url in message


def test_connect_embedded_rejects_the_wrong_chain_naming_the_kind() -> None:
    with pytest.raises(DaiseeError, match=r"^wrong chain: the node at embedded has chain id \d+, expected 5"):
        connect("embedded", expected_chain_id=5)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:pw@rpc.example.org:8443/v3/SECRETKEY?x=1", "https://rpc.example.org:8443"),
        ("https://mainnet.infura.io/v3/0123456789abcdef", "https://mainnet.infura.io"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://token@localhost/rpc#frag", "http://localhost"),
    ],
)
def test_redact_drops_credentials_path_and_query(url: str, redacted: str) -> None:
    assert redact(url) == redacted


def test_rpc_chain_refuses_dev_accounts_naming_the_account_option() -> None:
    chain = Chain(Web3(), "rpc", 11155111, "https://rpc.example.org")

    assert chain.is_dev is False
    with pytest.raises(DaiseeError) as excinfo:
        chain.dev_accounts()

    message = str(excinfo.value)
    assert "rpc (chain id 11155111) has no development accounts" in message
    assert "--account" in message


# --- PoA extraData detection ---------------------------------------------------------------------


def test_uses_poa_extra_data_detects_a_97_byte_clique_extra_data() -> None:
    provider = CannedBlockProvider(block_with_extra_data(97))

    assert _uses_poa_extra_data(Web3(provider)) is True
    assert provider.calls == [("eth_getBlockByNumber", ["latest", False])]


@pytest.mark.parametrize(("n_bytes", "poa"), [(32, False), (0, False), (33, True)])
def test_uses_poa_extra_data_accepts_up_to_32_bytes_as_plain_ethereum(n_bytes: int, poa: bool) -> None:
    assert _uses_poa_extra_data(Web3(CannedBlockProvider(block_with_extra_data(n_bytes)))) is poa


def test_uses_poa_extra_data_is_false_when_the_node_returns_no_block() -> None:
    assert _uses_poa_extra_data(Web3(CannedBlockProvider(None))) is False


def test_anvil_keeps_few_older_states_on_disk_and_removes_them_when_it_stops() -> None:
    node = LocalNode("anvil")
    with node:
        folder = node.states_folder
        assert folder is not None
        assert folder.is_dir()
        w3 = Web3(Web3.HTTPProvider(node.url))
        for _ in range(3):
            w3.provider.make_request(RPCEndpoint("anvil_mine"), [300])  # past what anvil holds in memory
        assert w3.eth.block_number == 900
        on_disk = [path for path in folder.rglob("*") if path.is_file()]
        assert 0 < len(on_disk) <= ANVIL_STATES_ON_DISK

    assert not folder.exists()
