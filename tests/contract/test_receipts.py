"""daisee reads receipts from the node itself (web3's formatting was most of a relay batch's CPU time): on
every chain, they are what web3 would have returned, field for field and type for type."""

from __future__ import annotations

from hexbytes import HexBytes

from daisee.chain.receipts import fetch_receipt
from daisee.domain import RejectReason
from tests.contract.conftest import SignedLoop


def test_the_receipts_daisee_reads_are_web3_s_to_the_type(signed_loop: SignedLoop) -> None:
    producer, consumer, _ = signed_loop.households
    readings = [signed_loop.sign(consumer, 0, 1_500, 0), signed_loop.sign(producer, 0, 900, 0)]  # import: refused
    result = signed_loop.loop.submit(readings)
    assert [reason for _, _, reason in result.rejected] == [RejectReason.FLOW_NOT_ALLOWED]
    w3 = signed_loop.chain.w3
    hashes = [tx for n in range(1, w3.eth.block_number + 1) for tx in w3.eth.get_block(n)["transactions"]]
    assert len(hashes) > 5  # the deployment, the admissions and the readings: creations and calls with logs
    for tx_hash in hashes:
        ours, web3s = fetch_receipt(w3, tx_hash), w3.eth.get_transaction_receipt(tx_hash)
        assert ours == web3s
        assert ours is not None
        assert {name: type(value) for name, value in ours.items()} == {n: type(v) for n, v in web3s.items()}
        for log, expected in zip(ours["logs"], web3s["logs"], strict=True):
            assert {name: type(value) for name, value in log.items()} == {n: type(v) for n, v in expected.items()}
    assert len(fetch_receipt(w3, hashes[-1])["logs"]) == 2  # type: ignore[index]


def test_a_transaction_the_node_never_saw_has_no_receipt(signed_loop: SignedLoop) -> None:
    assert fetch_receipt(signed_loop.chain.w3, HexBytes(b"\x01" * 32)) is None
