"""The oracle's durable outbox: every signed reading is written here before it is sent.

One row per (meter, interval): inserting the same reading twice is a no-op, so a restart after
`kill -9` at any point re-sends what was not confirmed and nothing twice. SQLite in WAL mode with full
synchronous commits: a row that `add` returned is on disk.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from daisee.errors import DaiseeError
from daisee.readings import Reading, SignedReading

PENDING, SENT, CONFIRMED, REJECTED = "pending", "sent", "confirmed", "rejected"
# A reading the chain will never take (the meter was not active yet, or it exceeds the meter's limits) is held:
# not sent again, and not in the way of the later ones. The meter's indices are cumulative, so its energy rides
# in the next accepted reading, which then marks it covered.
HELD, COVERED = "held", "covered"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    meter_id BLOB NOT NULL,
    interval INTEGER NOT NULL,
    import_wh INTEGER NOT NULL,
    export_wh INTEGER NOT NULL,
    r BLOB NOT NULL,
    vs BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    PRIMARY KEY (meter_id, interval)
);
CREATE TABLE IF NOT EXISTS alerts (
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxRow:
    """A signed reading and where it stands."""

    signed: SignedReading
    status: str
    reason: str | None
    attempts: int


class Outbox:
    """The SQLite outbox at `path` (created if missing)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DaiseeError(f"the outbox {path} is unusable ({exc}): move it aside and restart the oracle") from None

    def close(self) -> None:
        self._db.close()

    def add(self, signed: SignedReading) -> bool:
        """Store a signed reading before it is sent; False if that meter and interval were already stored."""
        r = signed.reading
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO readings (meter_id, interval, import_wh, export_wh, r, vs, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (r.meter_id, r.interval, r.import_wh, r.export_wh, signed.r, signed.vs, time.time()),
        )
        return cursor.rowcount == 1

    def due(self, now: float, limit: int = 100) -> list[SignedReading]:
        """Unconfirmed readings to send now, in interval order, stopping at the first that must wait.

        A meter's readings reach the chain in order: sending a later interval while an earlier one waits
        would make the chain skip the earlier one, and its interval could then close only by grace.
        """
        rows = self._db.execute(
            "SELECT meter_id, interval, import_wh, export_wh, r, vs, next_attempt FROM readings"
            " WHERE status IN (?, ?) ORDER BY interval LIMIT ?",
            (PENDING, SENT, limit),
        ).fetchall()
        due = []
        for row in rows:
            if row[6] > now:
                break
            due.append(_signed(row[:6]))
        return due

    def mark(self, reading: Reading, status: str, reason: str | None = None) -> None:
        """Record what became of a reading (SENT, CONFIRMED, HELD or REJECTED); a CONFIRMED one covers the
        meter's earlier held readings."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE readings SET status = ?, reason = ? WHERE meter_id = ? AND interval = ?",
                (status, reason, reading.meter_id, reading.interval),
            )
            if status == CONFIRMED:
                self._db.execute(
                    "UPDATE readings SET status = ?, reason = ? WHERE meter_id = ? AND status = ? AND interval < ?",
                    (COVERED, f"carried by interval {reading.interval}", reading.meter_id, HELD, reading.interval),
                )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def retry_later(self, reading: Reading, delay: float, reason: str, *, count_attempt: bool = True) -> None:
        """Try again after `delay` seconds, remembering why; a failed attempt lengthens the next backoff."""
        self._db.execute(
            "UPDATE readings SET attempts = attempts + ?, next_attempt = ?, reason = ?"
            " WHERE meter_id = ? AND interval = ?",
            (int(count_attempt), time.time() + delay, reason, reading.meter_id, reading.interval),
        )

    def attempts(self, reading: Reading) -> int:
        row = self._db.execute(
            "SELECT attempts FROM readings WHERE meter_id = ? AND interval = ?", (reading.meter_id, reading.interval)
        ).fetchone()
        return int(row[0]) if row else 0

    def reason(self, reading: Reading) -> str | None:
        """Why the reading was last retried, rejected or held (None if never)."""
        row = self._db.execute(
            "SELECT reason FROM readings WHERE meter_id = ? AND interval = ?", (reading.meter_id, reading.interval)
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def rows(self) -> list[OutboxRow]:
        """Every stored reading, by interval."""
        found = self._db.execute(
            "SELECT meter_id, interval, import_wh, export_wh, r, vs, status, reason, attempts FROM readings"
            " ORDER BY interval"
        ).fetchall()
        return [OutboxRow(_signed(row[:6]), row[6], row[7], row[8]) for row in found]

    def last_signed(self) -> Reading | None:
        """The most recent reading signed (its indices are the floor for the next one)."""
        row = self._db.execute(
            "SELECT meter_id, interval, import_wh, export_wh FROM readings ORDER BY interval DESC LIMIT 1"
        ).fetchone()
        return Reading(bytes(row[0]), row[1], row[2], row[3]) if row else None

    def backlog(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM readings WHERE status IN (?, ?)", (PENDING, SENT)).fetchone()
        return int(row[0])

    def last_confirmed_interval(self) -> int | None:
        row = self._db.execute("SELECT MAX(interval) FROM readings WHERE status = ?", (CONFIRMED,)).fetchone()
        return None if row[0] is None else int(row[0])

    def alert(self, kind: str, message: str) -> None:
        """Keep an alert for `daisee oracle status` (a counter going backwards, a rejected reading…)."""
        self._db.execute("INSERT INTO alerts (at, kind, message) VALUES (?, ?, ?)", (time.time(), kind, message))

    def alerts(self, limit: int = 20) -> list[tuple[float, str, str]]:
        rows = self._db.execute("SELECT at, kind, message FROM alerts ORDER BY at DESC LIMIT ?", (limit,)).fetchall()
        return [(float(at), str(kind), str(message)) for at, kind, message in rows]


def _signed(row: tuple[bytes, int, int, int, bytes, bytes]) -> SignedReading:
    meter_id, interval, import_wh, export_wh, r, vs = row
    return SignedReading(Reading(bytes(meter_id), interval, import_wh, export_wh), bytes(r), bytes(vs))
