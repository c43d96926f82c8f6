"""The nonces of one account on one node, shared by everything that sends from it.

A nonce is chosen from the node's count of the account's transactions (pending ones included) and
broadcast while a lock is held: one lock per account and node for every thread and `Sender` of this
process, and a lock file for the other processes of this user on this machine (the relay's keeper and a
CLI command, two oracles). So two senders never pick the same nonce, and one can never replace the
other's pending transaction with a higher fee. Senders elsewhere (another machine, the same node under
another URL) are not coordinated: `Sender` then notices the used nonce and takes the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_books: dict[tuple[str, str], NonceBook] = {}
_books_lock = threading.Lock()


@dataclass
class NonceBook:
    """The next nonce this process gave out for one account, and the lock under which nonces are taken."""

    lock_file: Path | None  # None: a node only this process can reach (the embedded chain)
    _next: int | None = field(default=None, init=False)
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

    def next(self, counted: int) -> int:
        """The nonce to use, given the node's count: past every nonce this process already gave out."""
        return max(counted, self._next or 0)

    def taken(self, nonce: int) -> None:
        """`nonce` went out."""
        self._next = nonce + 1

    def forget(self) -> None:
        """Another sender used the account: trust the node's count again."""
        self._next = None


def nonce_book(node: str, chain_id: int, address: str) -> NonceBook:
    """The book of `address` on `node` (a URL, or a name unique to an in-process chain)."""
    key = (node, address.lower())
    with _books_lock:
        book = _books.get(key)
        if book is None:
            lock_file = None if node.startswith("embedded:") else _lock_file(node, chain_id, address)
            book = _books[key] = NonceBook(lock_file)
        return book


def _lock_file(node: str, chain_id: int, address: str) -> Path:
    folder = Path(tempfile.gettempdir()) / f"daisee-{os.getuid()}" / "nonces"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256(f"{node}|{chain_id}|{address.lower()}".encode()).hexdigest()[:16]
    return folder / f"{chain_id}-{address.lower()}-{digest}.lock"
