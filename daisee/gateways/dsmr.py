"""DSMR P1 (Netherlands, Belgium): telegrams framed from `/` to `!CRC`, checked and parsed by dsmr-parser.

Import is the sum of the `1-0:1.8.x` tariff registers, export of `1-0:2.8.x`, converted from kWh to Wh
exactly. `rejected` is `("CRC",)` when the CRC fails (or is missing from a DSMR 4/5 telegram) and
`("PARSE",)` when a register line of a telegram without CRC (DSMR 2.2/3) is malformed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from dsmr_parser import obis_references as obis  # type: ignore[import-untyped]
from dsmr_parser.exceptions import InvalidChecksumError, ParseError  # type: ignore[import-untyped]
from dsmr_parser.parsers import CosemParser, TelegramParser, ValueParser  # type: ignore[import-untyped]

from daisee.gateways import MAX_INDEX_WH, MeterSample
from daisee.gateways.serial_port import SerialStream

MAX_TELEGRAM_BYTES = 16384  # a telegram is 0.5 to 3 kB: past this we are reading noise
TARIFFS = (1, 2, 3, 4)

_TELEGRAM = re.compile(rb"/[^/]*?![0-9A-F]{0,4}\x00?\r\n")
_CRC = re.compile(r"![0-9A-F]{1,4}\x00?\r\n$")
_VERSIONED = re.compile(r"^(1-3:0\.2\.8|0-0:96\.1\.4)\(", re.MULTILINE)  # DSMR 4/5, Fluvius: they carry a CRC
_STRIP_PARITY = bytes(b & 0x7F for b in range(256))


def _object(reference: str, name: str, kind: type) -> dict[str, Any]:
    return {"obis_reference": reference, "value_parser": CosemParser(ValueParser(kind)), "value_name": name}


# Only what a sample needs. `0-0:96.1.1` alone: the library's wider pattern also matches an M-Bus
# device's `0-n:96.1.1`, which would replace the electricity meter's identifier on Fluvius telegrams.
_PARSER = TelegramParser(
    {
        "checksum_support": False,  # checked by telegram_sample, which knows which telegrams have one
        "objects": [
            _object(obis.BELGIUM_EQUIPMENT_IDENTIFIER, "EQUIPMENT_IDENTIFIER", str),
            *(_object(getattr(obis, f"ELECTRICITY_USED_TARIFF_{t}"), f"IMPORT_{t}", Decimal) for t in TARIFFS),
            *(_object(getattr(obis, f"ELECTRICITY_DELIVERED_TARIFF_{t}"), f"EXPORT_{t}", Decimal) for t in TARIFFS),
        ],
    }
)


class DsmrDecoder:
    """Cuts a P1 byte stream into telegrams (`/` … `!CRC CR LF`), whatever the chunking; partial ones are dropped.

    The parity bit of 7E1 ports read as 8N1 is stripped: telegrams are ASCII.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data.translate(_STRIP_PARITY)
        telegrams = []
        while match := _TELEGRAM.search(self._buffer):
            telegrams.append(match.group().decode("latin-1"))
            del self._buffer[: match.end()]
        start = self._buffer.rfind(b"/")
        del self._buffer[: start if start >= 0 else len(self._buffer)]
        if len(self._buffer) > MAX_TELEGRAM_BYTES:
            self._buffer.clear()
        return telegrams


def decode_stream(data: bytes) -> list[str]:
    """Every complete telegram in a captured stream."""
    return DsmrDecoder().feed(data)


def telegram_sample(telegram: str, timestamp: float) -> MeterSample:
    """The indices of one telegram; nothing from a telegram whose CRC fails is used."""
    if _CRC.search(telegram) or _VERSIONED.search(telegram):
        try:
            TelegramParser.validate_checksum(telegram)
        except (InvalidChecksumError, ParseError, ValueError):  # ValueError: a stray '!' followed by a non-hex word
            return MeterSample(timestamp, None, None, None, ("CRC",))
    try:
        parsed = _PARSER.parse(telegram, throw_ex=True)
    except (ParseError, ArithmeticError):
        return MeterSample(timestamp, None, None, None, ("PARSE",))
    identifier = getattr(parsed, "EQUIPMENT_IDENTIFIER", None)
    meter = identifier.value if identifier is not None else None
    return MeterSample(timestamp, _total(parsed, "IMPORT"), _total(parsed, "EXPORT"), meter)


def _total(parsed: Any, direction: str) -> int | None:
    """The tariff registers summed in Wh, or None unless tariffs 1 and 2 (sent by every DSMR meter) are there."""
    registers = [getattr(parsed, f"{direction}_{tariff}", None) for tariff in TARIFFS]
    if registers[0] is None or registers[1] is None:
        return None
    total = 0
    for register in filter(None, registers):
        wh = _wh(register.value, register.unit)
        if wh is None:
            return None
        total += wh
    return total if total < MAX_INDEX_WH else None


def _wh(value: object, unit: object) -> int | None:
    """A register in kWh as exact Wh; None for anything else (a negative, NaN or sub-Wh reading, another unit)."""
    if unit != "kWh" or not isinstance(value, Decimal) or not value.is_finite():
        return None
    wh = value.scaleb(3)
    return int(wh) if wh >= 0 and wh == wh.to_integral_value() else None


class DsmrGateway:
    """A DSMR meter's P1 port: one sample per telegram, stamped when its CRC line arrives.

    115200 bd 8N1 (DSMR 4/5, Fluvius); pass `baudrate=9600` for DSMR 2.2/3, which is then read 7E1.
    """

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        self._stream = SerialStream(port, baudrate, seven_even=baudrate == 9600)

    def samples(self) -> Iterator[MeterSample]:
        decoder = DsmrDecoder()
        for chunk in self._stream.chunks():
            now = time.time()
            for telegram in decoder.feed(chunk):
                yield telegram_sample(telegram, now)

    def close(self) -> None:
        self._stream.close()
