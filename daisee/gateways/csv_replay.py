"""A recorded load curve replayed as meter samples: for tests, demos and what-if runs on real data.

The CSV file (`,` or `;` separated, a header row first) has a `timestamp` column, ISO 8601 with an offset
or unix seconds, strictly increasing, and either cumulative indices `import_wh` and/or `export_wh`, or mean
powers `import_w` and/or `export_w`. A power row covers the step that ends at its timestamp, as in an Enedis
load curve: the indices are its exact integral from 0 at the first row (whose powers are checked, not
counted), rounded down to whole Wh.
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, DecimalException
from fractions import Fraction
from pathlib import Path

from daisee.errors import DaiseeError
from daisee.gateways import MAX_INDEX_WH, MeterSample

_INDEX_COLUMNS = ("import_wh", "export_wh")
_POWER_COLUMNS = ("import_w", "export_w")


class CsvReplayGateway:
    """The samples of a load-curve file, read and checked whole on construction.

    `speed` None replays as fast as the reader takes them; a number replays that many times faster than
    the timestamps (1 is real time). `close()`, from any thread, ends `samples()`.
    """

    def __init__(self, path: str | Path, speed: float | None = None) -> None:
        if speed is not None and not speed > 0:
            raise DaiseeError(f"replay speed {speed}: give a positive factor (1 is real time), or none for flat out")
        self._speed = speed
        self._closed = threading.Event()
        self._samples = _load(Path(path))

    def samples(self) -> Iterator[MeterSample]:
        """Each row's sample in order, paced by `speed`, until the end of the file or `close()`."""
        previous: float | None = None
        for sample in self._samples:
            if self._speed is not None and previous is not None:
                self._closed.wait((sample.timestamp - previous) / self._speed)
            if self._closed.is_set():
                return
            previous = sample.timestamp
            yield sample

    def close(self) -> None:
        self._closed.set()


@dataclass(frozen=True)
class _Layout:
    """Where the columns are: the timestamp's, then import's and export's (None when absent)."""

    width: int
    timestamp: int
    energy: tuple[int | None, int | None]
    power: bool  # mean powers in W, not cumulative indices in Wh


def _load(path: Path) -> list[MeterSample]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DaiseeError(f"cannot read the load curve {path} ({exc}): give a readable UTF-8 CSV file") from None
    first = next((line for line in lines if line.strip()), "")
    reader = csv.reader(lines, delimiter=";" if ";" in first else ",")
    layout: _Layout | None = None
    samples: list[MeterSample] = []
    totals = [Fraction(0), Fraction(0)]
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path} line {reader.line_num}"
        if layout is None:
            layout = _layout(row, where)
            continue
        if len(row) != layout.width:
            raise DaiseeError(f"{where}: {len(row)} fields under a header of {layout.width}: give one per column")
        timestamp = _timestamp(row[layout.timestamp].strip(), where)
        if samples and timestamp <= samples[-1].timestamp:
            raise DaiseeError(f"{where}: timestamp {row[layout.timestamp].strip()} is not after the previous row's")
        values = [None if column is None else _number(row[column].strip(), where) for column in layout.energy]
        if layout.power:
            hours = (Fraction(timestamp) - Fraction(samples[-1].timestamp)) / 3600 if samples else Fraction(0)
            for i, watts in enumerate(values):
                if watts is not None:
                    totals[i] += watts * hours
                    values[i] = totals[i]
        imported, exported = (None if value is None else _wh(value, where) for value in values)
        samples.append(MeterSample(timestamp, imported, exported))
    if not samples:
        raise DaiseeError(f"{path} has no readings: give a header row, then one row per reading")
    return samples


def _layout(header: list[str], where: str) -> _Layout:
    names = [name.strip().lower() for name in header]
    indices = [name for name in _INDEX_COLUMNS if name in names]
    powers = [name for name in _POWER_COLUMNS if name in names]
    known = {"timestamp", *_INDEX_COLUMNS, *_POWER_COLUMNS}
    misnamed = len(set(names)) != len(names) or not set(names) <= known
    if misnamed or "timestamp" not in names or bool(indices) == bool(powers):
        raise DaiseeError(
            f"{where}: columns {','.join(names)}: give timestamp and either import_wh,export_wh (indices in Wh) "
            "or import_w,export_w (mean powers in W)"
        )
    energy = _POWER_COLUMNS if powers else _INDEX_COLUMNS
    positions = tuple(names.index(name) if name in names else None for name in energy)
    return _Layout(len(names), names.index("timestamp"), (positions[0], positions[1]), bool(powers))


def _timestamp(text: str, where: str) -> float:
    """Unix seconds from unix seconds or an ISO 8601 time with its UTC offset."""
    try:
        seconds = Decimal(text)
    except DecimalException:
        pass
    else:
        if seconds.is_finite():
            return float(seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DaiseeError(
            f"{where}: timestamp {text!r} is neither ISO 8601 nor unix seconds: write e.g. 2024-05-01T12:00:00+02:00"
        ) from None
    if moment.tzinfo is None:
        raise DaiseeError(f"{where}: timestamp {text!r} has no UTC offset: add one, e.g. {text}+02:00 or {text}Z")
    return moment.timestamp()


def _number(text: str, where: str) -> Fraction:
    """A non-negative number, exactly."""
    try:
        value = Decimal(text)
    except DecimalException:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise DaiseeError(f"{where}: {text!r} is not a number >= 0: write e.g. 1234.5, with a dot for decimals")
    return Fraction(value)


def _wh(value: Fraction, where: str) -> int:
    """An index in whole Wh, rounded down."""
    if value >= MAX_INDEX_WH:
        raise DaiseeError(f"{where}: an index of {value} Wh is beyond a meter's range: check the units")
    return math.floor(value)
