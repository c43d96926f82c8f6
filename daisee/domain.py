"""The loop's vocabulary: meter kinds, allocation keys, meter ids and prices. Pure Python."""

from __future__ import annotations

import re
from decimal import Decimal, DecimalException
from enum import IntEnum
from fractions import Fraction
from typing import Self

from eth_utils import is_address, is_checksum_address, keccak, to_checksum_address

from daisee.errors import DaiseeError

# The ledger counts money in millionths of the currency unit (as EURC and most euro tokens do).
LEDGER_DECIMALS = 6
_MAX_PRICE_EXPONENT = 30  # prices are between 1e-30 and 1e30 per kWh; beyond, a typo
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


class _NamedChoice(IntEnum):
    """An enum a user names in lowercase on the command line or in a configuration."""

    @classmethod
    def parse(cls, text: str) -> Self:
        """The member named `text` (any case); a one-line error listing the choices otherwise."""
        try:
            return cls[text.upper()]
        except KeyError:
            *others, last = (member.name.lower() for member in cls)
            noun = re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()  # MeterKind -> meter kind
            raise DaiseeError(f"unknown {noun} {text!r}: use {', '.join(others)} or {last}") from None


class MeterKind(_NamedChoice):
    """What a meter measures; mirrors `IEnergyLoop.MeterKind`."""

    CONSUMER = 0
    PRODUCER = 1
    PROSUMER = 2


class AllocationKey(_NamedChoice):
    """How local production is shared among consumers; mirrors `IEnergyLoop.AllocationKey`."""

    PRORATA = 0
    STATIC = 1
    WEIGHTED = 2


class RejectReason(IntEnum):
    """Why the loop skipped a signed reading; mirrors `IEnergyLoop.RejectReason`, checked in this order."""

    UNKNOWN_METER = 0  # no meter registered under this id
    BAD_SIGNATURE = 1  # not signed by the meter's current signer for this loop and chain
    METER_INACTIVE = 2  # the PMO removed the meter
    NOT_YET_ACTIVE = 3  # before the interval the meter's admission takes effect (the notice period)
    STALE_INTERVAL = 4  # not after the meter's last accepted interval (a replay, or out of order)
    FUTURE_INTERVAL = 5  # the interval has not ended yet
    INTERVAL_FINALIZED = 6  # the interval is closed; the energy flows into the meter's next reading
    SETTLEMENT_BACKLOG = 7  # more than two intervals ahead of settlement; send it again after `settle`
    INDEX_DECREASED = 8  # an index below the meter's last one (reset or swap: the PMO repairs the meter)
    FLOW_NOT_ALLOWED = 9  # export from a consumer, or import into a producer
    ABOVE_METER_LIMIT = 10  # more energy than the meter's limit times the time since its last reading


SHARE_DENOMINATOR = 10_000  # static-key shares are in basis points
SETTLEMENT_LAG = 2  # a meter may report at most this many intervals past the last settled one
MAX_METERS = 2**16 - 1  # meters a loop may ever register
MAX_LIMIT_W = 2**24 - 1  # the largest import or export limit of a meter (16.7 MW)


def meter_id(text: str) -> bytes:
    """A pseudonymous 32-byte meter id: `0x` + 64 hex digits as given, or the keccak-256 of a label.

    A label is a local name ("house-12"), never the meter's PRM: the id is public on-chain.
    """
    text = text.strip()
    if _HEX32.match(text):
        return bytes.fromhex(text[2:])
    if not text:
        raise DaiseeError("empty meter id: give 0x + 64 hex digits or a local label such as house-12")
    if text.startswith("0x"):
        raise DaiseeError(f"meter id {text!r} is not 0x + 64 hex digits: give a full bytes32 or a plain label")
    return keccak(text=text)


def price_per_wh(price_per_kwh: str | Decimal) -> int:
    """Convert a price in currency per kWh (e.g. "0.12") to ledger units per Wh, exactly."""
    try:
        decimal = Decimal(price_per_kwh)
    except DecimalException:
        decimal = Decimal("NaN")
    if not decimal.is_finite() or abs(decimal.adjusted()) > _MAX_PRICE_EXPONENT:
        raise DaiseeError(f"price {price_per_kwh!r} is not a plain number: give currency per kWh, e.g. 0.12")
    price = Fraction(decimal)
    if price < 0:
        raise DaiseeError(f"price {price_per_kwh} per kWh is negative: give a price of zero or more")
    units = price * 10**LEDGER_DECIMALS / 1000
    if units.denominator != 1:
        raise DaiseeError(
            f"price {price_per_kwh} per kWh is not a whole number of ledger units per Wh: "
            f"use at most {LEDGER_DECIMALS - 3} decimals (e.g. 0.125)"
        )
    return int(units)


def price_per_kwh(units_per_wh: int) -> Decimal:
    """The inverse of {price_per_wh}: ledger units per Wh back to currency per kWh."""
    return Decimal(units_per_wh) * 1000 / 10**LEDGER_DECIMALS


def address(text: str, what: str = "address") -> str:
    """`text` as a checksummed Ethereum address; `what` names the input in the error."""
    if not is_address(text):
        raise DaiseeError(f"{what} {text!r} is not an Ethereum address: give 0x + 40 hex digits")
    body = text[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(text):
        raise DaiseeError(f"{what} {text} has a wrong EIP-55 checksum (a typo?): check it, or give it in lowercase")
    return str(to_checksum_address(text))
