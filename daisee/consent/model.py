"""A member's consent, as its EIP-712 message and as the ConsentRegistry records it.

A consent is one meter, one grantee (an account, the loop's members, or everyone) and one purpose (the
CNIL's rule: one consent a purpose), covering some data kinds at a granularity no finer than the one
granted, over a history window, from a date until an expiry. Its id is the EIP-712 digest of its message,
so a message is recorded once, on one chain and one registry only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from enum import IntEnum, IntFlag, StrEnum
from typing import Any

from eth_account.messages import encode_typed_data
from eth_utils import is_address, to_checksum_address

from daisee.errors import DaiseeError
from daisee.readings import keccak
from daisee.regie.calendar import Granularity

DOMAIN_NAME = "daisee ConsentRegistry"
DOMAIN_VERSION = "1"
DAY = 86_400
MAX_DURATION_SECONDS = 1_096 * DAY  # three years, a leap day included: Enedis' longest third-party access
MAX_HISTORY_DAYS = 2**16 - 1
GRANT_FIELDS = (
    ("meterId", "bytes32"),
    ("audience", "uint8"),
    ("grantee", "address"),
    ("purpose", "uint8"),
    ("kinds", "uint8"),
    ("granularity", "uint8"),
    ("historyDays", "uint16"),
    ("validFrom", "uint64"),
    ("validUntil", "uint64"),
    ("nonce", "uint256"),
)
REVOCATION_FIELDS = (("consentId", "bytes32"),)
_DOMAIN_FIELDS = (("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address"))
ZERO_ADDRESS = "0x" + "00" * 20


class Purpose(IntEnum):
    """What a grantee may use the data for: one purpose a consent."""

    LOOP_DASHBOARD = 0  # the loop's dashboards beyond the public aggregates
    NEIGHBOUR_COMPARISON = 1  # counted in other members' comparison with their neighbours (medians only)
    OPEN_DATA = 2  # the producer's figures published for funders and anyone
    RESEARCH = 3
    ADVICE = 4  # an energy adviser
    SUPPLIER = 5  # the member's electricity supplier

    @property
    def slug(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Purpose:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise DaiseeError(f"unknown purpose {text!r}: use one of {', '.join(p.slug for p in cls)}") from None


class Audience(IntEnum):
    """Who a consent is granted to."""

    ACCOUNT = 0  # one Ethereum account, the grantee
    MEMBERS = 1  # any member of the loop, signed in
    EVERYONE = 2  # anyone, signed in or not


class DataKind(IntFlag):
    """What a consent covers; a quantity is served only when every kind it derives from is granted."""

    CONSUMPTION = 1  # CONS
    PRODUCTION = 2  # PROD
    ALLOCATION = 4  # AUTOCONS, AUTOPROD: the loop's share of each
    BILL = 8  # the monthly bills and ledger entries

    @classmethod
    def parse(cls, text: str) -> DataKind:
        """`consumption,production` → the flags; every name must be known."""
        kinds = cls(0)
        for name in filter(None, (part.strip() for part in text.split(","))):
            try:
                kinds |= cls[name.upper()]
            except KeyError:
                known = ", ".join(str(kind.name).lower() for kind in cls)
                raise DaiseeError(f"unknown data kind {name!r}: use some of {known}") from None
        if not kinds:
            raise DaiseeError("a consent covers at least one data kind: consumption, production, allocation or bill")
        return kinds


ALL_KINDS = DataKind.CONSUMPTION | DataKind.PRODUCTION | DataKind.ALLOCATION | DataKind.BILL
QUANTITY_KINDS = {  # Enedis' quantity → the kinds it reveals
    "CONS": DataKind.CONSUMPTION,
    "AUTOCONS": DataKind.ALLOCATION,
    "COMPLEMENT": DataKind.CONSUMPTION | DataKind.ALLOCATION,
    "PROD": DataKind.PRODUCTION,
    "AUTOPROD": DataKind.ALLOCATION,
    "SURPLUS": DataKind.PRODUCTION | DataKind.ALLOCATION,
}
GRANULARITIES = (Granularity.STEP, Granularity.HOUR, Granularity.DAY, Granularity.MONTH)  # by their code on chain


AUDIENCE_NAMES = {"members": Audience.MEMBERS, "everyone": Audience.EVERYONE}
GRANULARITY_NAMES = {"interval": Granularity.STEP, "step": Granularity.STEP} | {str(g): g for g in GRANULARITIES[1:]}


def parse_grantee(text: str, what: str) -> tuple[Audience, str]:
    """An account (0x…), `members` or `everyone` → its audience and the grantee account (zero for the two
    last); `what` names the input in the refusal."""
    wanted = text.strip()
    if wanted.lower() in AUDIENCE_NAMES:
        return AUDIENCE_NAMES[wanted.lower()], ZERO_ADDRESS
    if not is_address(wanted):
        raise DaiseeError(f"{what} {text!r} is not an account, `members` or `everyone`: give 0x + 40 hex digits")
    return Audience.ACCOUNT, to_checksum_address(wanted)


def parse_granularity(text: str) -> Granularity:
    """`interval` (or `step`), `hour`, `day` or `month`: the finest a consent allows."""
    try:
        return GRANULARITY_NAMES[text.strip().lower()]
    except KeyError:
        raise DaiseeError(f"unknown granularity {text!r}: use interval, hour, day or month") from None


def local_midnight(day: date, tz: tzinfo) -> int:
    """The instant `day` begins in the civil time `tz`: consents run from midnight to midnight."""
    return int(datetime.combine(day, time(), tzinfo=tz).timestamp())


def quantities(kinds: DataKind) -> tuple[str, ...]:
    """The quantities `kinds` reveal, in Enedis' order."""
    return tuple(name for name, needs in QUANTITY_KINDS.items() if needs & kinds == needs)


class Status(StrEnum):
    PENDING = "pending"  # recorded, not started yet
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Grant:
    """The message a meter's payout account signs to grant a consent."""

    meter_id: bytes
    audience: Audience
    grantee: str  # the account for Audience.ACCOUNT, else the zero address
    purpose: Purpose
    kinds: DataKind
    granularity: Granularity
    history_days: int
    valid_from: int  # unix seconds
    valid_until: int
    nonce: int

    def check(self, now: int, max_duration: int = MAX_DURATION_SECONDS) -> None:
        """Refuse what the registry would refuse, with the fix."""
        if (self.audience is Audience.ACCOUNT) == (self.grantee == ZERO_ADDRESS):
            raise DaiseeError("name a grantee account, or grant to the loop's members or to everyone (no account)")
        if not self.kinds or int(self.kinds) & ~int(ALL_KINDS):  # an IntFlag's ~ keeps only known flags
            raise DaiseeError("a consent covers at least one data kind: consumption, production, allocation or bill")
        if self.granularity not in GRANULARITIES:
            raise DaiseeError(f"a consent's granularity is one of {', '.join(GRANULARITIES)}, not {self.granularity}")
        if not 0 <= self.history_days <= MAX_HISTORY_DAYS:
            raise DaiseeError(f"the history window is 0 to {MAX_HISTORY_DAYS} days")
        if self.valid_until <= max(self.valid_from, now):
            raise DaiseeError("the consent would be over before it starts: choose an expiry in the future")
        if self.valid_until - self.valid_from > max_duration:
            raise DaiseeError(f"a consent lasts at most {max_duration // DAY} days: choose an earlier expiry")

    @property
    def data_from(self) -> int:
        """The oldest instant the grantee may see: the history window before the consent starts."""
        return self.valid_from - self.history_days * DAY

    def status(self, now: int, revoked: bool = False) -> Status:
        if revoked:
            return Status.REVOKED
        if now >= self.valid_until:
            return Status.EXPIRED
        return Status.PENDING if now < self.valid_from else Status.ACTIVE

    def message(self) -> dict[str, Any]:
        """The EIP-712 message's fields, as wallets take them."""
        return {
            "meterId": "0x" + self.meter_id.hex(),
            "audience": int(self.audience),
            "grantee": to_checksum_address(self.grantee),
            "purpose": int(self.purpose),
            "kinds": int(self.kinds),
            "granularity": GRANULARITIES.index(self.granularity),
            "historyDays": self.history_days,
            "validFrom": self.valid_from,
            "validUntil": self.valid_until,
            "nonce": self.nonce,
        }

    def typed_data(self, chain_id: int, registry: str) -> dict[str, Any]:
        """The whole EIP-712 document for `eth_signTypedData_v4`."""
        return _typed_data(chain_id, registry, "Grant", GRANT_FIELDS, self.message())

    def consent_id(self, chain_id: int, registry: str) -> bytes:
        """The consent's id on that registry: its message's EIP-712 digest."""
        return typed_digest(self.typed_data(chain_id, registry))

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Grant:
        return cls(
            meter_id=bytes.fromhex(str(message["meterId"]).removeprefix("0x")),
            audience=Audience(int(message["audience"])),
            grantee=to_checksum_address(message["grantee"]),
            purpose=Purpose(int(message["purpose"])),
            kinds=DataKind(int(message["kinds"])),
            granularity=GRANULARITIES[int(message["granularity"])],
            history_days=int(message["historyDays"]),
            valid_from=int(message["validFrom"]),
            valid_until=int(message["validUntil"]),
            nonce=int(message["nonce"]),
        )


def revocation_typed_data(consent_id: bytes, chain_id: int, registry: str) -> dict[str, Any]:
    """The EIP-712 document a grantor signs to revoke consent `consent_id`."""
    return _typed_data(chain_id, registry, "Revocation", REVOCATION_FIELDS, {"consentId": "0x" + consent_id.hex()})


def typed_digest(typed: dict[str, Any]) -> bytes:
    """The digest a wallet signs for the EIP-712 document `typed` (`0x19 01 ‖ domain ‖ struct`)."""
    signable = encode_typed_data(full_message=typed)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def _typed_data(
    chain_id: int, registry: str, primary: str, fields: tuple[tuple[str, str], ...], message: dict[str, Any]
) -> dict[str, Any]:
    def described(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
        return [{"name": name, "type": kind} for name, kind in pairs]

    return {
        "types": {"EIP712Domain": described(_DOMAIN_FIELDS), primary: described(fields)},
        "primaryType": primary,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(registry),
        },
        "message": message,
    }
