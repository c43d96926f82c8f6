"""The relay's queue: one SQLite row per (meter, interval), so a restart loses nothing and never sends twice.

A row goes `queued` → `submitted` (in a transaction not yet mined) → `accepted` or `rejected`. Before a
batch is sent its rows are marked `submitted` with the block it was sent after; a relay that stops before
the receipt finds them `submitted` on restart, puts them back in the queue, and the batcher asks the chain
what became of them before sending anything again. Settled rows are pruned after `RETENTION_SECONDS`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from daisee.errors import DaiseeError
from daisee.readings import LoopDomain, SignedReading

SCHEMA_VERSION = 2  # 2: each reading keeps the signer the intake checked it against
RETENTION_SECONDS = 7 * 86_400  # how long the fate of a settled reading can be asked for
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    meter_id BLOB NOT NULL,
    interval INTEGER NOT NULL,
    reading TEXT NOT NULL,
    signer TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    tx TEXT,
    sent_block INTEGER,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (meter_id, interval)
);
CREATE INDEX IF NOT EXISTS readings_by_status ON readings (status, interval, id);
CREATE INDEX IF NOT EXISTS readings_by_update ON readings (updated_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""


class Status(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Entry:
    """A queued reading; `signer`, the address the intake checked its signature against (None if queued by a
    relay before schema 2); `sent_block` is set when an earlier attempt may have reached the chain."""

    id: int
    signed: SignedReading
    signer: str | None
    received_at: float
    sent_block: int | None


@dataclass(frozen=True)
class Fate:
    """What became of a reading: its status, the loop's reject reason, and the transaction that decided it."""

    status: Status
    reason: str | None = None
    tx: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"status": str(self.status), "reason": self.reason, "tx": self.tx}


class DuplicateReadingError(DaiseeError):
    """A reading for a (meter, interval) the queue already holds, and has not rejected."""

    def __init__(self, index: int, status: Status) -> None:
        super().__init__(f"already {status}")
        self.index = index
        self.status = status


class ReadingQueue:
    """The SQLite file of one loop's relay; safe to share between threads."""

    def __init__(self, path: Path, domain: LoopDomain) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a 202 means the reading is on disk
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._check_owner(domain)
            self._db.execute(
                "UPDATE readings SET status = ? WHERE status = ?", (Status.QUEUED, Status.SUBMITTED)
            )  # in flight when the last relay stopped: the batcher asks the chain before sending again
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise DaiseeError(f"{path} is not a relay queue ({exc}): remove it or pass another --queue") from None
        except DaiseeError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """Bring a queue of an earlier schema to SCHEMA_VERSION, its readings kept."""
        with self._transaction() as db:
            found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found == ("1",):
                db.execute("ALTER TABLE readings ADD COLUMN signer TEXT")
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))

    def _check_owner(self, domain: LoopDomain) -> None:
        owner = {"schema": str(SCHEMA_VERSION), "chain_id": str(domain.chain_id), "loop": domain.loop}
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", owner.items())
            found = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if found != owner:
            raise DaiseeError(
                f"{self.path} is the queue of loop {found.get('loop')} on chain {found.get('chain_id')} "
                f"(schema {found.get('schema')}), not of loop {domain.loop} on chain {domain.chain_id}: "
                "pass another --queue"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def adding(self, now: float) -> Iterator[Callable[[Sequence[SignedReading], Sequence[str]], None]]:
        """One transaction, one write to disk, for many posts: `add(readings, signers)` queues all of a post's
        readings or none (raising DuplicateReadingError), each with the signer its signature was checked
        against, and every post it took is on disk once the block ends."""
        with self._transaction() as db:

            def add(readings: Sequence[SignedReading], signers: Sequence[str]) -> None:
                if len(readings) == 1:  # one statement is all or nothing by itself
                    self._insert(db, 0, readings[0], signers[0], now)
                    return
                db.execute("SAVEPOINT post")
                try:
                    for index, (signed, signer) in enumerate(zip(readings, signers, strict=True)):
                        self._insert(db, index, signed, signer, now)
                except BaseException:
                    db.execute("ROLLBACK TO post")
                    raise
                finally:
                    db.execute("RELEASE post")

            yield add

    @staticmethod
    def _insert(db: sqlite3.Connection, index: int, signed: SignedReading, signer: str, now: float) -> None:
        reading = signed.reading
        cursor = db.execute(
            "INSERT INTO readings (meter_id, interval, reading, signer, status, received_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (meter_id, interval) DO UPDATE SET "
            "reading = excluded.reading, signer = excluded.signer, status = excluded.status, reason = NULL, "
            "tx = NULL, sent_block = NULL, received_at = excluded.received_at, updated_at = excluded.updated_at "
            "WHERE status = ?",
            (
                reading.meter_id,
                reading.interval,
                json.dumps(signed.to_json()),
                signer,
                Status.QUEUED,
                now,
                now,
                Status.REJECTED,
            ),
        )
        if cursor.rowcount == 0:
            status = db.execute(
                "SELECT status FROM readings WHERE meter_id = ? AND interval = ?",
                (reading.meter_id, reading.interval),
            ).fetchone()[0]
            raise DuplicateReadingError(index, Status(status))

    def fate(self, meter_id: bytes, interval: int) -> Fate | None:
        with self._lock:
            row = self._db.execute(
                "SELECT status, reason, tx FROM readings WHERE meter_id = ? AND interval = ?", (meter_id, interval)
            ).fetchone()
        return Fate(Status(row[0]), row[1], row[2]) if row else None

    def pending(self) -> tuple[int, float | None]:
        """How many readings wait, and when the oldest of them arrived."""
        with self._lock:
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(received_at) FROM readings WHERE status = ?", (Status.QUEUED,)
            ).fetchone()
        return int(count), oldest

    def backlog(self) -> int:
        """Readings queued or in flight."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM readings WHERE status IN (?, ?)", (Status.QUEUED, Status.SUBMITTED)
            ).fetchone()
        return int(row[0])

    def take(self, limit: int) -> list[Entry]:
        """Up to `limit` queued readings, oldest interval first (a meter's readings must reach the loop in order)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, reading, signer, received_at, sent_block FROM readings WHERE status = ? "
                "ORDER BY interval, id LIMIT ?",
                (Status.QUEUED, limit),
            ).fetchall()
        return [Entry(i, SignedReading.from_json(json.loads(body)), *rest) for i, body, *rest in rows]

    def mark_submitted(self, entries: Sequence[Entry], block: int, now: float) -> None:
        """Record, before sending, that `entries` go in a transaction mined after `block`."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE readings SET status = ?, sent_block = COALESCE(sent_block, ?), updated_at = ? WHERE id = ?",
                [(Status.SUBMITTED, block, now, e.id) for e in entries],
            )

    def requeue(self, entries: Sequence[Entry], now: float) -> None:
        """Put back readings whose transaction failed; they keep their `sent_block`."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE readings SET status = ?, updated_at = ? WHERE id = ?",
                [(Status.QUEUED, now, e.id) for e in entries],
            )

    def settle(self, fates: Sequence[tuple[Entry, Fate]], submitted: int, now: float) -> None:
        """Record each reading's fate, and that `submitted` of them went through a mined transaction."""
        counts: dict[str, int] = {"submitted": submitted}
        for _, fate in fates:
            name = f"rejected:{fate.reason}" if fate.status is Status.REJECTED else str(fate.status)
            counts[name] = counts.get(name, 0) + 1
        with self._transaction() as db:
            db.executemany(
                "UPDATE readings SET status = ?, reason = ?, tx = ?, updated_at = ? WHERE id = ?",
                [(fate.status, fate.reason, fate.tx, now, entry.id) for entry, fate in fates],
            )
            db.executemany(
                "INSERT INTO counters (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = n + excluded.n",
                counts.items(),
            )

    def prune(self, now: float) -> int:
        """Forget accepted and rejected readings settled more than RETENTION_SECONDS ago; returns how many."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM readings WHERE status IN (?, ?) AND updated_at < ?",
                (Status.ACCEPTED, Status.REJECTED, now - RETENTION_SECONDS),
            )
        return cursor.rowcount

    def counts(self) -> dict[str, object]:
        """Queue depth, readings in flight, and the running totals (they survive restarts and pruning)."""
        with self._lock:
            by_status = dict(
                self._db.execute(
                    "SELECT status, COUNT(*) FROM readings WHERE status IN (?, ?) GROUP BY status",
                    (Status.QUEUED, Status.SUBMITTED),
                ).fetchall()
            )
            totals = dict(self._db.execute("SELECT name, n FROM counters").fetchall())
        return {
            "queue_depth": by_status.get(Status.QUEUED, 0),
            "in_flight": by_status.get(Status.SUBMITTED, 0),
            "submitted": totals.get("submitted", 0),
            "accepted": totals.get(Status.ACCEPTED, 0),
            "rejected": {
                name.removeprefix("rejected:"): n for name, n in sorted(totals.items()) if name.startswith("rejected:")
            },
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
