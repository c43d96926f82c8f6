"""The régie's service: the indexer following the loop in a thread, and the pages and API on loopback.

`Regie(settings, loop, from_block).start()` opens (and migrates) the store, indexes what the chain has,
then serves; `stop()` ends both. Signing in is Sign-In with Ethereum for the régie's own origin.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from eth_utils import is_address, to_checksum_address
from sqlalchemy import select

from daisee.chain.connect import describe_error
from daisee.chain.transact import Sender
from daisee.consent.model import Status
from daisee.domain import LEDGER_DECIMALS
from daisee.errors import DaiseeError
from daisee.flex.forecast import DEFAULT_SITE, Site
from daisee.flex.mqtt import Broker, SignalPublisher
from daisee.flex.planner import Task, parse_deadline, parse_duration, plan
from daisee.flex.signal import score
from daisee.http_service import HttpService
from daisee.loop import Loop
from daisee.loopback import LOOPBACK
from daisee.regie import access_log, sessions
from daisee.regie.access_log import Access
from daisee.regie.calendar import DEFAULT_ZONE, zone
from daisee.regie.consent_desk import ConsentDesk
from daisee.regie.consents import StoredConsent, consent_by_id, granted_by, held_by
from daisee.regie.flexibility import Published, SignalDesk
from daisee.regie.indexer import POLL_SECONDS, Indexer
from daisee.regie.logs import log_event
from daisee.regie.neighbours import comparison
from daisee.regie.publish import PublicationRule
from daisee.regie.schema import meters
from daisee.regie.shared import producers_view, shared_view
from daisee.regie.siwe import Expected, SiweMessage
from daisee.regie.store import open_store
from daisee.regie.views import (
    Context,
    Member,
    billing_view,
    latest_day,
    loop_view,
    member_of,
    member_view,
    parse_view,
)
from daisee.regie.web import RefusedError, build_app

DEFAULT_PORT = 8547
ACCESS_LOG_SHOWN = 100  # the newest entries on the member's page (the export has them all)
PMO_SECONDS = 60.0
CHAIN_TIME_SECONDS = 5.0  # how long the loop's PMO, read from the chain, is taken as known
DEFAULT_TASK_POWER_W = 2000  # a washing machine heating its water
MAX_TASK_POWER_W = 36_000  # a household's largest subscription
STATEMENT = "Sign in to the regie of your energy loop, to see your own curves and bills."  # EIP-4361: ASCII


@dataclass(frozen=True)
class RegieSettings:
    db_url: str
    host: str = LOOPBACK
    port: int = DEFAULT_PORT
    zone: str = DEFAULT_ZONE
    rule: PublicationRule = field(default_factory=PublicationRule)
    grid_price_per_wh: int = 250  # ledger units a Wh: 0.25 a kWh, about France's regulated tariff
    public_url: str | None = None  # the origin members sign in to (behind a proxy); else http://host:port
    confirmations: int | None = None  # blocks on top of one before it is indexed; else the chain's policy
    poll_seconds: float = POLL_SECONDS
    anchor_seconds: float | None = None  # how often the access log's running hash is published on chain
    site: Site = DEFAULT_SITE  # where the loop's roofs are, for the signal's clear-sky model
    sky_file: Path | None = None  # the PMO's sky forecast (CSV of clearness or irradiance by hour)
    mqtt: Broker | None = None  # where the signal is published, retained


class Regie:
    """One loop's régie: its store, indexer and web service."""

    def __init__(
        self,
        settings: RegieSettings,
        loop: Loop,
        from_block: int,
        registry: str | None = None,
        submitter: Sender | None = None,
    ) -> None:
        """`registry`: the loop's consent registry (without one, no member's data is shared with anyone);
        `submitter`: the account that pays for recording the members' signed consents."""
        self.settings, self.loop = settings, loop
        tz: ZoneInfo = zone(settings.zone)
        self.tz = tz
        self.engine = open_store(settings.db_url)
        self.indexer = Indexer(self.engine, loop, from_block, tz, settings.confirmations, registry)
        self.desk = ConsentDesk(loop.sender, registry, submitter) if registry else None
        self.context = Context(self.indexer.facts, settings.rule, settings.grid_price_per_wh)
        self.signals = SignalDesk(self.engine, self.indexer.facts, settings.rule, settings.site, settings.sky_file)
        self._publisher: SignalPublisher | None = None
        self._signalling = threading.Thread(target=self._signal, name="regie-signal", daemon=True)
        self._server: HttpService | None = None
        self._stop = threading.Event()
        self._indexing = threading.Thread(target=self._index, name="regie-index", daemon=True)
        self._anchoring = threading.Thread(target=self._anchor, name="regie-anchor", daemon=True)
        self.anchored = 0  # entries of the access log whose running hash was published last
        self.https = False
        self._expected: Expected | None = None
        self._pmo_read: tuple[float, str] | None = None
        self._chain_time: tuple[float, int] | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the régie first"
        host, port = self._server.server_address
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Index what the chain has, then serve and follow it (OSError if the address is taken)."""
        self.indexer.catch_up()
        if self.settings.mqtt is not None:
            self._publisher = SignalPublisher(self.settings.mqtt, self.loop.address)
        self._server = HttpService((self.settings.host, self.settings.port), build_app(self), "regie", log_event)
        origin = (self.settings.public_url or self.url).rstrip("/")
        parts = urlsplit(origin)
        self.https = parts.scheme == "https"
        self._expected = Expected(domain=parts.netloc, origin=origin, chain_id=self.context.facts.chain_id)
        self._server.start()
        self._indexing.start()
        self._signalling.start()
        if self.settings.anchor_seconds and self.desk is not None:
            self._anchoring.start()
        log_event("serving", url=self.url, origin=origin, loop=self.loop.address)

    def stop(self) -> None:
        self._stop.set()
        self.indexer.wake.set()
        if self._server is not None:
            self._server.stop()
        for thread in (self._indexing, self._anchoring, self._signalling):
            if thread.is_alive():
                thread.join()
        if self._publisher is not None:
            self._publisher.close()
        self.engine.dispose()

    def _anchor(self) -> None:
        """Publish the access log's running hash every `anchor_seconds`, when it has grown."""
        assert self.settings.anchor_seconds is not None
        assert self.desk is not None
        while not self._stop.wait(self.settings.anchor_seconds):
            with self.engine.connect() as db:
                head, entries = access_log.head(db)
            if entries == self.anchored:
                continue
            try:
                if self.desk.anchor(head, entries):
                    self.anchored = entries
                    log_event("access_log_anchored", entries=entries, head="0x" + head.hex())
            except Exception as exc:  # the node is away: the next round tries again
                log_event("anchoring_failed", error=describe_error(exc, None))

    def _signal(self) -> None:
        """Compute the signal again as steps settle and begin; publish each new one on MQTT."""
        published: Published | None = None
        while not self._stop.wait(self.settings.poll_seconds):
            try:
                found = self.signals.current(self._loop_now())
                if found is not published and self._publisher is not None:
                    self._publisher.publish(found.signal)
                    current = found.signal.current()
                    log_event("signal_published", topic=self._publisher.topic, score=current and score(current))
                published = found
            except Exception as exc:  # the store is busy or away: the next round tries again
                log_event("signal_failed", error=str(exc))

    def _index(self) -> None:
        try:
            self.indexer.run(self._stop, self.settings.poll_seconds)
        except Exception as exc:  # the store cannot follow this chain any more: say so, keep serving
            self.indexer.last_error = str(exc)
            log_event("indexing_stopped", error=str(exc))

    # ---------------------------------------------------------------- what the pages and API serve

    def status(self) -> dict[str, Any]:
        return {"loop": self.loop.address, "indexer": self.indexer.status()}

    def account(self, token: str | None) -> str | None:
        if not token:
            return None
        with self.engine.connect() as db:
            return sessions.signed_in(db, token, _now())

    def loop_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]:
        with self.engine.connect() as db:
            view = parse_view(params, self.context.calendar, latest_day(db, self.context.calendar))
            member = account is not None and member_of(db, account) is not None
            data = loop_view(db, self.context, view, member=member)
        return data | {"flex": self._flex(member)}

    def member_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]:
        if account is None:
            raise RefusedError(401, "sign in with your payout account first (POST /api/sign-in)")
        with self.engine.connect() as db:
            member = member_of(db, account)
            if member is None:
                raise RefusedError(403, f"{account} is the payout account of no meter of this loop")
            view = parse_view(params, self.context.calendar, latest_day(db, self.context.calendar))
            data = member_view(db, self.context, member, view)
            now = self._loop_now()
            compared = comparison(db, self.context, member, view, now)
            data |= {
                "consents": [c.as_json(now, self.tz) for c in granted_by(db, member.meter_idxs)],
                "consent_registry": self.desk.address if self.desk else None,
                "access_log": access_log.entries(db, member.meter_idxs, limit=ACCESS_LOG_SHOWN),
                "comparison": compared.data,
                "flex": self._flex(True),
            }
        self._log(compared.accesses)
        return data

    def signal_page(self, account: str | None) -> dict[str, Any]:
        """The loop's flexibility signal; the expected Wh as the publication rule allows (all, to members)."""
        return self._published().as_json(member=self._is_member(account))

    def signal_now_page(self) -> dict[str, Any]:
        """The step under way alone (a few hundred bytes: for a plug that polls)."""
        shown = self._published().as_json(member=False)
        return {name: shown[name] for name in ("loop", "computed_at", "zone", "now")}

    def agile_page(self) -> dict[str, Any]:
        """The signal as Octopus Agile's rates: an extra kWh's price in each step."""
        published = self._published()
        return published.signal.agile(self.signals.loop_price(), self.settings.grid_price_per_wh, LEDGER_DECIMALS)

    def plan_page(self, params: dict[str, str]) -> dict[str, Any]:
        """The best time for a task: `duration`, `deadline`, and optional `power` (W) and `interruptible`."""
        now = self._loop_now()
        try:
            task = Task(
                parse_duration(params.get("duration", "")),
                _watts(params.get("power", str(DEFAULT_TASK_POWER_W))),
                parse_deadline(params.get("deadline", ""), now, self.tz),
                params.get("interruptible", "false").lower() in ("1", "true", "yes"),
            )
            chosen = plan(self._published(now).signal.steps, task, now)
        except DaiseeError as exc:
            raise RefusedError(400, str(exc)) from None
        return {"loop": self.loop.address, "computed_at": now, "plan": chosen.as_json(self.tz)}

    def _flex(self, member: bool) -> dict[str, Any]:
        """What a page shows of the signal: the step under way and today's best times."""
        shown = self._published().as_json(member=member)
        return {name: shown[name] for name in ("now", "best_today", "published")}

    def _published(self, now: int | None = None) -> Published:
        return self.signals.current(self._loop_now() if now is None else now)

    def _is_member(self, account: str | None) -> bool:
        if account is None:
            return False
        with self.engine.connect() as db:
            return member_of(db, account) is not None

    def _log(self, accesses: list[Access]) -> None:
        """Write `accesses` to the access log, in a transaction of their own."""
        if accesses:
            with self.engine.begin() as db:
                access_log.record(db, accesses, _epoch())

    def billing_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]:
        """Every member's bills, for the loop's PMO only."""
        if account is None:
            raise RefusedError(401, "sign in with the PMO's account first (POST /api/sign-in)")
        if account.lower() != self._pmo().lower():
            raise RefusedError(403, f"{account} is not this loop's PMO: billing shows every member's bills to it only")
        with self.engine.connect() as db:
            view = parse_view(
                {"period": "month", **params}, self.context.calendar, latest_day(db, self.context.calendar)
            )
            data = billing_view(db, self.context, view)
            idxs = db.execute(select(meters.c.idx)).scalars().all()
        start, end = int(view.period.start.timestamp()), int(view.period.end.timestamp())
        self._log([Access(idx, account, "billing", None, "bills", start, end, "month") for idx in idxs])
        return data

    def _pmo(self) -> str:
        """The loop's PMO, read again after PMO_SECONDS (ownership can be transferred)."""
        now = time.monotonic()
        if self._pmo_read is None or now - self._pmo_read[0] > PMO_SECONDS:
            self._pmo_read = (now, self.loop.pmo())
        return self._pmo_read[1]

    def producers_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]:
        with self.engine.connect() as db:
            view = parse_view(params, self.context.calendar, latest_day(db, self.context.calendar))
            member = account is not None and member_of(db, account) is not None
            served = producers_view(db, self.context, view, account, member, self._loop_now())
        self._log(served.accesses)
        return served.data

    # ---------------------------------------------------------------- consents

    def consents_page(self, account: str | None) -> dict[str, Any]:
        """The consents the account gave (as a member) and those it holds."""
        if account is None:
            raise RefusedError(401, "sign in first (POST /api/sign-in)")
        now = self._loop_now()
        with self.engine.connect() as db:
            member = member_of(db, account)
            granted = granted_by(db, member.meter_idxs) if member else []
            held = held_by(db, account, member is not None, now)
        return {
            "account": account,
            "consent_registry": self.desk.address if self.desk else None,
            "granted": [c.as_json(now, self.tz) for c in granted],
            "held": [c.as_json(now, self.tz) for c in held],
        }

    def shared_page(self, consent_id: str, params: dict[str, str], account: str | None) -> dict[str, Any]:
        """The data a consent lets `account` (None: anyone) see, if the consent holds, here and on chain."""
        wanted = _consent_id(consent_id)
        now = self._loop_now()
        with self.engine.connect() as db:
            consent = consent_by_id(db, wanted)
            member = account is not None and member_of(db, account) is not None
            if consent is None or not consent.readable_by(account, member):
                raise RefusedError(
                    403 if account else 401,
                    f"no consent {consent_id} is granted to {account or 'anyone'}: sign in with the grantee's account",
                )
            self._holds(consent, now)
            view = parse_view(params, self.context.calendar, latest_day(db, self.context.calendar))
            served = shared_view(db, self.context, consent, view, account, now)
        self._log(served.accesses)
        return served.data

    def _holds(self, consent: StoredConsent, now: int) -> None:
        """RefusedError unless `consent` is active in the store and on chain."""
        status = consent.status(now)
        if status is Status.ACTIVE and self.desk is not None:
            status = self.desk.status(consent.consent_id) or Status.REVOKED
        if status is not Status.ACTIVE:
            raise RefusedError(403, f"consent 0x{consent.consent_id.hex()} is {status}: its data is no longer shared")

    def consent_draft(self, account: str | None, fields: dict[str, Any]) -> dict[str, Any]:
        """The EIP-712 message granting what `fields` say, for the member to sign."""
        desk, member = self._desk(), self._member(account)
        meter_id = _meter_id(str(fields.get("meter_id", "")))
        if "0x" + meter_id.hex() not in {m["meter_id"] for m in member.meters}:
            raise RefusedError(403, f"meter 0x{meter_id.hex()} is not one of {member.account}'s meters")
        return desk.draft(fields, meter_id, self.tz, self._loop_now())

    def submit_grant(self, message: dict[str, Any], signature: str) -> dict[str, Any]:
        """Record a member's signed grant on chain (anyone may send it: the registry checks the signature)."""
        consent_id = self._desk().submit_grant(message, _signature(signature))
        self.indexer.wake.set()
        return {"consent_id": "0x" + consent_id.hex(), "status": "submitted"}

    def revocation_draft(self, account: str | None, consent_id: str) -> dict[str, Any]:
        wanted = _consent_id(consent_id)
        self._granted_by(account, wanted)
        return self._desk().revocation(wanted)

    def submit_revocation(self, consent_id: str, signature: str) -> dict[str, Any]:
        wanted = _consent_id(consent_id)
        self._desk().submit_revocation(wanted, _signature(signature))
        self.indexer.wake.set()
        return {"consent_id": consent_id, "status": str(Status.REVOKED)}

    def access_log_page(self, account: str | None) -> dict[str, Any]:
        """Every access to the member's data by anyone else, newest first, and the log's running hash."""
        member = self._member(account)
        with self.engine.connect() as db:
            head, count = access_log.head(db)
            return {
                "account": member.account,
                "entries": access_log.entries(db, member.meter_idxs),
                "head": "0x" + head.hex(),
                "entries_in_log": count,
                "anchored_entries": self.anchored,
            }

    def _loop_now(self) -> int:
        """The loop's time, that consents are judged at and the signal computed at: the wall clock, or the
        chain's if it is ahead (a development chain moved forward), as the registry judges consents; the
        chain's read at most every CHAIN_TIME_SECONDS."""
        wall = _epoch()
        if self._chain_time is None or time.monotonic() - self._chain_time[0] > CHAIN_TIME_SECONDS:
            try:
                latest = int(self.loop.sender.chain.w3.eth.get_block("latest")["timestamp"])
            except Exception:  # the node is away: the wall clock is the best there is
                return wall
            self._chain_time = (time.monotonic(), latest)
        return max(wall, self._chain_time[1])

    def _desk(self) -> ConsentDesk:
        if self.desk is None:
            raise RefusedError(503, "this régie follows no consent registry (start it with --consents)")
        return self.desk

    def _member(self, account: str | None) -> Member:
        if account is None:
            raise RefusedError(401, "sign in with your payout account first (POST /api/sign-in)")
        with self.engine.connect() as db:
            member = member_of(db, account)
        if member is None:
            raise RefusedError(403, f"{account} is the payout account of no meter of this loop")
        return member

    def _granted_by(self, account: str | None, consent_id: bytes) -> StoredConsent:
        member = self._member(account)
        with self.engine.connect() as db:
            consent = consent_by_id(db, consent_id)
        if consent is None or consent.meter_idx not in member.meter_idxs:
            raise RefusedError(403, f"consent 0x{consent_id.hex()} is not one of {member.account}'s")
        return consent

    def sign_in_message(self, address: str) -> str:
        """An EIP-4361 message for `address` to sign, with a nonce issued for it."""
        if not is_address(address):
            raise RefusedError(400, f"{address!r} is not an Ethereum address")
        assert self._expected is not None
        now = _now()
        try:
            with self.engine.begin() as db:
                nonce = sessions.issue_nonce(db, now)
        except sessions.TooManySignInsError as exc:
            raise RefusedError(503, str(exc)) from None
        message = SiweMessage(
            domain=self._expected.domain,
            address=to_checksum_address(address),
            uri=self._expected.origin + "/",
            chain_id=self._expected.chain_id,
            nonce=nonce,
            issued_at=now,
            statement=STATEMENT,
            expiration_time=now + sessions.SESSION_TTL,
        )
        return message.text()

    def sign_in(self, message: str, signature: str) -> tuple[str, str, datetime]:
        assert self._expected is not None
        now = _now()
        with self.engine.begin() as db:
            address, token, ends = sessions.sign_in(db, message, signature, self._expected, now)
        log_event("signed_in", account=address)
        return address, token, ends

    def sign_in_link(self, message: str, signature: str) -> tuple[str, str]:
        """The account and a one-time link that opens its session in a browser (for `daisee regie login`)."""
        assert self._expected is not None
        now = _now()
        with self.engine.begin() as db:
            address, token, _ = sessions.sign_in(db, message, signature, self._expected, now)
            sessions.sign_out(db, token)  # the session is the link's, opened where the member follows it
            code = sessions.issue_link(db, address, now)
        log_event("signed_in", account=address, by="link")
        return address, f"{self._expected.origin}/session/{code}"

    def follow_link(self, code: str) -> tuple[str, str, datetime]:
        with self.engine.begin() as db:
            return sessions.follow_link(db, code, _now())

    def sign_out(self, token: str) -> None:
        with self.engine.begin() as db:
            sessions.sign_out(db, token)


def _watts(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= MAX_TASK_POWER_W:
        raise DaiseeError(f"power {text!r}: give the task's power in W, from 1 to {MAX_TASK_POWER_W:,}, e.g. 2000")
    return int(text)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _epoch() -> int:
    return int(time.time())


def _hex_bytes(text: str, size: int, what: str) -> bytes:
    try:
        found = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        found = b""
    if len(found) != size or not text.startswith("0x"):
        raise RefusedError(400, f"{what} {text!r} is not 0x and {2 * size} hex digits")
    return found


def _consent_id(text: str) -> bytes:
    return _hex_bytes(text, 32, "consent id")


def _meter_id(text: str) -> bytes:
    return _hex_bytes(text, 32, "meter id")


def _signature(text: str) -> bytes:
    return _hex_bytes(text, 65, "signature")
