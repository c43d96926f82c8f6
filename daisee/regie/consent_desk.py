"""The régie's consent desk: it drafts the EIP-712 messages a member signs in its wallet, submits the
signed ones to the consent registry (the member pays no gas), and asks the registry, before serving
under a consent, whether it still holds — so a revocation takes effect on the next request, without
waiting for the indexer's confirmations.
"""

from __future__ import annotations

import secrets
import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from datetime import UTC, date, datetime
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from eth_utils import to_checksum_address

from daisee.chain.transact import Sender
from daisee.consent.model import (
    DataKind,
    Grant,
    Purpose,
    Status,
    local_midnight,
    parse_grantee,
    parse_granularity,
    revocation_typed_data,
)
from daisee.consent.registry import ConsentRegistry
from daisee.errors import DaiseeError
from daisee.regie.web import RefusedError

MAX_GRANTS_A_DAY = 24  # grants the régie pays for, a meter and 24 hours: a member cannot drain its account
DAY_SECONDS = 86_400.0


class ConsentDesk:
    """The consent registry at `address`, read with `reader` and written with `submitter` (if any)."""

    def __init__(self, reader: Sender, address: str, submitter: Sender | None) -> None:
        self.address = to_checksum_address(address)
        self.chain_id = reader.chain.chain_id
        self._registry = ConsentRegistry(reader, self.address)
        self._submitting = ConsentRegistry(submitter, self.address) if submitter else None
        self.max_grants_a_day = MAX_GRANTS_A_DAY
        self._paid: dict[bytes, deque[float]] = defaultdict(deque)  # a meter's grants paid for, by monotonic time
        self._paying = threading.Lock()

    def draft(self, fields: Mapping[str, Any], meter_id: bytes, tz: ZoneInfo, now: int) -> dict[str, Any]:
        """The EIP-712 document granting what the form's `fields` say for meter `meter_id`."""
        grant = _grant_from_form(fields, meter_id, tz, now)
        try:
            grant.check(now)
        except DaiseeError as exc:
            raise RefusedError(400, str(exc)) from None
        return grant.typed_data(self.chain_id, self.address)

    def revocation(self, consent_id: bytes) -> dict[str, Any]:
        return revocation_typed_data(consent_id, self.chain_id, self.address)

    def submit_grant(self, message: Mapping[str, Any], signature: bytes) -> bytes:
        """Record a signed grant; its consent id."""
        try:
            grant = Grant.from_message(dict(message))
        except (KeyError, TypeError, ValueError) as exc:
            raise RefusedError(400, f"the grant's message is not a daisee consent ({exc})") from None
        submitter = self._submitter()
        with self._paying:
            paid, now = self._paid[grant.meter_id], monotonic()
            while paid and paid[0] <= now - DAY_SECONDS:
                paid.popleft()
            if len(paid) >= self.max_grants_a_day:
                raise RefusedError(
                    429,
                    f"this régie records at most {self.max_grants_a_day} grants a meter a day: submit this one "
                    "tomorrow, or yourself with `daisee consent submit`",
                )
            try:
                consent_id = submitter.record_grant(grant, signature)
            except DaiseeError as exc:  # refused before sending, or by the registry: the message's fault
                raise RefusedError(400, str(exc)) from None
            paid.append(now)
        return consent_id

    def submit_revocation(self, consent_id: bytes, signature: bytes) -> None:
        try:
            self._submitter().record_revocation(consent_id, signature)
        except DaiseeError as exc:
            raise RefusedError(400, str(exc)) from None

    def anchor(self, head: bytes, entries: int) -> bool:
        """Publish the access log's running hash on chain, if this régie has an account to pay for it."""
        if self._submitting is None:
            return False
        self._submitting.anchor_access_log(head, entries)
        return True

    def status(self, consent_id: bytes) -> Status | None:
        """The consent's status on chain, now (None: the registry knows no such consent)."""
        return self._registry.status(consent_id)

    def _submitter(self) -> ConsentRegistry:
        if self._submitting is None:
            raise RefusedError(
                503,
                "this régie submits no consents (started without --account): submit it with `daisee consent submit`",
            )
        return self._submitting


def _grant_from_form(fields: Mapping[str, Any], meter_id: bytes, tz: ZoneInfo, now: int) -> Grant:
    """A grant from the member page's form: grantee (an address, `members` or `everyone`), purpose, kinds
    (a list of names), granularity, history_days, from and until (local dates, until excluded)."""
    try:
        audience, account = parse_grantee(str(fields.get("grantee", "")), "grantee")
        purpose = Purpose.parse(str(fields.get("purpose", "")))
        kinds = DataKind.parse(",".join(str(k) for k in fields.get("kinds", []) or []))
        granularity = parse_granularity(str(fields.get("granularity", "")))
    except DaiseeError as exc:
        raise RefusedError(400, str(exc)) from None
    try:
        history_days = int(fields.get("history_days", 0))
        starts = local_midnight(date.fromisoformat(str(fields.get("from") or _today(now, tz))), tz)
        ends = local_midnight(date.fromisoformat(str(fields.get("until", ""))), tz)
    except ValueError:
        raise RefusedError(400, "history_days is a whole number, from and until are dates (YYYY-MM-DD)") from None
    return Grant(
        meter_id=meter_id,
        audience=audience,
        grantee=account,
        purpose=purpose,
        kinds=kinds,
        granularity=granularity,
        history_days=history_days,
        valid_from=starts,
        valid_until=ends,
        nonce=secrets.randbits(64),
    )


def _today(now: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(now, UTC).astimezone(tz).date().isoformat()
