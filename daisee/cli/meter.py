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

    Prints the meter address, the import and export indices in Wh (null when absent or corrupt) and what
    failed its checksum: one JSON object per line with --json.
    """
    samples = _samples(source, mode, _read(file))
    if not samples:
        what = "TIC frame" if source == "tic" else "DSMR telegram"
        raise DaiseeError(f"no complete {what} in {file}: is it a {source} capture, or try the other --format")
    if as_json:
        for sample in samples:
            click.echo(json.dumps(_row(sample)))
        return
    table = Table("#", "meter", "import (Wh)", "export (Wh)", "rejected")
    for number, s in enumerate(samples, 1):
        table.add_row(str(number), _cell(s.meter), _cell(s.import_wh), _cell(s.export_wh), _cell(" ".join(s.rejected)))
    console.print(table)


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise DaiseeError(f"{file}: no such file: give the path of a capture") from None
    except OSError as exc:
        raise DaiseeError(f"cannot read {file}: {exc.strerror or exc}") from None


def _samples(source: Literal["tic", "dsmr"], mode: tic.ModeChoice, data: bytes) -> list[MeterSample]:
    now = time.time()
    if source == "tic":
        return [tic.frame_sample(frame, now) for frame in tic.decode_stream(data, mode)]
    from daisee.gateways import dsmr  # dsmr-parser pulls in cryptography: only load it when asked

    # A malformed line already shows as rejected PARSE: the library's traceback would only add noise.
    logging.getLogger("dsmr_parser").setLevel(logging.CRITICAL)
    return [dsmr.telegram_sample(telegram, now) for telegram in dsmr.decode_stream(data)]


def _cell(value: str | int | None) -> Text:
    """A table cell shown as read (labels of corrupt groups may hold `[`, which is not rich markup here)."""
    return Text("—" if value is None else str(value))


def _row(sample: MeterSample) -> dict[str, str | int | list[str] | None]:
    return {
        "meter": sample.meter,
        "import_wh": sample.import_wh,
        "export_wh": sample.export_wh,
        "rejected": list(sample.rejected),
    }
