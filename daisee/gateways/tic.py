"""Linky TIC (télé-information client): an incremental frame decoder for both modes, and frame → MeterSample.

Historique mode: 1200 bd, groups `label SP data SP checksum`. Standard mode: 9600 bd, groups
`label TAB [horodate TAB] data TAB checksum`. Both are 7E1; 8N1 adapters deliver the parity bit, which
is stripped. A group that fails its checksum, or cannot be what its label says, is never used.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from daisee.gateways import MAX_INDEX_WH, MeterSample
from daisee.gateways.serial_port import SerialStream

Mode = Literal["historique", "standard"]
ModeChoice = Literal["auto", "historique", "standard"]

BAUDRATE: dict[Mode, int] = {"historique": 1200, "standard": 9600}
SEPARATOR: dict[Mode, bytes] = {"historique": b" ", "standard": b"\t"}

STX, ETX, EOT = 0x02, 0x03, 0x04
MAX_FRAME_BYTES = 8192  # a standard frame is ~1.3 kB: past this we are reading noise, not a frame

_STRIP_PARITY = bytes(b & 0x7F for b in range(256))
_LABEL = re.compile(rb"[A-Z0-9+\-]+")
_HORODATE = re.compile(rb"[HEhe ][0-9]{12}")
_DIGITS = re.compile(rb"[0-9]+")
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")
_TARIFF_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("BASE",),
    ("HCHC", "HCHP"),
    ("EJPHN", "EJPHPM"),
    ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"),
)
# Labels whose data is a number: a bit error the 6-bit checksum misses (a digit shifted by 64 becomes a
# lowercase letter) is refused here rather than read as a wrong index or meter address.
NUMERIC_LABELS = frozenset(
    {"ADCO", "ADSC", "EAST", "EAIT", *(label for family in _TARIFF_FAMILIES for label in family)}
    | {f"EASF{i:02d}" for i in range(1, 11)}
    | {f"EASD{i:02d}" for i in range(1, 5)}
)


@dataclass(frozen=True)
class Group:
    """One information group as read: `horodate` is `SAAMMJJhhmmss` (standard mode only) or None."""

    label: str
    data: str
    horodate: str | None = None


@dataclass(frozen=True)
class Frame:
    """A complete frame: the groups that passed their checksum, in order, and the labels of those that did not."""

    mode: Mode
    groups: tuple[Group, ...]
    rejected: tuple[str, ...] = ()

    def get(self, label: str) -> Group | None:
        return next((group for group in self.groups if group.label == label), None)


def checksum(summed: bytes) -> int:
    """The checksum character of the summed bytes: `(S & 0x3F) + 0x20`, always printable, possibly a space."""
    return (sum(summed) & 0x3F) + 0x20


def encode_group(mode: Mode, group: Group) -> bytes:
    """One group on the wire, `LF … CR`, with its checksum (for simulators and tests)."""
    sep = SEPARATOR[mode]
    if group.horodate is not None and mode == "historique":
        raise ValueError("historique groups have no horodate")
    fields = [group.label] + ([group.horodate] if group.horodate is not None else []) + [group.data]
    payload = sep.join(field.encode("ascii") for field in fields)
    summed = payload + sep if mode == "standard" else payload
    return b"\n" + payload + sep + bytes([checksum(summed)]) + b"\r"


def encode_frame(mode: Mode, groups: Iterable[Group]) -> bytes:
    """A frame on the wire: `STX`, the groups, `ETX`."""
    return bytes([STX]) + b"".join(encode_group(mode, group) for group in groups) + bytes([ETX])


def parse_group(mode: Mode, raw: bytes) -> Group | None:
    """The group in `raw` (the bytes between LF and CR), or None if it is malformed or fails its checksum."""
    sep = SEPARATOR[mode]
    if raw[-2:-1] != sep or raw[-1] != checksum(raw[:-1] if mode == "standard" else raw[:-2]):
        return None
    fields = raw[:-2].split(sep) if mode == "standard" else raw[:-2].split(sep, 1)
    if len(fields) not in (2, 3) or not _LABEL.fullmatch(fields[0]) or not all(map(_PRINTABLE.fullmatch, fields)):
        return None
    label, data = fields[0].decode(), fields[-1].decode()
    horodate = fields[1] if len(fields) == 3 else None
    if horodate is not None and not _HORODATE.fullmatch(horodate):
        return None
    if label in NUMERIC_LABELS and not _DIGITS.fullmatch(fields[-1]):
        return None
    return Group(label, data, horodate.decode() if horodate is not None else None)


def _detect_mode(pieces: list[bytes]) -> Mode:
    """The mode of a frame's groups: the separator before most checksums (TAB standard, SPACE historique)."""
    tabs = sum(piece[-3:-2] == b"\t" for piece in pieces)
    spaces = sum(piece[-3:-2] == b" " for piece in pieces)
    return "standard" if tabs > spaces else "historique"


def decode_frame(body: bytes, mode: ModeChoice = "auto") -> Frame:
    """The frame whose bytes between STX and ETX are `body` (parity already stripped). A group starts with
    LF: bytes before the first LF are the tail of a group cut short (a corrupt byte read as STX), rejected."""
    head, *rest = body.split(b"\n")
    pieces = [piece for piece in rest if piece]
    frame_mode = _detect_mode(pieces) if mode == "auto" else mode
    groups: list[Group] = []
    rejected: list[str] = [_label_as_read(head)] if head else []
    for piece in pieces:
        group = parse_group(frame_mode, piece[:-1]) if piece.endswith(b"\r") else None
        if group is None:
            rejected.append(_label_as_read(piece))
        else:
            groups.append(group)
    return Frame(frame_mode, tuple(groups), tuple(rejected))


class TicDecoder:
    """Turns a TIC byte stream into frames, whatever the chunking: feed it bytes, get the frames they complete.

    Bytes before the first STX (a partial frame) are skipped, a frame cut by EOT or by a new STX is discarded,
    and a frame in which no group is valid is noise (wrong baud rate), not a frame.
    """

    def __init__(self, mode: ModeChoice = "auto") -> None:
        self.mode = mode
        self._body: bytearray | None = None

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        for byte in data.translate(_STRIP_PARITY):
            if byte == STX:
                self._body = bytearray()
            elif self._body is None:
                continue
            elif byte == ETX:
                frame = decode_frame(bytes(self._body), self.mode)
                self._body = None
                if frame.groups:
                    frames.append(frame)
            elif byte == EOT or len(self._body) >= MAX_FRAME_BYTES:
                self._body = None
            else:
                self._body.append(byte)
        return frames


def decode_stream(data: bytes, mode: ModeChoice = "auto") -> list[Frame]:
    """Every complete frame in a captured stream."""
    return TicDecoder(mode).feed(data)


def frame_sample(frame: Frame, timestamp: float) -> MeterSample:
    """The indices of a frame: import is EAST (standard) or the sum of the tariff indices (historique), export EAIT.

    An index whose group was rejected gives None, never a partial sum.
    """
    if frame.mode == "standard":
        imported, exported, address = _number(frame, "EAST"), _number(frame, "EAIT"), frame.get("ADSC")
    else:
        imported, exported, address = _historique_import(frame), None, frame.get("ADCO")
    meter = address.data if address is not None else None
    return MeterSample(timestamp, imported, exported, meter, frame.rejected)


class TicGateway:
    """A Linky's TIC on a serial port (7E1): one sample per complete frame, stamped when its ETX arrives.

    The baud rate follows `mode` (1200 historique, 9600 standard) unless given. With `mode="auto"` and no
    baud rate it starts at 1200 and switches between 1200 and 9600 whenever `switch_after` seconds pass
    without a valid frame.
    """

    def __init__(
        self, port: str, mode: ModeChoice = "auto", baudrate: int | None = None, *, switch_after: float = 10.0
    ) -> None:
        self.mode = mode
        self.switch_after = switch_after
        self._auto_baud = mode == "auto" and baudrate is None
        first = baudrate or BAUDRATE["historique" if mode == "auto" else mode]
        self._stream = SerialStream(port, first, seven_even=True)

    @property
    def baudrate(self) -> int:
        return self._stream.baudrate

    def samples(self) -> Iterator[MeterSample]:
        decoder = TicDecoder(self.mode)
        last_frame = time.monotonic()
        for chunk in self._stream.chunks():
            now = time.time()
            for frame in decoder.feed(chunk):
                last_frame = time.monotonic()
                yield frame_sample(frame, now)
            if self._auto_baud and time.monotonic() - last_frame > self.switch_after:
                slow, fast = BAUDRATE["historique"], BAUDRATE["standard"]
                self._stream.baudrate = fast if self._stream.baudrate == slow else slow
                decoder = TicDecoder(self.mode)
                last_frame = time.monotonic()

    def close(self) -> None:
        self._stream.close()


def _number(frame: Frame, label: str) -> int | None:
    group = frame.get(label)
    value = int(group.data) if group is not None else None
    return value if value is not None and value < MAX_INDEX_WH else None


def _historique_import(frame: Frame) -> int | None:
    """The sum of the tariff indices of the meter's option, or None unless all of them were read intact."""
    seen = [family for family in _TARIFF_FAMILIES if any(frame.get(label) for label in family)]
    if len(seen) != 1:
        return None
    indices = [_number(frame, label) for label in seen[0]]
    total = sum(index for index in indices if index is not None)
    return total if None not in indices and total < MAX_INDEX_WH else None


def _label_as_read(piece: bytes) -> str:
    """The label of a refused group as it arrived, control characters shown as `?`."""
    label = re.split(rb"[\t \r]", piece, maxsplit=1)[0]
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in label) or "?"
