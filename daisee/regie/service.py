"""The régie's service: the indexer following the loop in a thread, and the pages and API on loopback.

`Regie(settings, loop, from_block).start()` opens (and migrates) the store, indexes what the chain has,
then serves; `stop()` ends both. Signing in is Sign-In with Ethereum for the régie's own origin.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from eth_utils import is_address, to_checksum_address
from sqlalchemy import func, update

from daisee.http_service import HttpService
from daisee.loop import Loop
from daisee.loopback import LOOPBACK
from daisee.regie import sessions
from daisee.regie.calendar import DEFAULT_ZONE, zone
from daisee.regie.indexer import POLL_SECONDS, Indexer
from daisee.regie.logs import log_event
from daisee.regie.publish import PublicationRule
from daisee.regie.schema import meters
from daisee.regie.siwe import Expected, SiweMessage
from daisee.regie.store import open_store
from daisee.regie.views import (
    Context,
    billing_view,
    latest_day,
    loop_view,
    member_of,
    member_view,
    parse_view,
    producers_view,
)
from daisee.regie.web import RefusedError, build_app

DEFAULT_PORT = 8547
PMO_SECONDS = 60.0  # how long the loop's PMO, read from the chain, is taken as known
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


class Regie:
    """One loop's régie: its store, indexer and web service."""

    def __init__(self, settings: RegieSettings, loop: Loop, from_block: int) -> None:
        self.settings, self.loop = settings, loop
        tz: ZoneInfo = zone(settings.zone)
        self.engine = open_store(settings.db_url)
        self.indexer = Indexer(self.engine, loop, from_block, tz, settings.confirmations)
        self.context = Context(self.indexer.facts, settings.rule, settings.grid_price_per_wh)
        self._server: HttpService | None = None
        self._stop = threading.Event()
        self._indexing = threading.Thread(target=self._index, name="regie-index", daemon=True)
        self.https = False
        self._expected: Expected | None = None
        self._pmo_read: tuple[float, str] | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the régie first"
        host, port = self._server.server_address
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Index what the chain has, then serve and follow it (OSError if the address is taken)."""
        self.indexer.catch_up()
        self._server = HttpService((self.settings.host, self.settings.port), build_app(self), "regie", log_event)
        origin = (self.settings.public_url or self.url).rstrip("/")
        parts = urlsplit(origin)
        self.https = parts.scheme == "https"
        self._expected = Expected(domain=parts.netloc, origin=origin, chain_id=self.context.facts.chain_id)
        self._server.start()
        self._indexing.start()
        log_event("serving", url=self.url, origin=origin, loop=self.loop.address)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.stop()
        if self._indexing.is_alive():
            self._indexing.join()
        self.engine.dispose()

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
            return loop_view(db, self.context, view, member=member)

    def member_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]:
        if account is None:
            raise RefusedError(401, "sign in with your payout account first (POST /api/sign-in)")
        with self.engine.connect() as db:
            member = member_of(db, account)
            if member is None:
                raise RefusedError(403, f"{account} is the payout account of no meter of this loop")
            view = parse_view(params, self.context.calendar, latest_day(db, self.context.calendar))
            return member_view(db, self.context, member, view)

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
            return billing_view(db, self.context, view)

    def _pmo(self) -> str:
        """The loop's PMO, read again after PMO_SECONDS (ownership can be transferred)."""
        now = time.monotonic()
        if self._pmo_read is None or now - self._pmo_read[0] > PMO_SECONDS:
            self._pmo_read = (now, self.loop.pmo())
        return self._pmo_read[1]

    def producers_page(self, params: dict[str, str]) -> dict[str, Any]:
        with self.engine.connect() as db:
            view = parse_view(params, self.context.calendar, latest_day(db, self.context.calendar))
            return producers_view(db, self.context, view)

    def set_open_data(self, account: str | None, meter_id: str, open_data: bool) -> dict[str, Any]:
        """A member's producing meter shows its figures to funders, or stops."""
        if account is None:
            raise RefusedError(401, "sign in with your payout account first (POST /api/sign-in)")
        try:
            wanted = bytes.fromhex(meter_id.removeprefix("0x"))
        except ValueError:
            wanted = b""
        if len(wanted) != 32:
            raise RefusedError(400, f"meter id {meter_id!r} is not 0x and 64 hex digits")
        with self.engine.begin() as db:
            changed = db.execute(
                update(meters)
                .where(meters.c.meter_id == wanted, func.lower(meters.c.payout) == account.lower(), meters.c.kind != 0)
                .values(open_data=open_data)
            )
            if changed.rowcount != 1:
                raise RefusedError(403, f"meter {meter_id} is no producing meter of {account}")
        log_event("open_data", meter=meter_id, open_data=open_data)
        return {"meter_id": meter_id, "open_data": open_data}

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


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
