"""The nonces of one account on one node, shared by everything that sends from it.

A nonce is chosen from the node's count of the account's transactions (pending ones included) and
broadcast while a lock is held: a lock file per account and node, which every connection to that node
of this user on this machine takes — the threads and `Sender`s of this process, the relay's keeper and a
CLI command, two oracles — and one lock per connection for its own threads. So two senders never pick
the same nonce, and one can never replace the other's pending transaction with a higher fee. Senders
elsewhere (another machine, the same node under another URL) are not coordinated: `Sender` then notices
the used nonce and takes the next one.

Some nodes do not serve the `pending` block tag. Their count is then the mined one (`latest`), and the
book's own next nonce covers this process's transactions still in the pool; another program's pending
transaction is met as a used nonce, as above."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3.exceptions import Web3RPCError

from daisee.chain.connect import Chain
from daisee.chain.node_errors import rpc_message
from daisee.errors import DaiseeError

# one book per connection (a Web3 object) and account, gone with the connection: a node restarted under
# the same URL starts from its own count; connections to one node meet in the lock file
_books: weakref.WeakKeyDictionary[Any, dict[str, NonceBook]] = weakref.WeakKeyDictionary()
_books_lock = threading.Lock()


@dataclass
class NonceBook:
    """The next nonce this process gave out for one account, and the lock under which nonces are taken."""

    lock_file: Path | None  # None: a node only this process can reach (the embedded chain)
    _next: int | None = field(default=None, init=False)
    _pending_tag: bool = field(default=True, init=False)  # False once the node refused the `pending` tag
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @contextmanager
    def reserved(self) -> Iterator[None]:
        """Hold the account's nonces: choose one and broadcast with it inside this block."""
        with self._lock:
            if self.lock_file is None:
                yield
                return
            with self.lock_file.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def next(self, chain: Chain, address: str) -> int:
        """The nonce to use: the node's count of `address`'s transactions, past every nonce this process gave out."""
        return max(self._counted(chain, address), self._next or 0)

    def taken(self, nonce: int) -> None:
        """`nonce` went out, or the node said another transaction holds it."""
        self._next = max(nonce + 1, self._next or 0)

    def _counted(self, chain: Chain, address: str) -> int:
        w3 = chain.w3
        if self._pending_tag:
            try:
                return int(w3.eth.get_transaction_count(address, "pending"))  # type: ignore[arg-type]
            except Web3RPCError:
                self._pending_tag = False  # `invalid block tag`, `pending block is not available`, …: count mined ones
        try:
            return int(w3.eth.get_transaction_count(address, "latest"))  # type: ignore[arg-type]
        except Web3RPCError as exc:
            raise DaiseeError(
                f"the node of {chain.label} did not tell how many transactions {address} sent ({rpc_message(exc)}): "
                "check the node, then run the same command again"
            ) from None


def nonce_book(chain: Chain, address: str) -> NonceBook:
    """The book of `address` on `chain`'s connection."""
    with _books_lock:
        books = _books.setdefault(chain.w3, {})
        book = books.get(address.lower())
        if book is None:
            # the embedded chain: only this connection reaches it
            lock_file = None if chain.url is None else _lock_file(chain.url, chain.chain_id, address)
            book = books[address.lower()] = NonceBook(lock_file)
        return book


def _lock_file(node: str, chain_id: int, address: str) -> Path:
    folder = Path(tempfile.gettempdir()) / f"daisee-{os.getuid()}" / "nonces"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256(f"{node}|{chain_id}|{address.lower()}".encode()).hexdigest()[:16]
    return folder / f"{chain_id}-{address.lower()}-{digest}.lock"
