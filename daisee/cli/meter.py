"""`daisee meter`: read captured meter streams (Linky TIC, DSMR P1) the way a gateway would."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Literal

import click
from rich.table import Table
from rich.text import Text

from daisee.cli.options import json_option
from daisee.cli.output import console
from daisee.errors import DaiseeError
from daisee.gateways import MeterSample, tic

FIELDS = ("meter", "import_wh", "export_wh")

# Where a TIC sample's fields come from, per mode: historique mode has no export index.
_TIC_SOURCES: dict[tic.Mode, dict[str, str]] = {
    "standard": {
        "meter": "ADSC group",
        "import_wh": "EAST group",
        "export_wh": "EAIT group (sent in producer mode only)",
    },
    "historique": {
        "meter": "ADCO group",
        "import_wh": "set of tariff indices (BASE, HCHC+HCHP, EJPHN+EJPHPM or BBRH…)",
    },
}

Row = tuple[MeterSample, dict[str, str]]  # a sample, and why each of its None fields is None


@click.group()
def meter() -> None:
    """Decode what a meter sends, as the oracle's gateway reads it."""


@meter.command("parse")
@click.option("--format", "source", type=click.Choice(["tic", "dsmr"]), required=True, help="What the capture holds.")
@click.option(
    "--mode",
    type=click.Choice(["auto", "historique", "standard"]),
    default="auto",
    show_default=True,
    help="TIC mode; auto reads it from each frame's separators.",
)
@click.argument("file", type=click.Path(path_type=Path))
@json_option
def parse(source: Literal["tic", "dsmr"], mode: tic.ModeChoice, file: Path, as_json: bool) -> None:
    """Decode every complete frame or telegram in FILE (raw bytes as read from the serial port).

    Prints the meter address, the import and export indices in Wh, what failed its checksum, and why
    each value that is null (—) is missing: one JSON object per line with --json.
    """
    data = _read(file)
    rows = _tic_rows(data, mode, file) if source == "tic" else _dsmr_rows(data, file)
    if as_json:
        for sample, missing in rows:
            click.echo(json.dumps(_row(sample, missing)))
        return
    table = Table("#", "meter", "import (Wh)", "export (Wh)", "rejected", "missing")
    for number, (s, missing) in enumerate(rows, 1):
        why = "\n".join(f"{name}: {reason}" for name, reason in missing.items())
        cells = (s.meter, s.import_wh, s.export_wh, " ".join(s.rejected), why)
        table.add_row(str(number), *map(_cell, cells))
    console.print(table)


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise DaiseeError(f"{file}: no such file: give the path of a capture") from None
    except OSError as exc:
        raise DaiseeError(f"cannot read {file}: {exc.strerror or exc}") from None


def _tic_rows(data: bytes, mode: tic.ModeChoice, file: Path) -> list[Row]:
    frames = tic.decode_stream(data, mode)
    if not frames and mode != "auto" and (found := tic.decode_stream(data)):
        raise DaiseeError(f"no {mode} TIC frame in {file}: it holds {found[0].mode} frames: use --mode auto")
    if not frames:
        raise DaiseeError(f"no complete TIC frame in {file}: is it a tic capture, or try the other --format")
    now = time.time()
    samples = [tic.frame_sample(frame, now) for frame in frames]
    return [(sample, _tic_missing(frame, sample)) for frame, sample in zip(frames, samples, strict=True)]


def _tic_missing(frame: tic.Frame, sample: MeterSample) -> dict[str, str]:
    """Why each None field of a frame's sample is None."""
    refused = f"; groups refused by their checksum: {' '.join(frame.rejected)}" if frame.rejected else ""
    missing = {}
    for name in FIELDS:
        if getattr(sample, name) is not None:
            continue
        source = _TIC_SOURCES[frame.mode].get(name)
        missing[name] = f"no valid {source}{refused}" if source else "historique mode has no export index"
    return missing


def _dsmr_rows(data: bytes, file: Path) -> list[Row]:
    from daisee.gateways import dsmr  # dsmr-parser pulls in cryptography: only load it when asked

    telegrams = dsmr.decode_stream(data)
    if not telegrams and dsmr.lines_end_in_lf(data):
        raise DaiseeError(
            f"the telegrams in {file} end their lines in LF instead of CR LF (a text tool rewrote the capture): "
            f"capture the raw bytes again, or restore the CR LF with `unix2dos {file}`"
        )
    if not telegrams:
        raise DaiseeError(f"no complete DSMR telegram in {file}: is it a dsmr capture, or try the other --format")
    # A malformed line already shows as rejected PARSE: the library's traceback would only add noise.
    logging.getLogger("dsmr_parser").setLevel(logging.CRITICAL)
    now = time.time()
    readings = [dsmr.read_telegram(telegram, now) for telegram in telegrams]
    return [(reading.sample, reading.missing) for reading in readings]


def _cell(value: str | int | None) -> Text:
    """A table cell shown as read (labels of corrupt groups may hold `[`, which is not rich markup here)."""
    return Text("—" if value is None else str(value))


def _row(sample: MeterSample, missing: dict[str, str]) -> dict[str, object]:
    return {
        "meter": sample.meter,
        "import_wh": sample.import_wh,
        "export_wh": sample.export_wh,
        "rejected": list(sample.rejected),
        "missing": missing,
    }
