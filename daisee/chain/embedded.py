"""The embedded chain: py-evm in this process, through eth-tester, with transactions found by their hash
in the chain's index instead of by a scan of every block back from the head.

eth-tester looks a transaction up by walking the chain backwards, so that each receipt costs a pass over
every block since it, and `eth_getLogs` asks one receipt a transaction in its range: reading a day's demo
back took minutes. py-evm's chain database indexes every canonical transaction by hash: this backend asks it.
"""

from __future__ import annotations

from typing import Any

from eth.exceptions import TransactionNotFound as NotInIndex
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.serializers import serialize_transaction, serialize_transaction_receipt
from eth_tester.exceptions import TransactionNotFound
from eth_utils import encode_hex
from web3.providers.eth_tester import EthereumTesterProvider


class _IndexedBackend(PyEVMBackend):
    """eth-tester's py-evm backend, its two lookups by transaction hash answered from the chain's index."""

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._located(transaction_hash)
        return serialize_transaction(block, transaction, index, block.number == self.chain.get_block().number)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._located(transaction_hash)
        pending = block.number == self.chain.get_block().number
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(block, receipts, transaction, index, pending, self.chain.get_vm())

    def _located(self, transaction_hash: bytes) -> tuple[Any, Any, int]:
        pending = self.chain.get_block()
        for index, transaction in enumerate(pending.transactions):
            if transaction.hash == transaction_hash:
                return pending, transaction, index
        try:
            number, index = self.chain.chaindb.get_transaction_index(transaction_hash)
        except NotInIndex:
            raise TransactionNotFound(
                f"No transaction found for transaction hash: {encode_hex(transaction_hash)}"
            ) from None
        block = self.chain.get_canonical_block_by_number(number)
        return block, block.transactions[index], index


def embedded_provider() -> EthereumTesterProvider:
    """A fresh py-evm chain in this process."""
    return EthereumTesterProvider(ethereum_tester=EthereumTester(backend=_IndexedBackend()))
