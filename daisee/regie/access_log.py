"""The access log: every access to a member's data by anyone but the member — who, what, on which
consent or basis, when — in rows that are only ever added (the store's triggers refuse to change or
delete one).

Each entry carries the running hash `keccak(previous hash ‖ entry)`, the first over 32 zero bytes, the
entry being its canonical JSON (`Access.canonical`): a member who kept a head can check that nothing
before it was changed, and the head may be anchored on chain (ConsentRegistry.anchorAccessLog).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, text

from daisee.readings import keccak
from daisee.regie.schema import access_log

GENESIS = bytes(32)
ANYONE = "anyone"  # the reader of a page open to everyone
_ADVISORY_LOCK = 0x646169736565  # PostgreSQL: one writer of the log at a time, across processes
_appending = threading.Lock()  # and across the threads of one


@dataclass(frozen=True)
class Access:
    """One access to one meter's data."""

    meter_idx: int
    reader: str  # an account, or ANYONE
    basis: str  # the consent's purpose, or "billing"
    consent_id: bytes | None
    what: str  # curve, bills, comparison, figures, export.csv…
    data_from: int  # the span of data served, unix seconds
    data_until: int
    granularity: str

    def canonical(self, at: int) -> bytes:
        """The bytes its hash covers: its fields and time as sorted, compact JSON."""
        fields = {**asdict(self), "consent_id": self.consent_id.hex() if self.consent_id else None, "at": at}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def record(db: Connection, accesses: Sequence[Access], at: int) -> bytes:
    """Append `accesses` at time `at`, in the caller's transaction; the new head."""
    if db.dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    with _appending:
        head = _head(db)
        rows = []
        for access in accesses:
            head = keccak(head + access.canonical(at))
            rows.append({**asdict(access), "at": at, "hash": head})
        if rows:
            db.execute(access_log.insert(), rows)
    return head


def _head(db: Connection) -> bytes:
    last = db.execute(select(access_log.c.hash).order_by(access_log.c.seq.desc()).limit(1)).scalar()
    return bytes(last) if last is not None else GENESIS


def head(db: Connection) -> tuple[bytes, int]:
    """The log's running hash and how many entries it covers."""
    count = db.execute(select(access_log.c.seq).order_by(access_log.c.seq.desc()).limit(1)).scalar()
    return _head(db), int(count or 0)


def entries(db: Connection, meter_idxs: Sequence[int], limit: int | None = None) -> list[dict[str, Any]]:
    """The accesses to the meters `meter_idxs` (a member's), newest first."""
    query = (
        select(access_log)
        .where(access_log.c.meter_idx.in_(list(meter_idxs)))
        .order_by(access_log.c.seq.desc())
        .limit(limit)
    )
    return [
        {
            "seq": row.seq,
            "at": _iso(row.at),
            "meter_idx": row.meter_idx,
            "reader": row.reader,
            "basis": row.basis,
            "consent_id": "0x" + bytes(row.consent_id).hex() if row.consent_id else None,
            "what": row.what,
            "data_from": _iso(row.data_from),
            "data_until": _iso(row.data_until),
            "granularity": row.granularity,
            "hash": "0x" + bytes(row.hash).hex(),
        }
        for row in db.execute(query)
    ]


def verify(db: Connection) -> bool:
    """Whether every entry's hash follows from the one before it."""
    previous = GENESIS
    for row in db.execute(select(access_log).order_by(access_log.c.seq)):
        access = Access(
            row.meter_idx,
            row.reader,
            row.basis,
            bytes(row.consent_id) if row.consent_id else None,
            row.what,
            row.data_from,
            row.data_until,
            row.granularity,
        )
        previous = keccak(previous + access.canonical(row.at))
        if previous != bytes(row.hash):
            return False
    return True


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
