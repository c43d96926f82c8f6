"""The régie's enforcement of consents, as properties on SQLite and PostgreSQL: for random consents and
requests, what is served is exactly what the live consents allow — the grantee, the status, the window,
the granularity, the quantities — checked against sums computed the slow way from the same sides; and
the access log is append-only, each entry chained to the one before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError

from daisee.consent.model import (
    ALL_KINDS,
    DAY,
    GRANULARITIES,
    ZERO_ADDRESS,
    Audience,
    DataKind,
    Grant,
    Purpose,
    Status,
    quantities,
)
from daisee.regie import access_log
from daisee.regie.access_log import Access
from daisee.regie.calendar import Granularity, LoopCalendar, zone
from daisee.regie.consents import StoredConsent, held_by, shared_curve
from daisee.regie.curves import Period
from daisee.regie.schema import access_log as access_log_table
from daisee.regie.schema import consents, metadata, meters
from daisee.regie.sums import Side, record
from daisee.regie.views import curve_json

# the loop starts at midnight in Paris on 2026-10-24; the day after is the one summer time ends
CALENDAR = LoopCalendar(genesis=1_792_792_800, step_seconds=900, tz=zone("Europe/Paris"))
STEPS = 3 * 96 + 4  # three days and a bit, the 25-hour day among them
METER = bytes.fromhex("aa" * 32)
READER, OTHER = "0x" + "11" * 20, "0x" + "22" * 20
GRANTOR = "0x" + "33" * 20

energies = st.lists(
    st.tuples(st.integers(0, STEPS - 1), st.booleans(), st.integers(1, 5_000)), max_size=60, unique_by=lambda s: s[:2]
)
grants = st.builds(
    lambda granularity, kinds, start_step, history, length: Grant(
        meter_id=METER,
        audience=Audience.ACCOUNT,
        grantee=READER,
        purpose=Purpose.RESEARCH,
        kinds=DataKind(kinds),
        granularity=granularity,
        history_days=history,
        valid_from=CALENDAR.genesis + start_step * 900,
        valid_until=CALENDAR.genesis + start_step * 900 + length,
        nonce=1,
    ),
    st.sampled_from(GRANULARITIES),
    st.integers(1, int(ALL_KINDS)),
    st.integers(0, STEPS),
    st.integers(0, 2),
    st.integers(900, 4 * DAY),
)
requests = st.tuples(st.sampled_from(["day", "week"]), st.integers(0, 3), st.sampled_from(list(Granularity)[:4]))


def _empty(store: Engine) -> None:
    with store.begin() as db:
        for table in reversed(metadata.sorted_tables):
            if table.name not in ("meta", "alembic_version", "access_log"):
                db.execute(table.delete())


def _stored(grant: Grant, revoked: bool = False) -> StoredConsent:
    return StoredConsent(bytes(32), 0, METER, GRANTOR, grant, 1 if revoked else None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(energies, grants, requests)
def test_a_consent_serves_its_window_at_its_granularity_in_its_quantities_and_nothing_else(
    store: Engine, found: list[tuple[int, bool, int]], grant: Grant, request: tuple[str, int, Granularity]
) -> None:
    _empty(store)
    sides = [Side(0, interval, production, energy, energy // 3) for interval, production, energy in found]
    with store.begin() as db:
        record(db, {1: sides}, CALENDAR)
    kind, day, asked = request
    start = datetime.fromtimestamp(CALENDAR.genesis, UTC) + timedelta(days=day)
    period = Period.of(start, Granularity.DAY, CALENDAR)
    if kind == "week":
        period = Period(period.start, period.start + timedelta(days=7))
    consent = _stored(grant)

    with store.connect() as db:
        curve, allowed = shared_curve(db, CALENDAR, consent, period, asked)
    shown = curve_json(curve, CALENDAR, shown=allowed.quantities)

    assert allowed.granularity == asked.at_least(grant.granularity)
    assert curve.granularity == allowed.granularity
    assert allowed.quantities == quantities(grant.kinds)
    assert set(shown) - {"granularity", "pas", "total", "rates", "horodate"} == set(allowed.quantities)
    window = (grant.data_from, grant.valid_until)
    for bucket, energy in zip(curve.buckets, curve.energy, strict=True):
        inside = window[0] <= bucket.start.timestamp() and bucket.end.timestamp() <= window[1]
        steps = [s for s in sides if bucket.start <= CALENDAR.start(s.interval) < bucket.end]
        if not inside or not steps:
            assert energy is None
            continue
        assert energy is not None
        assert energy.cons == sum(s.energy_wh for s in steps if not s.production)
        assert energy.prod == sum(s.energy_wh for s in steps if s.production)
        assert energy.autocons == sum(s.local_wh for s in steps if not s.production)


consent_rows = st.lists(
    st.tuples(
        st.sampled_from(list(Audience)),
        st.sampled_from([READER, OTHER]),
        st.integers(-3, 3),  # starts this many days from now
        st.integers(-2, 4),  # ends this many days from now
        st.booleans(),  # revoked
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(consent_rows, st.sampled_from([READER, OTHER, None]), st.booleans())
def test_a_reader_holds_exactly_the_live_consents_granted_to_it(
    store: Engine, rows: list[tuple[Audience, str, int, int, bool]], reader: str | None, member: bool
) -> None:
    _empty(store)
    now = CALENDAR.genesis + 10 * DAY
    expected = set()
    with store.begin() as db:
        db.execute(meters.insert().values(idx=0, meter_id=METER, kind=0, payout=GRANTOR, active_from=0, block=1))
        for n, (audience, grantee, starts, ends, revoked) in enumerate(rows):
            consent_id = n.to_bytes(32, "big")
            account = grantee if audience is Audience.ACCOUNT else ZERO_ADDRESS
            valid_from, valid_until = now + starts * DAY, now + ends * DAY
            db.execute(
                consents.insert().values(
                    consent_id=consent_id,
                    meter_idx=0,
                    grantor=GRANTOR,
                    audience=audience.value,
                    grantee=account,
                    purpose=Purpose.RESEARCH.value,
                    kinds=int(DataKind.CONSUMPTION),
                    granularity=0,
                    history_days=0,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    nonce="1",
                    block=1,
                    revoked_block=2 if revoked else None,
                    revoked_at=now if revoked else None,
                )
            )
            live = not revoked and valid_from <= now < valid_until
            granted_to = {
                Audience.EVERYONE: True,
                Audience.MEMBERS: member,
                Audience.ACCOUNT: reader is not None and reader == account,
            }[audience]
            if live and granted_to:
                expected.add(consent_id)
    with store.connect() as db:
        held = held_by(db, reader, member, now)
    assert {c.consent_id for c in held} == expected
    assert all(c.status(now) is Status.ACTIVE for c in held)


def test_a_consents_status_follows_its_dates_and_its_revocation() -> None:
    grant = Grant(METER, Audience.EVERYONE, ZERO_ADDRESS, Purpose.OPEN_DATA, DataKind.PRODUCTION,
                  Granularity.HOUR, 0, 1_000, 2_000, 1)  # fmt: skip
    assert [_stored(grant).status(t) for t in (999, 1_000, 1_999, 2_000)] == [
        Status.PENDING,
        Status.ACTIVE,
        Status.ACTIVE,
        Status.EXPIRED,
    ]
    assert _stored(grant, revoked=True).status(1_500) is Status.REVOKED


def test_the_access_log_chains_its_entries_and_refuses_any_change(store: Engine) -> None:
    entries = [Access(0, READER, "research", bytes(32), "curve", 0, 3_600, "hour"), Access(1, "anyone", "open_data",
               None, "figures", 0, 86_400, "day")]  # fmt: skip
    with store.begin() as db:
        head = access_log.record(db, entries, at=1_700_000_000)
    with store.connect() as db:
        assert access_log.head(db) == (head, 2)
        assert access_log.verify(db)
        assert [e["reader"] for e in access_log.entries(db, [0, 1])] == ["anyone", READER]
    changes: list[Any] = [access_log_table.update().values(reader=OTHER), access_log_table.delete()]
    if store.dialect.name == "postgresql":
        changes.append(text("TRUNCATE access_log"))
    for statement in changes:
        with pytest.raises(DatabaseError, match="append-only"), store.begin() as db:
            db.execute(statement)
    with store.connect() as db:
        assert access_log.verify(db)
        assert len(access_log.entries(db, [0, 1])) == 2
