"""Which EVM level a chain runs: named by its profile, else asked of its node once per connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.providers import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from daisee.chain import evm
from daisee.chain.artifacts import load_artifact
from daisee.chain.compiler import EVM_VERSIONS
from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.evm import evm_version, probe_evm_version
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.errors import DaiseeError


@pytest.fixture
def london(anvil_london_node: LocalNode) -> Chain:
    return connect(anvil_london_node.url)


class _NoSimulation(BaseProvider):
    """A node that answers its chain id and refuses every `eth_call` (as some gateways and light nodes do)."""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_chainId":
            return {"jsonrpc": "2.0", "id": 1, "result": "0x5"}
        return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": f"method {method} not available"}}


def test_a_london_chain_refuses_the_shanghai_bytecode_and_runs_the_london_one(london: Chain) -> None:
    with pytest.raises(Web3RPCError, match="NotActivated"):  # PUSH0
        london.w3.eth.call({"data": load_artifact("EuroToken", "shanghai")["bytecode"]})

    runtime = london.w3.eth.call({"data": load_artifact("EuroToken", "london")["bytecode"]})

    assert runtime.to_0x_hex() == load_artifact("EuroToken", "london")["deployedBytecode"]


@pytest.mark.parametrize(("node", "level"), [("anvil_london_node", "london"), ("anvil_node", "shanghai")])
def test_probes_an_unnamed_chain_for_push0(request: pytest.FixtureRequest, node: str, level: str) -> None:
    chain = connect(request.getfixturevalue(node).url)

    assert probe_evm_version(chain) == level
    assert evm_version(chain) == level


def test_the_embedded_and_ganache_chains_run_shanghai(ganache_node: LocalNode) -> None:
    assert evm_version(connect("embedded")) == "shanghai"
    assert evm_version(connect(ganache_node.url)) == "shanghai"


def test_probing_answers_only_levels_that_are_shipped(london: Chain, anvil_node: LocalNode) -> None:
    assert {probe_evm_version(london), probe_evm_version(connect(anvil_node.url))} == set(EVM_VERSIONS)


def test_asks_the_node_once_per_connection(london: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Chain] = []
    monkeypatch.setattr(evm, "probe_evm_version", lambda chain: asked.append(chain) or "london")

    assert [evm_version(london), evm_version(london)] == ["london", "london"]
    assert len(asked) == 1
    evm_version(connect(london.url or ""))  # another connection: the node may have been restarted at another fork
    assert len(asked) == 2


def test_a_profile_names_the_level_without_asking_the_node(
    isolated_home: Path, anvil_node: LocalNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_home / "networks.toml").write_text(
        '[networks.regie]\nchain_id = 31337\nrpc_env = "REGIE_RPC_URL"\nevm_version = "london"\n'
        '[networks.lab]\nchain_id = 31337\nrpc_env = "REGIE_RPC_URL"\n'
    )
    monkeypatch.setenv("REGIE_RPC_URL", anvil_node.url)  # a shanghai node

    assert evm_version(connect("regie")) == "london"  # london bytecode runs on a shanghai chain too
    assert evm_version(connect("lab")) == "shanghai"  # no level named: asked


def test_a_node_that_simulates_nothing_is_named_with_the_fix() -> None:
    chain = Chain(Web3(_NoSimulation()), "rpc", 5, "http://127.0.0.1:1")

    with pytest.raises(
        DaiseeError, match=r'cannot tell which EVM rpc \(chain id 5\) runs.*profile that sets evm_version = "london"'
    ):
        evm_version(chain)


def test_a_loop_deployed_on_a_london_chain_runs_the_london_bytecode_and_records_it(london: Chain) -> None:
    deployment = deploy_loop(Sender.dev(london), LoopParameters(token=None))

    code = london.w3.eth.get_code(deployment.address).to_0x_hex()
    # the London runtime, its immutables (the libraries' addresses) set
    assert len(code) == len(load_artifact("EnergyLoop", "london")["deployedBytecode"])
    assert len(code) != len(load_artifact("EnergyLoop", "shanghai")["deployedBytecode"])
    assert deployment.evm_version == "london"
