"""What a member's consent lets its grantee see, and nothing else.

The store holds the consent registry's grants and revocations (indexed like every event). A consent is
read by its grantee (one account, any signed-in member of the loop, or anyone) while it is active; what
it serves is the meter's curve over the consent's window — the history before it starts until its
expiry — at the consent's granularity or coarser, in the quantities its data kinds reveal. A bucket that
reaches outside the window is withheld whole (its sum would tell what lies outside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import ColumnElement, Connection, func, or_, select

from daisee.consent.model import (
    GRANULARITIES,
    ZERO_ADDRESS,
    Audience,
    DataKind,
    Grant,
    Purpose,
    Status,
    quantities,
)
from daisee.regie.calendar import Granularity, LoopCalendar
from daisee.regie.curves import Curve, Period, member_curve
from daisee.regie.schema import consents, meters


@dataclass(frozen=True)
class StoredConsent:
    """A consent the registry recorded, as the store has it."""

    consent_id: bytes
    meter_idx: int
    meter_id: bytes
    grantor: str
    grant: Grant
    revoked_at: int | None  # the revocation's block time

    def status(self, now: int) -> Status:
        return self.grant.status(now, revoked=self.revoked_at is not None)

    def readable_by(self, reader: str | None, member: bool) -> bool:
        """Whether `reader` (an account signed in, or None) is this consent's grantee; `member` says whether
        it is a member of the loop."""
        audience = self.grant.audience
        if audience is Audience.EVERYONE:
            return True
        if audience is Audience.MEMBERS:
            return member
        return reader is not None and reader.lower() == self.grant.grantee.lower()

    @property
    def window(self) -> Period:
        """The span of data it covers: its history window before it starts, until its expiry."""
        return Period(_instant(self.grant.data_from), _instant(self.grant.valid_until))

    def as_json(self, now: int, tz: tzinfo = UTC) -> dict[str, Any]:
        """Its fields for pages and the API, its dates in the civil time `tz`."""
        grant = self.grant
        return {
            "consent_id": "0x" + self.consent_id.hex(),
            "meter_id": "0x" + self.meter_id.hex(),
            "grantor": self.grantor,
            "grantee": grant.audience.name.lower() if grant.audience is not Audience.ACCOUNT else grant.grantee,
            "purpose": grant.purpose.slug,
            "kinds": [str(kind.name).lower() for kind in DataKind if kind in grant.kinds],
            "granularity": str(grant.granularity),
            "history_days": grant.history_days,
            "valid_from": _instant(grant.valid_from).astimezone(tz).isoformat(),
            "valid_until": _instant(grant.valid_until).astimezone(tz).isoformat(),
            "status": str(self.status(now)),
        }


def _instant(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def read_consents(db: Connection, *where: ColumnElement[bool]) -> list[StoredConsent]:
    """The stored consents that match `where`, oldest first."""
    rows = db.execute(
        select(consents, meters.c.meter_id)
        .join(meters, meters.c.idx == consents.c.meter_idx)
        .where(*where)
        .order_by(consents.c.block, consents.c.consent_id)
    )
    return [_stored(row) for row in rows]


def consent_by_id(db: Connection, consent_id: bytes) -> StoredConsent | None:
    found = read_consents(db, consents.c.consent_id == consent_id)
    return found[0] if found else None


def granted_by(db: Connection, meter_idxs: Sequence[int]) -> list[StoredConsent]:
    """Every consent given for the meters `meter_idxs` (a member's), whatever its status."""
    return read_consents(db, consents.c.meter_idx.in_(list(meter_idxs)))


def held_by(db: Connection, reader: str | None, member: bool, now: int) -> list[StoredConsent]:
    """The active consents `reader` may use (its own, the members', everyone's), not counting those it
    granted itself."""
    audiences = [Audience.EVERYONE.value] + ([Audience.MEMBERS.value] if member else [])
    grantees: list[ColumnElement[bool]] = [consents.c.audience.in_(audiences)]
    if reader is not None:
        grantees.append(func.lower(consents.c.grantee) == reader.lower())
    found = read_consents(
        db,
        or_(*grantees),
        consents.c.revoked_block.is_(None),
        consents.c.valid_from <= now,
        consents.c.valid_until > now,
    )
    return [c for c in found if reader is None or c.grantor.lower() != reader.lower()]


def live_for(db: Connection, purpose: Purpose, kinds: DataKind, now: int) -> list[StoredConsent]:
    """The active consents for `purpose` that cover every kind of `kinds`, whoever they are granted to."""
    found = read_consents(
        db,
        consents.c.purpose == purpose.value,
        consents.c.revoked_block.is_(None),
        consents.c.valid_from <= now,
        consents.c.valid_until > now,
    )
    return [c for c in found if c.grant.kinds & kinds == kinds]


@dataclass(frozen=True)
class Allowance:
    """What one consent serves for one request: these quantities, at this granularity, inside `window`."""

    quantities: tuple[str, ...]
    granularity: Granularity
    window: Period
    bills: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "quantities": list(self.quantities),
            "granularity": str(self.granularity),
            "from": self.window.start.isoformat(),
            "until": self.window.end.isoformat(),
            "bills": self.bills,
        }


def allowance(consent: StoredConsent, asked: Granularity) -> Allowance:
    """What `consent` serves to a request at granularity `asked`: coarsened to the consent's, if finer."""
    grant = consent.grant
    return Allowance(
        quantities(grant.kinds), asked.at_least(grant.granularity), consent.window, DataKind.BILL in grant.kinds
    )


def shared_curve(
    db: Connection, calendar: LoopCalendar, consent: StoredConsent, period: Period, asked: Granularity
) -> tuple[Curve, Allowance]:
    """The consent's meter's curve over `period` as the consent allows it, and what it allowed; a bucket
    not wholly inside the consent's window is None."""
    allowed = allowance(consent, asked)
    curve = member_curve(db, calendar, [consent.meter_idx], period, allowed.granularity)
    window = allowed.window
    kept = [
        energy if window.start <= bucket.start and bucket.end <= window.end else None
        for bucket, energy in zip(curve.buckets, curve.energy, strict=True)
    ]
    return replace(curve, energy=kept), allowed


def _stored(row: Any) -> StoredConsent:
    meter_id = bytes(row.meter_id)
    return StoredConsent(
        consent_id=bytes(row.consent_id),
        meter_idx=row.meter_idx,
        meter_id=meter_id,
        grantor=row.grantor,
        grant=Grant(
            meter_id=meter_id,
            audience=Audience(row.audience),
            grantee=to_checksum_address(row.grantee) if row.grantee != ZERO_ADDRESS else ZERO_ADDRESS,
            purpose=Purpose(row.purpose),
            kinds=DataKind(row.kinds),
            granularity=GRANULARITIES[row.granularity],
            history_days=row.history_days,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            nonce=int(row.nonce),
        ),
        revoked_at=row.revoked_at,
    )
