"""CSV load-curve replay and the simulated meter: exact indices, one-line errors, the demo's numbers."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from itertools import islice, pairwise
from pathlib import Path

import pytest

from daisee.demo import simulated_households
from daisee.domain import MeterKind
from daisee.errors import DaiseeError
from daisee.gateways import MeterSample
from daisee.gateways.csv_replay import CsvReplayGateway
from daisee.gateways.simulated import SimulatedGateway
from daisee.simulation import LOCAL_OFFSET_SECONDS, simulate

_WAIT_SECONDS = 10
SEED = 7
# Local midnight, 1 May 2024: a day with sunshine, so producers and prosumers export.
GENESIS = int(datetime(2024, 5, 1, tzinfo=timezone(timedelta(seconds=LOCAL_OFFSET_SECONDS))).timestamp())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "curve.csv"
    path.write_text(text, encoding="utf-8")
    return path


def values(samples: list[MeterSample]) -> list[tuple[float, int | None, int | None]]:
    return [(s.timestamp, s.import_wh, s.export_wh) for s in samples]


def test_replays_cumulative_indices_rounded_down(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timestamp,import_wh,export_wh\n"
        "2024-05-01T00:00:00+01:00,1000,50\n"
        "2024-05-01T00:15:00Z,1010.9,50.2\n"
        "1714523400,1020,61\n",
    )
    assert values(list(CsvReplayGateway(path).samples())) == [
        (1714518000.0, 1000, 50),
        (1714522500.0, 1010, 50),
        (1714523400.0, 1020, 61),
    ]


def test_integrates_mean_powers_exactly_over_the_steps_they_end(tmp_path: Path) -> None:
    # An Enedis-style load curve: `;`, a BOM, each power the mean over the 30 min before its timestamp.
    path = tmp_path / "curve.csv"
    path.write_text(
        "Timestamp;Import_W;Export_W\n"
        "2024-05-01T00:00:00+02:00;999;999\n"
        "2024-05-01T00:30:00+02:00;333;0\n"
        "2024-05-01T01:00:00+02:00;333;10.5\n"
        "2024-05-01T01:30:00+02:00;334;0\n",
        encoding="utf-8-sig",
    )
    samples = list(CsvReplayGateway(path).samples())
    assert [(s.import_wh, s.export_wh) for s in samples] == [(0, 0), (166, 0), (333, 5), (500, 5)]
    assert [b.timestamp - a.timestamp for a, b in pairwise(samples)] == [1800.0] * 3


def test_a_missing_column_reads_as_none(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,export_w\n0,3600\n10,3600\n")
    assert values(list(CsvReplayGateway(path).samples())) == [(0.0, None, 0), (10.0, None, 10)]


def test_replays_at_a_speed_factor_and_stops_on_close(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,import_wh\n0,1\n1,2\n2,3\n1000,4\n")
    gateway = CsvReplayGateway(path, speed=10)
    samples = gateway.samples()
    began = time.monotonic()
    assert [s.import_wh for s in islice(samples, 3)] == [1, 2, 3]
    assert time.monotonic() - began >= 0.2  # two 1 s steps at 10x
    threading.Timer(0.1, gateway.close).start()
    assert list(samples) == []  # the 100 s wait for the last row ends on close()
    assert time.monotonic() - began < _WAIT_SECONDS


@pytest.mark.parametrize(
    ("text", "line", "fix"),
    [
        ("time,import_wh\n0,1\n", 1, "give timestamp and either"),
        ("timestamp,import_wh,import_w\n0,1,1\n", 1, "give timestamp and either"),
        ("timestamp,imprt_wh\n0,1\n", 1, "give timestamp and either"),
        ("timestamp,import_wh,import_wh\n0,1,1\n", 1, "give timestamp and either"),
        ("timestamp\n0\n", 1, "give timestamp and either"),
        ("\n\ntimestamp,import_wh\n0,1\n0\n", 5, "1 fields under a header of 2"),
        ("timestamp;import_wh\n0;12,5\n", 2, "with a dot for decimals"),
        ("timestamp,import_wh\n0,1\n60,-1\n", 3, "not a number >= 0"),
        ("timestamp,import_wh\n0,NaN\n", 2, "not a number >= 0"),
        ("timestamp,import_w\n0,\n", 2, "not a number >= 0"),
        ("timestamp,import_wh\nyesterday,1\n", 2, "neither ISO 8601 nor unix seconds"),
        ("timestamp,import_wh\n2024-05-01T12:00:00,1\n", 2, "has no UTC offset: add one"),
        ("timestamp,import_wh\n0,1\n\n60,2\n60,3\n", 5, "is not after the previous row's"),
        ("timestamp,import_wh\n0,1e30\n", 2, "beyond a meter's range: check the units"),
    ],
)
def test_a_bad_row_is_a_one_line_error_naming_its_line(tmp_path: Path, text: str, line: int, fix: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DaiseeError, match=rf"^{path} line {line}: .*{fix}") as error:
        CsvReplayGateway(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "fix"),
    [("", "has no readings"), ("timestamp,import_wh\n\n", "has no readings"), (None, "cannot read the load curve")],
)
def test_an_unusable_file_is_a_one_line_error(tmp_path: Path, text: str | None, fix: str) -> None:
    path = tmp_path / "curve.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DaiseeError, match=fix) as error:
        CsvReplayGateway(path)
    assert "\n" not in str(error.value)


def test_rejects_a_speed_that_is_not_positive(tmp_path: Path) -> None:
    with pytest.raises(DaiseeError, match="give a positive factor"):
        CsvReplayGateway(write(tmp_path, "timestamp,import_wh\n0,1\n"), speed=0)


def test_simulated_meter_reads_what_the_demo_signs_at_every_interval_boundary() -> None:
    kinds = [household.kind for household in simulated_households(6, SEED)]
    intervals, per_interval = 96, 15
    traces = simulate(kinds, GENESIS, 900, intervals, SEED)
    for household, (kind, trace) in enumerate(zip(kinds, traces, strict=True)):
        gateway = SimulatedGateway(kind, SEED, household, GENESIS, step_seconds=60)
        samples = list(islice(gateway.samples(), intervals * per_interval + 1))
        boundaries = samples[::per_interval]
        assert [s.timestamp for s in boundaries] == [GENESIS + 900 * k for k in range(intervals + 1)]
        assert [s.import_wh for s in boundaries] == trace.imports
        assert [s.export_wh for s in boundaries] == trace.exports
        indices = [(s.import_wh or 0, s.export_wh or 0) for s in samples]
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in pairwise(indices))
    assert any(t.exports[-1] > t.exports[0] for t in traces)
    assert any(t.imports[-1] > t.imports[0] for t in traces)


def test_simulated_meter_is_deterministic_and_depends_on_seed_and_household() -> None:
    def first(seed: int, household: int) -> list[MeterSample]:
        return list(islice(SimulatedGateway(MeterKind.PROSUMER, seed, household, GENESIS).samples(), 200))

    assert first(SEED, 2) == first(SEED, 2)
    assert first(SEED, 2) != first(SEED, 5)
    assert first(SEED, 2) != first(SEED + 1, 2)


def test_simulated_meter_in_realtime_waits_for_the_clock_and_stops_on_close() -> None:
    now = int(time.time())
    gateway = SimulatedGateway(MeterKind.CONSUMER, SEED, 1, now - 120, step_seconds=60, realtime=True)
    samples = gateway.samples()
    assert [s.timestamp for s in islice(samples, 3)] == [now - 120, now - 60, now]  # past or due: at once
    threading.Timer(0.1, gateway.close).start()
    began = time.monotonic()
    assert list(samples) == []  # the next is a minute away; close() ends the wait
    assert time.monotonic() - began < _WAIT_SECONDS


@pytest.mark.parametrize(
    ("household", "step", "fix"), [(-1, 60, "from 0"), (0, 7, "a divisor of the 900 s interval"), (0, 0, "a divisor")]
)
def test_simulated_meter_rejects_a_bad_configuration(household: int, step: int, fix: str) -> None:
    with pytest.raises(DaiseeError, match=fix):
        SimulatedGateway(MeterKind.CONSUMER, SEED, household, GENESIS, step_seconds=step)
