"""DSMR P1 and its cousins: telegrams framed from `/` to `!CRC`, checked and parsed by dsmr-parser.

Dutch and Belgian meters send tariff registers (`1-0:1.8.1`…`1.8.4`); Luxembourg's Smarty, Swedish HAN
ports and German EasyMeter D0 ports (`1-0:1.8.0*255`) send a total, `1-0:1.8.0`. Import is the total
when the telegram has one, else the sum of the tariff registers; export likewise from `1-0:2.8.x`.
Registers in kWh or Wh (Sagemcom T210-D-r) become whole Wh exactly, digits below the Wh (EasyMeter sends
seven decimals of a kWh) dropped: a counter floored stays monotonic.

`rejected` is `("CRC",)` when the CRC fails (or is missing from a telegram whose version line says it has
one) and `("PARSE",)` when a register line of a telegram without CRC (DSMR 2.2/3, EasyMeter) is malformed.
`Reading.missing` says why each None is None.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from dsmr_parser import obis_references as obis  # type: ignore[import-untyped]
from dsmr_parser.exceptions import InvalidChecksumError, ParseError  # type: ignore[import-untyped]
from dsmr_parser.parsers import CosemParser, TelegramParser, ValueParser  # type: ignore[import-untyped]

from daisee.gateways import MAX_INDEX_WH, MeterSample
from daisee.gateways.serial_port import SerialStream

MAX_TELEGRAM_BYTES = 16384  # a telegram is 0.3 to 3 kB: past this we are reading noise
TARIFFS = (1, 2, 3, 4)
WH_PER_UNIT = {"kWh": 3, "Wh": 0}  # decimal exponent from the register's unit to Wh

# `!` opens the last line: a bit error that turns a `)` into `!` must not end a telegram early, where the
# truncated telegram of a meter that sends no version line (Swedish HAN ports) would look CRC-less.
_TELEGRAM = re.compile(rb"/[^/]*?\n![0-9A-F]{0,4}\x00?\r\n")
_LF_TELEGRAM = re.compile(rb"/[^/\r]*?\n![0-9A-F]{0,4}\n")
_CRC = re.compile(r"![0-9A-F]{1,4}\x00?\r\n$")
_VERSIONED = re.compile(r"^(1-3:0\.2\.8|0-0:96\.1\.4)\(", re.MULTILINE)  # DSMR 4/5, Fluvius: they carry a CRC
_STRIP_PARITY = bytes(b & 0x7F for b in range(256))

# The meter's identifier, by preference: DSMR and Fluvius, Smarty, EasyMeter's serial, EasyMeter's
# property number. `0-0:96.1.1` alone: the library's wider pattern also matches an M-Bus device's
# `0-n:96.1.1`, which would replace the electricity meter's identifier on Fluvius telegrams.
_IDENTIFIERS = {
    "0-0:96.1.1": obis.BELGIUM_EQUIPMENT_IDENTIFIER,
    "0-0:42.0.0": obis.LUXEMBOURG_EQUIPMENT_IDENTIFIER,
    "0-0:96.1.255": obis.Q3D_EQUIPMENT_SERIALNUMBER,
    "1-0:0.0.0": obis.Q3D_EQUIPMENT_IDENTIFIER,
}
# Per flow, its registers: the total first, then the tariffs (OBIS code → dsmr-parser reference).
_REGISTERS = {
    "import_wh": {
        "1-0:1.8.0": obis.ELECTRICITY_IMPORTED_TOTAL,
        **{f"1-0:1.8.{t}": getattr(obis, f"ELECTRICITY_USED_TARIFF_{t}") for t in TARIFFS},
    },
    "export_wh": {
        "1-0:2.8.0": obis.ELECTRICITY_EXPORTED_TOTAL,
        **{f"1-0:2.8.{t}": getattr(obis, f"ELECTRICITY_DELIVERED_TARIFF_{t}") for t in TARIFFS},
    },
}


def _object(code: str, reference: str, kind: type) -> dict[str, Any]:
    return {"obis_reference": reference, "value_parser": CosemParser(ValueParser(kind)), "value_name": code}


_PARSER = TelegramParser(
    {
        "checksum_support": False,  # checked by read_telegram, which knows which telegrams have one
        "objects": [
            *(_object(code, reference, str) for code, reference in _IDENTIFIERS.items()),
            *(_object(code, ref, Decimal) for registers in _REGISTERS.values() for code, ref in registers.items()),
        ],
    }
)


@dataclass(frozen=True)
class Reading:
    """A telegram's sample, and why each of its None fields (`import_wh`, `export_wh`, `meter`) is None."""

    sample: MeterSample
    missing: dict[str, str]


class _MissingError(Exception):
    """A field the telegram does not give, and why."""


class DsmrDecoder:
    """Cuts a P1 byte stream into telegrams (`/` … `LF !CRC CR LF`), whatever the chunking; partial ones are dropped.

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


def lines_end_in_lf(data: bytes) -> bool:
    """Whether `data` holds a telegram whose lines end in LF alone: a capture a text tool rewrote."""
    return _LF_TELEGRAM.search(data.translate(_STRIP_PARITY)) is not None


def read_telegram(telegram: str, timestamp: float) -> Reading:
    """The indices of one telegram; nothing from a telegram whose CRC fails is used."""
    if _CRC.search(telegram) or _VERSIONED.search(telegram):
        try:
            TelegramParser.validate_checksum(telegram)
        except (InvalidChecksumError, ParseError, ValueError):  # ValueError: a stray '!' followed by a non-hex word
            return _refused(timestamp, "CRC", "the telegram failed its CRC check")
    try:
        parsed = _PARSER.parse(telegram, throw_ex=True)
    except (ParseError, ArithmeticError):
        return _refused(timestamp, "PARSE", "a register line of the telegram is malformed")
    readers: dict[str, Callable[[], object]] = {name: partial(_index, parsed, r) for name, r in _REGISTERS.items()}
    readers["meter"] = partial(_identifier, parsed)
    values: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name, read in readers.items():
        try:
            values[name] = read()
        except _MissingError as why:
            values[name], missing[name] = None, str(why)
    return Reading(MeterSample(timestamp, **values), missing)


def _refused(timestamp: float, what: str, why: str) -> Reading:
    sample = MeterSample(timestamp, None, None, None, (what,))
    return Reading(sample, dict.fromkeys(("import_wh", "export_wh", "meter"), why))


def _identifier(parsed: Any) -> str:
    for code in _IDENTIFIERS:
        register = getattr(parsed, code, None)
        if register is not None and register.value:
            return str(register.value)
    raise _MissingError(f"no equipment identifier ({', '.join(_IDENTIFIERS)})")


def _index(parsed: Any, registers: dict[str, str]) -> int:
    """The total register in Wh or, without one, the sum of the tariff registers (tariffs 1 and 2 at least)."""
    total, *tariffs = registers
    if getattr(parsed, total, None) is not None:
        wh = _wh(parsed, total)
    else:
        absent = [code for code in tariffs[:2] if getattr(parsed, code, None) is None]
        if absent:
            raise _MissingError(f"no {total} register, nor {' and '.join(absent)}")
        wh = sum(_wh(parsed, code) for code in tariffs if getattr(parsed, code, None) is not None)
    if wh >= MAX_INDEX_WH:
        raise _MissingError(f"{wh} Wh is beyond a 64-bit index: not a reading")
    return wh


def _wh(parsed: Any, code: str) -> int:
    """A register in kWh or Wh as whole Wh, exactly (no float on the way)."""
    register = getattr(parsed, code)
    value, unit = register.value, register.unit
    if value is None:
        raise _MissingError(f"{code} is empty")
    if unit not in WH_PER_UNIT:
        raise _MissingError(f"{code} is in {unit or 'no unit'}, not kWh or Wh")
    if not value.is_finite() or value < 0:
        raise _MissingError(f"{code} holds {value}, not an energy")
    return int(value.scaleb(WH_PER_UNIT[unit]))


class DsmrGateway:
    """A DSMR meter's P1 port: one sample per telegram, stamped when its CRC line arrives.

    115200 bd 8N1 (DSMR 4/5, Fluvius, Smarty, Swedish HAN ports); pass `baudrate=9600` for DSMR 2.2/3 and
    EasyMeter's D0 port, which are then read 7E1.
    """

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        self._stream = SerialStream(port, baudrate, seven_even=baudrate == 9600)

    def samples(self) -> Iterator[MeterSample]:
        decoder = DsmrDecoder()
        for chunk in self._stream.chunks():
            now = time.time()
            for telegram in decoder.feed(chunk):
                yield read_telegram(telegram, now).sample

    def close(self) -> None:
        self._stream.close()
