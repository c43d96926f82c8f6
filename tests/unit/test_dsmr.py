"""DSMR P1: the example telegrams give exact Wh, a CRC failure gives nothing, and framing survives a stream."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from daisee.cli.app import DaiseeGroup
from daisee.cli.meter import meter
from daisee.gateways import MeterSample
from daisee.gateways.dsmr import DsmrDecoder, decode_stream, telegram_sample

CAPTURES = Path(__file__).parents[1] / "fixtures" / "meters" / "dsmr"
NAMES = ("v5", "v4_2", "fluvius_v171", "unpadded_crc", "v2_2")
TELEGRAM = {name: (CAPTURES / f"{name}.txt").read_bytes() for name in NAMES}
WITH_CRC = ("v5", "v4_2", "fluvius_v171", "unpadded_crc")

# (import Wh, export Wh, equipment identifier) read by hand from each telegram.
EXPECTED = {
    # 1-0:1.8.1(000004.426*kWh) 1-0:1.8.2(000002.399*kWh) 1-0:2.8.1(000002.444*kWh) 1-0:2.8.2(000000.000*kWh)
    "v5": (4426 + 2399, 2444 + 0, "4B384547303034303436333935353037"),
    # 1-0:1.8.1(001581.123*kWh) 1-0:1.8.2(001435.706*kWh), nothing exported
    "v4_2": (1581123 + 1435706, 0, "3960221976967177082151037881335713"),
    # 1-0:1.8.1(000000.034*kWh) 1-0:1.8.2(000015.758*kWh) 1-0:2.8.1(000000.000*kWh) 1-0:2.8.2(000000.011*kWh)
    "fluvius_v171": (34 + 15758, 0 + 11, "3153414733313031303231363035"),
    # A heat meter (Warmtelink, GJ): no electricity register at all.
    "unpadded_crc": (None, None, "ADC3100000158491"),
    # Every register is 00001.001 kWh.
    "v2_2": (1001 + 1001, 1001 + 1001, "00000000000000"),
}


@pytest.mark.parametrize("name", NAMES)
def test_each_example_telegram_gives_its_indices_in_exact_wh(name: str) -> None:
    (telegram,) = decode_stream(TELEGRAM[name])

    imported, exported, meter_id = EXPECTED[name]
    assert telegram_sample(telegram, 7.0) == MeterSample(7.0, imported, exported, meter_id, ())


def test_fluvius_identifier_is_the_electricity_meters_not_the_gas_meters() -> None:
    (telegram,) = decode_stream(TELEGRAM["fluvius_v171"])

    # The telegram also carries 0-1:96.1.1 and 0-2:96.1.1 for its M-Bus gas meters.
    assert telegram_sample(telegram, 0.0).meter == "3153414733313031303231363035"


def test_registers_with_more_than_three_decimals_are_converted_exactly_or_not_at_all() -> None:
    base = TELEGRAM["v2_2"].decode()
    exact = base.replace("1-0:1.8.1(00001.001*kWh)", "1-0:1.8.1(123456789.123*kWh)")
    inexact = base.replace("1-0:1.8.1(00001.001*kWh)", "1-0:1.8.1(00001.0015*kWh)")

    assert telegram_sample(exact, 0.0).import_wh == 123456789123 + 1001  # no float rounding on the way
    assert telegram_sample(inexact, 0.0).import_wh is None


@pytest.mark.parametrize(
    "register",
    [
        "()",
        "(00001.001)",
        "(00001.001*Wh)",
        "(NaN*kWh)",
        "(Infinity*kWh)",
        "(-1.000*kWh)",
        f"({2**64 // 1000}.616*kWh)",
    ],
)
def test_a_register_that_is_not_a_reading_in_kwh_gives_no_import(register: str) -> None:
    odd = TELEGRAM["v2_2"].decode().replace("1-0:1.8.1(00001.001*kWh)", f"1-0:1.8.1{register}")

    assert telegram_sample(odd, 0.0).import_wh is None
    assert telegram_sample(odd, 0.0).export_wh == 2002


def test_a_telegram_missing_tariff_2_gives_no_import() -> None:
    base = TELEGRAM["v2_2"].decode()
    truncated = base.replace("1-0:1.8.2(00001.001*kWh)\r\n", "")

    assert telegram_sample(truncated, 0.0).import_wh is None
    assert telegram_sample(truncated, 0.0).export_wh == 2002


@pytest.mark.parametrize("name", WITH_CRC)
def test_a_corrupt_byte_is_rejected_by_the_crc(name: str) -> None:
    sent = TELEGRAM[name]
    at = sent.index(b"\r\n") + 4  # inside the first object line
    corrupt = sent[:at] + bytes([sent[at] ^ 0x04]) + sent[at + 1 :]

    (telegram,) = decode_stream(corrupt)
    assert telegram_sample(telegram, 0.0) == MeterSample(0.0, None, None, None, ("CRC",))


@pytest.mark.parametrize("name", WITH_CRC)
def test_a_bit_error_on_any_byte_never_gets_past_the_crc(name: str) -> None:
    sent = TELEGRAM[name]
    refused = MeterSample(0.0, None, None, None, ("CRC",))

    for at in range(len(sent)):
        bit = 1 << (at % 7)  # each byte once, the flipped bit cycling (bit 7 is stripped as a parity bit)
        corrupt = sent[:at] + bytes([sent[at] ^ bit]) + sent[at + 1 :]
        samples = [telegram_sample(t, 0.0) for t in decode_stream(corrupt)]
        assert all(s == refused for s in samples), (at, bit, samples)


@given(data=st.data(), name=st.sampled_from(WITH_CRC), byte=st.integers(0, 255))
def test_one_corrupt_byte_never_gives_a_wrong_index(data: st.DataObject, name: str, byte: int) -> None:
    sent = TELEGRAM[name]
    at = data.draw(st.integers(0, len(sent) - 1))
    truth = telegram_sample(decode_stream(sent)[0], 0.0)

    for telegram in decode_stream(sent[:at] + bytes([byte]) + sent[at + 1 :]):
        sample = telegram_sample(telegram, 0.0)
        assert sample.import_wh in (truth.import_wh, None)
        assert sample.export_wh in (truth.export_wh, None)
        assert sample.meter in (truth.meter, None)


def test_a_malformed_register_in_a_telegram_without_crc_gives_nothing() -> None:
    corrupt = TELEGRAM["v2_2"].decode().replace("1-0:1.8.2(00001.001*kWh)", "1-0:1.8.2(00001.001*kWh")

    assert telegram_sample(corrupt, 0.0) == MeterSample(0.0, None, None, None, ("PARSE",))


def test_a_dsmr4_telegram_that_lost_its_crc_is_refused() -> None:
    # A bit error can end a telegram early with a bare '!': the version line says it should carry a CRC.
    sent = TELEGRAM["v5"].decode()
    cut = sent[: sent.index("1-0:1.8.2")] + "!\r\n"

    (telegram,) = decode_stream(cut.encode())
    assert telegram_sample(telegram, 0.0).rejected == ("CRC",)


def test_a_stream_gives_every_complete_telegram_and_skips_a_partial_first_one() -> None:
    stream = TELEGRAM["v4_2"][300:] + TELEGRAM["v5"] + b"noise" + TELEGRAM["fluvius_v171"] + TELEGRAM["v5"][:200]

    samples = [telegram_sample(t, 0.0) for t in decode_stream(stream)]
    assert [s.import_wh for s in samples] == [6825, 15792]


@given(cuts=st.lists(st.integers(0, 3000), max_size=30))
def test_framing_does_not_depend_on_how_the_stream_is_chunked(cuts: list[int]) -> None:
    stream = b"".join(TELEGRAM[name] for name in NAMES)
    decoder = DsmrDecoder()
    bounds = [0, *sorted(min(c, len(stream)) for c in cuts), len(stream)]
    telegrams = [t for i in range(len(bounds) - 1) for t in decoder.feed(stream[bounds[i] : bounds[i + 1]])]

    assert telegrams == decode_stream(stream)
    assert len(telegrams) == len(NAMES)


def test_parity_bits_from_a_7e1_line_read_as_8n1_are_stripped() -> None:
    sent = TELEGRAM["v2_2"]
    with_parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in sent)

    assert decode_stream(with_parity) == decode_stream(sent)


def test_noise_without_a_telegram_does_not_pile_up() -> None:
    decoder = DsmrDecoder()
    for _ in range(100):
        assert decoder.feed(b"/" + b"x" * 1000) == []
    assert decoder.feed(TELEGRAM["v5"]) == decode_stream(TELEGRAM["v5"])


# --- the CLI ------------------------------------------------------------------------------------------------


@click.group(cls=DaiseeGroup)
def daisee() -> None:
    """The meter group under the real error handling, until app.py registers it."""


daisee.add_command(meter)


def test_meter_parse_prints_one_json_line_per_telegram(tmp_path: Path) -> None:
    capture = tmp_path / "p1.bin"
    capture.write_bytes(TELEGRAM["v5"] + TELEGRAM["v4_2"] + TELEGRAM["v5"].replace(b"4.426", b"4.427"))

    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "dsmr", "--json", str(capture)])

    assert outcome.exit_code == 0, outcome.output
    assert [json.loads(line) for line in outcome.stdout.splitlines()] == [
        {"meter": "4B384547303034303436333935353037", "import_wh": 6825, "export_wh": 2444, "rejected": []},
        {"meter": "3960221976967177082151037881335713", "import_wh": 3016829, "export_wh": 0, "rejected": []},
        {"meter": None, "import_wh": None, "export_wh": None, "rejected": ["CRC"]},
    ]


def test_meter_parse_of_a_file_without_telegram_is_one_error_line(tmp_path: Path) -> None:
    capture = tmp_path / "p1.bin"
    capture.write_bytes(b"/ISk5 but never finished\r\n")

    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "dsmr", str(capture)])

    assert outcome.exit_code == 1
    assert outcome.stderr.strip().splitlines() == [
        f"error: no complete DSMR telegram in {capture}: is it a dsmr capture, or try the other --format"
    ]
