"""What users type and read on the command line: durations, powers, amounts of money, percentages, times."""

from __future__ import annotations

import re
import time
from decimal import Decimal, DecimalException

from daisee.domain import LEDGER_DECIMALS, MAX_LIMIT_W, SHARE_DENOMINATOR
from daisee.errors import DaiseeError

MAX_NOTICE_SECONDS = 2**32 - 1  # the contract keeps the notice as uint32 seconds
_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+)([dhms])")


def duration(text: str, option: str) -> int:
    """`7d`, `12h`, `30m`, `1d12h`, `45s` or plain seconds (`0`, `604800`), in seconds."""
    compact = text.strip().lower().replace(" ", "")
    if compact.isdigit():
        seconds = int(compact)
    elif compact and _DURATION.sub("", compact) == "":
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(compact))
    else:
        raise DaiseeError(f"{option} {text!r} is not a duration: give e.g. 7d, 12h, 30m, 0, or seconds")
    if seconds > MAX_NOTICE_SECONDS:
        raise DaiseeError(f"{option} {text!r} is longer than a loop accepts ({MAX_NOTICE_SECONDS:,} s): give less")
    return seconds


def describe_duration(seconds: int) -> str:
    """604800 -> '7 days', 43200 -> '12 h', 90 -> '90 s', 0 -> '0 s'."""
    for size, unit in ((86_400, "day"), (3_600, "h"), (60, "min")):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}s" if unit == "day" and count != 1 else f"{count} {unit}"
    return f"{seconds} s"


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip().replace("_", ""))
    except DecimalException:
        return None
    return value if value.is_finite() else None


def power_w(text: str, option: str, unit: str) -> int:
    """A meter limit in kVA or kWc as the Linky shows it (`6`, `9`, `3.5`), in whole W."""
    value = _decimal(text)
    example = "e.g. 6 or 9" if unit == "kVA" else "e.g. 3 or 4.5"
    if value is None or value < 0:
        raise DaiseeError(f"{option} {text!r} is not a power: give {unit} as the meter shows it, {example}")
    watts = value * 1000
    if watts != watts.to_integral_value():
        raise DaiseeError(f"{option} {text} is not a whole number of W: give {unit} with at most 3 decimals")
    if watts > MAX_LIMIT_W:
        raise DaiseeError(f"{option} {text} {unit} is beyond what a loop accepts ({kilo(MAX_LIMIT_W)} {unit} at most)")
    return int(watts)


def kilo(watts: int) -> str:
    """12000 -> '12', 3500 -> '3.5'."""
    return _plain(Decimal(watts) / 1000)


def amount_units(text: str, option: str) -> int:
    """An amount of the loop's currency (`25`, `12.50`), in ledger units (millionths); more than zero."""
    value = _decimal(text)
    if value is None or value <= 0:
        raise DaiseeError(f"{option} {text!r} is not an amount: give currency units above 0, e.g. 25 or 12.50")
    units = value * 10**LEDGER_DECIMALS
    if units != units.to_integral_value():
        raise DaiseeError(f"{option} {text} has more than {LEDGER_DECIMALS} decimals: the ledger counts millionths")
    return int(units)


def money(units: int) -> str:
    """Ledger units as currency, exactly and with at least cents: 12_000_000 -> '12.00', 1_234_567 -> '1.234567'."""
    value = Decimal(units) / 10**LEDGER_DECIMALS
    text = _plain(value)
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def share_bp(text: str, option: str) -> int:
    """A static-key share as a percentage (`25`, `25%`, `12.5`), in basis points."""
    value = _decimal(text.strip().removesuffix("%"))
    if value is None or not 0 <= value <= 100:
        raise DaiseeError(f"{option} share {text!r} is not a percentage from 0 to 100: give e.g. 25 or 12.5%")
    points = value * SHARE_DENOMINATOR / 100
    if points != points.to_integral_value():
        raise DaiseeError(f"{option} share {text} has more than 2 decimals: shares count in basis points (0.01 %)")
    return int(points)


def percent_of_bp(points: int) -> str:
    """2500 -> '25%', 1250 -> '12.5%'."""
    return _plain(Decimal(points) * 100 / SHARE_DENOMINATOR) + "%"


def moment(timestamp: int) -> str:
    """A unix time as UTC: '2025-06-01 12:00:00 UTC'."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 12, 3.5, 0.012."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
