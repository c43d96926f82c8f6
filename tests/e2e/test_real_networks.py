"""Deploying and transacting as on a real network: another chain id, blocks every second, confirmations,
EIP-1559 and legacy fees, several transactions in flight, a transaction lost or stuck or replaced, and an
RPC node that goes away in the middle of a deploy. Every chain here is a real anvil on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from web3 import Web3

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import LOOP_LIBRARIES, journal_path, record_path
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Pending, Sender
from daisee.errors import DaiseeError
from tests.e2e.conftest import Daisee
from tests.e2e.mining import manual_node, mine, mining
from tests.rpc_proxy import FlakyProxy

pytestmark = pytest.mark.node

VOLTA = 73799


@pytest.fixture(scope="module")
def volta_like(project_root: Path) -> Iterator[LocalNode]:
    """An anvil posing as Volta: chain id 73799, a block every second (nothing is mined on sending)."""
    with LocalNode("anvil", chain_id=VOLTA, block_time=1, project_root=project_root) as node:
        yield node


@pytest.fixture
def manual_anvil(project_root: Path) -> Iterator[LocalNode]:
    with manual_node(project_root) as node:
        yield node


# ---------------------------------------------------------------- a profile pointing at a node


def use_profile(monkeypatch: pytest.MonkeyPatch, home: Path, name: str, url: str, extra: str = "") -> None:
    (home / "networks.toml").write_text(f'[networks.{name}]\nchain_id = {VOLTA}\nrpc_env = "LAB_RPC_URL"\n{extra}')
    monkeypatch.setenv("LAB_RPC_URL", url)


def test_deploy_through_a_profile_waits_for_its_confirmations(
    daisee: Daisee, volta_like: LocalNode, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOLTA_RPC_URL", volta_like.url)
    out = daisee("deploy", "--chain", "volta", "--token", "none", "--confirmations", "2", "--json")
    assert out.exit_code == 0, out.stderr
    record = json.loads(record_path(VOLTA).read_text())
    assert record["network"] == "volta"
    assert record["chain_id"] == VOLTA
    chain = connect(volta_like.url)
    assert chain.w3.eth.block_number >= record["block"] + 2  # two blocks on top before the command returned
    tx = chain.w3.eth.get_transaction(record["tx_hash"])
    assert tx["type"] == 2  # EIP-1559 where blocks have a base fee
    base_fee = chain.w3.eth.get_block(record["block"])["baseFeePerGas"]
    assert tx["maxFeePerGas"] >= base_fee + tx["maxPriorityFeePerGas"]

    signer = chain.w3.eth.accounts[5]
    meter = daisee("member", "add", "LAB-1", "--signer", signer, "--kind", "consumer", "--chain", "volta", "--json")
    assert meter.exit_code == 0, meter.stderr
    listed = daisee("member", "list", "--chain", "volta", "--json")
    assert [m["kind"] for m in listed.json()["meters"]] == ["consumer"]


def test_a_deposit_waits_for_its_approval_where_blocks_take_time(daisee: Daisee, volta_like: LocalNode) -> None:
    """`daisee ledger deposit` approves, then deposits: sent together, the deposit's estimate would see no allowance."""
    deployed = daisee("deploy", "--chain", volta_like.url, "--json")
    assert deployed.exit_code == 0, deployed.stderr
    chain = connect(volta_like.url)
    member = Sender.dev(chain)
    token = chain.w3.eth.contract(address=deployed.json()["token"], abi=load_artifact("EuroToken")["abi"])
    member.transact(token.functions.mint(member.address, 3_000_000), "minting test euros")

    out = daisee("ledger", "deposit", "3", "--chain", volta_like.url, "--json")

    assert out.exit_code == 0, out.stderr
    assert (out.json()["deposited"], out.json()["balance"]) == (3_000_000, 3_000_000)


def test_legacy_profile_sends_its_fixed_gas_price(
    volta_like: LocalNode, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_profile(monkeypatch, isolated_home, "lab", volta_like.url, 'fees = "legacy"\ngas_price_gwei = 7\n')
    chain = connect("lab")
    assert chain.network == "lab"
    receipt = Sender.dev(chain).deploy("EuroToken")[1]
    tx = chain.w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 0
    assert tx["gasPrice"] == Web3.to_wei(7, "gwei")


def test_chain_id_mismatch_between_profile_and_node(
    daisee: Daisee, volta_like: LocalNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EWC_RPC_URL", volta_like.url)
    out = daisee("deploy", "--chain", "ewc", "--token", "none")
    assert out.exit_code == 1
    assert out.stderr.strip().startswith("error: wrong chain: network 'ewc' is chain id 246")
    assert f"reports {VOLTA}: fix $EWC_RPC_URL or the profile" in " ".join(out.stderr.split())
    assert not record_path(246).exists()


def test_fee_cap_below_the_base_fee_is_refused_before_sending(daisee: Daisee, volta_like: LocalNode) -> None:
    chain = connect(volta_like.url)
    nonce = chain.w3.eth.get_transaction_count(chain.w3.eth.accounts[0])
    out = daisee("deploy", "--chain", volta_like.url, "--max-fee-gwei", "0.000000001")
    assert out.exit_code == 1
    assert "above your cap of 0.000000001 gwei: wait for cheaper blocks or raise max_fee_gwei" in out.stderr
    assert chain.w3.eth.get_transaction_count(chain.w3.eth.accounts[0]) == nonce
    assert not record_path(VOLTA).exists()


def test_underpriced_transaction_is_one_clear_line(
    daisee: Daisee, volta_like: LocalNode, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_profile(monkeypatch, isolated_home, "free", volta_like.url, 'fees = "legacy"\ngas_price_gwei = 0\n')
    out = daisee("deploy", "--chain", "free")
    assert out.exit_code == 1
    assert "deploying EuroToken: the node refused the fee as too low (max fee per gas less than block base fee)" in (
        " ".join(out.stderr.split())
    )
    assert "Traceback" not in out.stderr
    assert not record_path(VOLTA).exists()


def test_several_transactions_in_flight_land_in_one_block(volta_like: LocalNode) -> None:
    chain = connect(volta_like.url)
    sender = Sender.dev(chain, 3)
    first = sender.next_nonce()
    receipts = sender.transact_all([(sender.constructor("EuroToken"), f"token {i}") for i in range(5)])
    nonces = [chain.w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts]
    assert nonces == list(range(first, first + 5))
    assert len({r["blockNumber"] for r in receipts}) <= 2  # sent together, not one per block


# ---------------------------------------------------------------- lost, stuck and replaced transactions


@pytest.fixture
def manual_chain(manual_anvil: LocalNode) -> Chain:
    chain = connect(manual_anvil.url)
    chain.policy = replace(chain.policy, replace_after=0.5, receipt_timeout=30)
    return chain


def test_a_transaction_the_node_lost_is_sent_again(manual_chain: Chain) -> None:
    sender = Sender.dev(manual_chain)
    pending = sender.send(sender.constructor("EuroToken"), "deploying EuroToken")
    manual_chain.w3.provider.make_request("anvil_dropTransaction", [pending.hash])  # type: ignore[arg-type]
    mine(manual_chain)
    assert manual_chain.w3.eth.get_transaction_count(sender.address) == 0  # really lost
    with mining(manual_chain):
        receipt = sender.wait(pending)
    assert receipt["status"] == 1
    assert len(pending.hashes) == 2  # broadcast twice
    assert manual_chain.w3.eth.get_transaction_count(sender.address) == 1


def test_a_transaction_stuck_below_the_base_fee_is_replaced_with_a_higher_fee(manual_chain: Chain) -> None:
    sender = Sender.dev(manual_chain)
    pending = sender.send(sender.constructor("EuroToken"), "deploying EuroToken")
    offered = pending.tx["maxFeePerGas"]
    manual_chain.w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(offered * 4)])  # type: ignore[arg-type]
    mine(manual_chain)  # the base fee is now above what the transaction offers: it stays in the pool
    assert manual_chain.w3.eth.get_transaction_count(sender.address) == 0
    with mining(manual_chain):
        receipt = sender.wait(pending)
    assert len(set(pending.hashes)) == 2
    assert receipt["transactionHash"] == pending.hashes[-1]
    assert pending.tx["maxFeePerGas"] > offered * 2  # bumped to what the chain asks now
    assert manual_chain.w3.eth.get_transaction_count(sender.address) == 1


def replace_by_another_program(chain: Chain, pending: Pending) -> None:
    """Another program sends from the same account with `pending`'s nonce and a higher fee, and it is mined."""
    w3 = chain.w3
    w3.eth.send_transaction(
        {
            "from": pending.tx["from"],
            "to": w3.eth.accounts[1],
            "value": 1,
            "nonce": pending.nonce,
            "maxFeePerGas": pending.tx["maxFeePerGas"] * 2,
            "maxPriorityFeePerGas": pending.tx["maxPriorityFeePerGas"] * 2,
        }
    )
    mine(chain)


def test_a_transaction_replaced_by_another_program_is_reported(manual_chain: Chain) -> None:
    sender = Sender.dev(manual_chain)
    pending = sender.send(sender.constructor("EuroToken"), "deploying EuroToken")
    replace_by_another_program(manual_chain, pending)
    with pytest.raises(DaiseeError, match=rf"was replaced by another transaction of {sender.address} with nonce 0"):
        sender.wait(pending)


def test_a_repeatable_call_replaced_by_another_program_is_sent_again_and_lands_once(manual_chain: Chain) -> None:
    sender = Sender.dev(manual_chain)
    pending = sender.send(sender.constructor("EuroToken"), "deploying EuroToken", repeatable=True)
    replace_by_another_program(manual_chain, pending)
    with mining(manual_chain):
        receipt = sender.wait(pending)
    assert receipt["status"] == 1
    assert pending.nonce == 1  # a fresh nonce, after the other program's
    assert manual_chain.w3.eth.get_transaction_count(sender.address) == 2  # theirs and ours, once
    assert len(manual_chain.w3.eth.get_code(receipt["contractAddress"])) > 0


def test_confirmations_wait_for_blocks_on_top(manual_chain: Chain) -> None:
    manual_chain.policy = replace(manual_chain.policy, confirmations=3)
    sender = Sender.dev(manual_chain)
    with mining(manual_chain):
        receipt = sender.transact(sender.constructor("EuroToken"), "deploying EuroToken")
    assert manual_chain.w3.eth.block_number >= receipt["blockNumber"] + 3


# ---------------------------------------------------------------- the RPC node lost in the middle of a deploy


@pytest.mark.parametrize(
    ("method", "cut_at", "forward"),
    [
        ("eth_sendTransaction", 5, True),  # the loop's creation reached the node, its hash never came back
        ("eth_estimateGas", 5, False),  # the node went away after the test euro and the libraries, before the loop
    ],
    ids=["answer-lost", "node-down"],
)
def test_a_deploy_cut_off_from_its_node_resumes_without_creating_twice(
    daisee: Daisee, anvil_node: LocalNode, method: str, cut_at: int, forward: bool
) -> None:
    proxy = FlakyProxy(anvil_node.url, method, cut_at, forward)
    try:
        chain = connect(anvil_node.url)
        pmo = chain.w3.eth.accounts[0]
        before = chain.w3.eth.get_transaction_count(pmo)
        cut = daisee("deploy", "--chain", proxy.url, "--key", "static")
        assert cut.exit_code == 1
        assert cut.stderr.startswith("error: ")
        assert "run the same command again" in " ".join(cut.stderr.split())
        assert "Traceback" not in cut.stderr
        assert not record_path(chain.chain_id).exists()  # never a half-recorded deployment
        noted = json.loads(journal_path(chain.chain_id).read_text())
        loop_address = noted["creations"].get("EnergyLoop", {}).get("address")

        proxy.heal()
        other = daisee("deploy", "--chain", proxy.url, "--key", "prorata")
        assert other.exit_code == 1
        assert "an unfinished deployment" in other.stderr
        assert "with other parameters" in other.stderr

        resumed = daisee("deploy", "--chain", proxy.url, "--key", "static", "--json")
        assert resumed.exit_code == 0, resumed.stderr
        record = json.loads(record_path(chain.chain_id).read_text())
        assert not journal_path(chain.chain_id).exists()
        # the test euro, the three libraries, the loop and its consent registry, once each
        assert chain.w3.eth.get_transaction_count(pmo) == before + 3 + len(LOOP_LIBRARIES)
        if loop_address:
            assert record["address"] == loop_address
        receipt = chain.w3.eth.get_transaction_receipt(record["tx_hash"])
        assert receipt["contractAddress"] == record["address"]
        assert receipt["blockNumber"] == record["block"]
        loop = chain.w3.eth.contract(address=record["address"], abi=load_artifact("EnergyLoop")["abi"])
        assert loop.functions.settlementToken().call() == record["token"]
        assert len(chain.w3.eth.get_code(record["token"])) > 0
    finally:
        proxy.close()


def test_receipt_timeout_names_the_transaction(manual_chain: Chain) -> None:
    manual_chain.policy = replace(manual_chain.policy, receipt_timeout=1.0, replace_after=5.0)
    sender = Sender.dev(manual_chain)
    with pytest.raises(DaiseeError, match=r"deploying EuroToken: no receipt after 1 s \(transaction 0x") as caught:
        sender.transact(sender.constructor("EuroToken"), "deploying EuroToken")
    assert "check that the chain produces blocks, then run the same command again" in str(caught.value)


def test_a_damaged_deployment_journal_is_named_with_the_fix(daisee: Daisee, anvil_node: LocalNode) -> None:
    chain_id = connect(anvil_node.url).chain_id
    journal = journal_path(chain_id)
    journal.parent.mkdir(parents=True)
    journal.write_text('{"deployer": "0x')
    out = daisee("deploy", "--chain", anvil_node.url)
    assert out.exit_code == 1
    assert out.stderr == f"error: {journal} is not a deployment journal: remove it and deploy again\n"
    assert not record_path(chain_id).exists()
