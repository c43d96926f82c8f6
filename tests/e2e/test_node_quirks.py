"""Nodes that are not anvil: one without the `pending` block tag, receipts without `status` or malformed, each client's
words for a used nonce, and a gas estimate that hides a revert behind the block gas limit. Every node is
a real anvil on loopback behind a proxy that answers as the other client would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account
from hexbytes import HexBytes
from web3.types import Wei

from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.domain import MeterKind
from daisee.errors import DaiseeError
from daisee.loop import Loop
from tests.e2e.conftest import Daisee
from tests.e2e.mining import manual_node, mine, mining
from tests.rpc_proxy import QuirkyNodeProxy, RpcProxy

pytestmark = pytest.mark.node

NO_PENDING = ["invalid block tag pending", "pending block is not available", "unsupported block number"]
NONCE_TOO_LOW = {  # anvil says `nonce too low`
    "geth": "nonce too low",
    "Nethermind": "OldNonce, Current nonce: 3, nonce of rejected tx: 2",
    "Besu": "Nonce too low",
    "OpenEthereum": "Transaction nonce is too low. Try incrementing the nonce.",
    "erigon": "NONCE_TOO_LOW",
}
ALREADY_KNOWN = {  # anvil says `transaction already imported`
    "geth": "already known",
    "old geth": "known transaction: 0x3d4e",
    "Nethermind": "AlreadyKnown",
    "Besu": "Known transaction",
    "OpenEthereum": "Transaction with the same hash was already imported.",
    "erigon": "ALREADY_EXISTS",
}
REPLACEMENT_UNDERPRICED = {  # anvil says `replacement transaction underpriced`
    "geth": "replacement transaction underpriced",
    "Nethermind": "ReplacementNotAllowed",
    "Besu": "Replacement transaction underpriced",
    "OpenEthereum": "Transaction gas price is too low. There is another transaction with same nonce in the queue. "
    "Try increasing the gas price or incrementing the nonce.",
}


@pytest.fixture
def manual_anvil(project_root: Path) -> Iterator[LocalNode]:
    with manual_node(project_root) as node:
        yield node


def _nonce(chain: Chain, tx_hash: HexBytes) -> int:
    return int(chain.w3.eth.get_transaction(tx_hash)["nonce"])


# ---------------------------------------------------------------- no `pending` block tag


@pytest.mark.parametrize("refusal", NO_PENDING)
def test_a_node_without_the_pending_tag_counts_mined_transactions_and_our_own(
    manual_anvil: LocalNode, refusal: str
) -> None:
    with QuirkyNodeProxy(manual_anvil.url, no_pending=refusal) as node:
        chain = connect(node.url)
        sender = Sender.dev(chain, 1)
        with mining(chain):
            receipts = sender.transact_all([(sender.constructor("EuroToken"), f"token {i}") for i in range(3)])
            again = sender.transact(sender.constructor("EuroToken"), "one more")
        assert [_nonce(chain, r["transactionHash"]) for r in [*receipts, again]] == [0, 1, 2, 3]
        assert node.refused == {"eth_getTransactionCount": 1}  # asked for `pending` once, then `latest` only


def test_deploy_through_a_node_without_the_pending_tag(daisee: Daisee, anvil_node: LocalNode) -> None:
    with QuirkyNodeProxy(anvil_node.url, no_pending="invalid block tag pending") as node:
        out = daisee("deploy", "--chain", node.url, "--json")
    assert out.exit_code == 0, out.stderr
    assert len(connect(anvil_node.url).w3.eth.get_code(out.json()["address"])) > 0


# ---------------------------------------------------------------- each client's words for a used nonce


@pytest.mark.parametrize("wording", NONCE_TOO_LOW.values(), ids=NONCE_TOO_LOW.keys())
def test_a_mined_nonce_in_any_clients_words_is_passed_for_the_next(anvil_node: LocalNode, wording: str) -> None:
    """A lagging backend counts one transaction short: the node refuses that nonce as mined."""
    sender = Sender.dev(connect(anvil_node.url), 4)
    sender.transact(sender.constructor("EuroToken"), "a first token")
    expected = sender.next_nonce()
    with QuirkyNodeProxy(anvil_node.url, counts_behind=1, reword={"nonce too low": wording}) as node:
        chain = connect(node.url)
        receipt = Sender.dev(chain, 4).transact(sender.constructor("EuroToken"), "a second token")
        assert node.refused == {"eth_sendTransaction": 1}
    assert _nonce(sender.chain, receipt["transactionHash"]) == expected


@pytest.mark.parametrize("wording", ALREADY_KNOWN.values(), ids=ALREADY_KNOWN.keys())
def test_a_resent_transaction_the_node_already_holds_in_any_clients_words_is_awaited(
    manual_anvil: LocalNode, wording: str
) -> None:
    """A backend that never saw the transaction: daisee sends it again, and the node says it holds it."""
    with QuirkyNodeProxy(manual_anvil.url, reword={"transaction already imported": wording}) as node:
        chain = connect(node.url)
        chain.policy = replace(chain.policy, replace_after=0.2, receipt_timeout=30)
        sender = Sender.dev(chain)
        pending = sender.send(sender.constructor("EuroToken"), "deploying EuroToken")
        node.forgetful = True
        threading.Timer(1.0, mine, [chain]).start()  # after a re-send or more
        receipt = sender.wait(pending)
        assert node.refused["eth_sendTransaction"] >= 1
    assert receipt["transactionHash"] == pending.hashes[0]
    assert pending.hashes == [pending.hashes[0]]  # a refused copy is not taken for sent


@pytest.mark.parametrize("wording", REPLACEMENT_UNDERPRICED.values(), ids=REPLACEMENT_UNDERPRICED.keys())
def test_another_programs_pooled_transaction_in_any_clients_words_is_passed_for_the_next_nonce(
    manual_anvil: LocalNode, wording: str
) -> None:
    """Without the `pending` tag, daisee counts mined transactions only: another program's pooled one with a
    higher fee holds the nonce daisee picks, and the node refuses to replace it."""
    w3 = connect(manual_anvil.url).w3
    pmo, anyone = list(w3.eth.accounts)[:2]
    other = w3.eth.send_transaction(  # with fees far above daisee's
        {"from": pmo, "to": anyone, "value": Wei(1), "maxFeePerGas": Wei(10**12), "maxPriorityFeePerGas": Wei(10**11)}
    )
    reword = {"replacement transaction underpriced": wording}
    with QuirkyNodeProxy(manual_anvil.url, no_pending="invalid block tag pending", reword=reword) as node:
        chain = connect(node.url)
        sender = Sender.dev(chain)
        with mining(chain):
            receipt = sender.transact(sender.constructor("EuroToken"), "deploying EuroToken")
        assert node.refused["eth_sendTransaction"] == 1
        assert (_nonce(chain, other), _nonce(chain, receipt["transactionHash"])) == (0, 1)


# ---------------------------------------------------------------- receipts without `status`


def _loop(url: str) -> Loop:
    """A loop on `url` with one consumer admitted; its PMO is the first development account."""
    pmo = Sender.dev(connect(url))
    loop = Loop(pmo, deploy_loop(pmo, LoopParameters(token=None, notice_seconds=0)).address)
    household = Account.create().address
    loop.add_meter(b"\x01" * 32, household, household, MeterKind.CONSUMER)
    return loop


def test_receipts_without_status_are_judged_by_their_effects(daisee: Daisee, anvil_node: LocalNode) -> None:
    with QuirkyNodeProxy(anvil_node.url, no_status=True) as node:
        deployed = daisee("deploy", "--chain", node.url, "--token", "none", "--json")  # creations: code at the address
        assert deployed.exit_code == 0, deployed.stderr
        signer = Account.create().address
        added = daisee("member", "add", "H-1", "--signer", signer, "--kind", "consumer", "--chain", node.url)
        assert added.exit_code == 0, added.stderr  # a call that logged
        chain = connect(node.url)
        paid = Loop(Sender.dev(chain), deployed.json()["address"]).pay_receivables()  # logged nothing: replayed
        assert paid["logs"] == []
        assert "status" not in chain.w3.eth.get_transaction_receipt(deployed.json()["tx_hash"])


@pytest.mark.parametrize("no_status", [False, True], ids=["status", "no-status"])
def test_a_mined_revert_names_the_contracts_reason_with_or_without_status(
    anvil_node: LocalNode, no_status: bool
) -> None:
    """A node that estimates a failing call anyway: the transaction is mined and reverts."""
    loop = _loop(anvil_node.url)
    with QuirkyNodeProxy(anvil_node.url, no_status=no_status, failed_estimate=300_000) as node:
        again = loop.as_sender(Sender.dev(connect(node.url)))
        with pytest.raises(DaiseeError) as caught:
            again.add_meter(b"\x01" * 32, loop.sender.address, loop.sender.address, MeterKind.CONSUMER)
    assert str(caught.value) == (
        f"adding meter 0x{'01' * 32} rejected by the contract: MeterAlreadyRegistered(meterId=0x{'01' * 32})"
    )


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("gasUsed", "0xzz", "gasUsed is '0xzz'"),
        ("status", [1], "status is [1]"),
        ("blockHash", 7, "blockHash is 7"),
        ("logs", "none", "logs is 'none'"),
        ("logs", [{"topics": "0x01"}], "topics is '0x01'"),
        ("logs", [["not", "an", "object"]], "logs is [['not', 'an', 'object']]"),
        ("transactionHash", "0x" + "g" * 64, "transactionHash is '0xgggggggggggggggggggggggggggggggggg..."),
    ],
    ids=[
        "quantity-not-hex",
        "quantity-a-list",
        "hash-a-number",
        "logs-a-string",
        "topics-a-string",
        "log-a-list",
        "hash-not-hex-cut-short",
    ],
)
def test_a_malformed_receipt_is_one_line_naming_the_field(
    anvil_node: LocalNode, field: str, value: object, named: str
) -> None:
    loop = _loop(anvil_node.url)
    with QuirkyNodeProxy(anvil_node.url, receipt_fields={field: value}) as node:
        again = loop.as_sender(Sender.dev(connect(node.url)))
        with pytest.raises(DaiseeError) as caught:
            again.add_meter(b"\x02" * 32, loop.sender.address, loop.sender.address, MeterKind.CONSUMER)
    message = str(caught.value)
    assert message.startswith(f"adding meter 0x{'02' * 32}: waiting for transaction 0x")
    assert message.endswith(
        f", the RPC node answered a receipt daisee refuses ({named}): check that the URL is a JSON-RPC node"
    )
    assert "\n" not in message


# ---------------------------------------------------------------- a revert behind gas words


@pytest.mark.parametrize(
    "failed_estimate",
    ["gas required exceeds allowance (30000000)", "Transaction gas limit exceeds block gas limit", 30_000_000],
    ids=["geth", "Besu", "OpenEthereum-estimates-a-block"],
)
def test_an_estimate_that_hides_a_revert_behind_the_gas_limit_names_the_revert(
    anvil_node: LocalNode, failed_estimate: str | int
) -> None:
    loop = _loop(anvil_node.url)
    with QuirkyNodeProxy(anvil_node.url, failed_estimate=failed_estimate) as node:
        again = loop.as_sender(Sender.dev(connect(node.url)))
        with pytest.raises(DaiseeError) as caught:
            again.add_meter(b"\x01" * 32, loop.sender.address, loop.sender.address, MeterKind.CONSUMER)
    assert str(caught.value) == (
        f"adding meter 0x{'01' * 32} rejected by the contract: MeterAlreadyRegistered(meterId=0x{'01' * 32})"
    )


def test_a_call_too_big_for_a_block_says_so(manual_anvil: LocalNode) -> None:
    with QuirkyNodeProxy(manual_anvil.url, failed_estimate="gas required exceeds allowance (200000)") as node:
        chain = connect(node.url)
        chain.w3.provider.make_request("anvil_setBlockGasLimit", [hex(200_000)])  # type: ignore[arg-type]
        mine(chain)
        sender = Sender.dev(chain)
        with pytest.raises(DaiseeError) as caught:
            sender.transact(sender.constructor("EuroToken"), "deploying EuroToken")
    assert str(caught.value) == (
        f"deploying EuroToken needs about as much gas as a block of {chain.label} holds (200,000; the node said "
        "'gas required exceeds allowance (200000)'): send less in one transaction (fewer readings or settlement steps)"
    )


# ---------------------------------------------------------------- a hostile node


class _BombingProxy(RpcProxy):
    """Answers `method` with JSON nested 100,000 deep (the answer that overflowed the stack), forwards the rest."""

    def __init__(self, upstream: str, method: str) -> None:
        super().__init__(upstream)
        self.method = method

    def answer(self, body: bytes) -> bytes | None:
        if json.loads(body).get("method") == self.method:
            return b"[" * 100_000 + b"]" * 100_000
        return self.forward(body)


@pytest.mark.parametrize("method", ["eth_chainId", "eth_getTransactionCount"])
def test_a_node_answering_a_depth_bomb_gets_one_line_and_the_process_ends_cleanly(
    anvil_node: LocalNode, tmp_path: Path, method: str
) -> None:
    with _BombingProxy(anvil_node.url, method) as node:
        outcome = subprocess.run(
            [str(Path(sys.executable).with_name("daisee")), "deploy", "--chain", node.url],
            capture_output=True, text=True, cwd=tmp_path, timeout=120, env={**os.environ, "DAISEE_HOME": str(tmp_path)},
        )  # fmt: skip

    assert outcome.returncode == 1, outcome.stderr
    [line] = outcome.stderr.strip().splitlines()
    assert "answered what daisee refuses (nested deeper than 32 levels)" in line
    assert "Traceback" not in outcome.stderr
