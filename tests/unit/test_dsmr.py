"""DSMR P1 and its cousins: every example telegram gives exact Wh or says why not, a CRC failure gives
nothing, and framing survives a stream."""

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
from daisee.gateways.dsmr import DsmrDecoder, Reading, decode_stream, read_telegram

CAPTURES = Path(__file__).parents[1] / "fixtures" / "meters" / "dsmr"
WITH_CRC = ("v5", "v4_2", "fluvius_v171", "unpadded_crc", "smarty_lu", "kamstrup_se", "sagemcom_t210_wh")
NAMES = (*WITH_CRC, "v2_2", "easymeter_q3da_com1", "easymeter_q3db")
TELEGRAM = {name: (CAPTURES / f"{name}.txt").read_bytes() for name in NAMES}
NO_IDENTIFIER = "no equipment identifier (0-0:96.1.1, 0-0:42.0.0, 0-0:96.1.255, 1-0:0.0.0)"
REFUSED = dict.fromkeys(("import_wh", "export_wh", "meter"), "the telegram failed its CRC check")

# (import Wh, export Wh, equipment identifier, why a None is None) read by hand from each telegram.
EXPECTED: dict[str, tuple[int | None, int | None, str | None, dict[str, str]]] = {
    # 1-0:1.8.1(000004.426*kWh) 1-0:1.8.2(000002.399*kWh) 1-0:2.8.1(000002.444*kWh) 1-0:2.8.2(000000.000*kWh)
    "v5": (4426 + 2399, 2444 + 0, "4B384547303034303436333935353037", {}),
    # 1-0:1.8.1(001581.123*kWh) 1-0:1.8.2(001435.706*kWh), nothing exported
    "v4_2": (1581123 + 1435706, 0, "3960221976967177082151037881335713", {}),
    # 1-0:1.8.1(000000.034*kWh) 1-0:1.8.2(000015.758*kWh) 1-0:2.8.1(000000.000*kWh) 1-0:2.8.2(000000.011*kWh)
    "fluvius_v171": (34 + 15758, 0 + 11, "3153414733313031303231363035", {}),
    # A heat meter (Warmtelink, GJ): no electricity register at all.
    "unpadded_crc": (
        None,
        None,
        "ADC3100000158491",
        {
            "import_wh": "no 1-0:1.8.0 register, nor 1-0:1.8.1 and 1-0:1.8.2",
            "export_wh": "no 1-0:2.8.0 register, nor 1-0:2.8.1 and 1-0:2.8.2",
        },
    ),
    # Totals only: 1-0:1.8.0(004113.552*kWh) 1-0:2.8.0(002874.109*kWh), identifier on 0-0:42.0.0.
    "smarty_lu": (4113552, 2874109, "53414731303330373030303839303637", {}),
    # Totals only, 1-0:1.8.0(00018213.440*kWh) 1-0:2.8.0(00004127.902*kWh), and no identifier line.
    "kamstrup_se": (18213440, 4127902, None, {"meter": NO_IDENTIFIER}),
    # Wh: 1-0:1.8.0(012345678*Wh) (= 1.8.1 + 1.8.2), 1-0:2.8.0(004567890*Wh) (= 2.8.1 + 2.8.2).
    "sagemcom_t210_wh": (12345678, 4567890, None, {"meter": NO_IDENTIFIER}),
    # Every register is 00001.001 kWh.
    "v2_2": (1001 + 1001, 1001 + 1001, "00000000000000", {}),
    # One-way: 1-0:1.8.0*255(00006543.2109876*kWh), no export register; serial on 0-0:96.1.255.
    "easymeter_q3da_com1": (
        6543210,
        None,
        "1ESY1160327685",
        {"export_wh": "no 1-0:2.8.0 register, nor 1-0:2.8.1 and 1-0:2.8.2"},
    ),
    # 1-0:1.8.0*255(00052185.7825309*kWh) 1-0:2.8.0*255(00019949.3221493*kWh)
    "easymeter_q3db": (52185782, 19949322, "1ESY1313002565", {}),
}


def read(telegram: str | bytes) -> Reading:
    """The reading of a telegram given whole, as text or as the bytes of a capture."""
    text = telegram.decode("latin-1") if isinstance(telegram, bytes) else telegram
    return read_telegram(text, 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_each_example_telegram_gives_its_indices_in_exact_wh_or_why_not(name: str) -> None:
    (telegram,) = decode_stream(TELEGRAM[name])

    imported, exported, meter_id, missing = EXPECTED[name]
    assert read_telegram(telegram, 7.0) == Reading(MeterSample(7.0, imported, exported, meter_id, ()), missing)


def test_fluvius_identifier_is_the_electricity_meters_not_the_gas_meters() -> None:
    # The telegram also carries 0-1:96.1.1 and 0-2:96.1.1 for its M-Bus gas meters.
    assert read(TELEGRAM["fluvius_v171"]).sample.meter == "3153414733313031303231363035"


def test_a_total_register_is_read_instead_of_the_tariffs() -> None:
    with_total = TELEGRAM["v2_2"].decode().replace("1-0:1.8.1", "1-0:1.8.0(00005.000*kWh)\r\n1-0:1.8.1")

    assert read(with_total).sample.import_wh == 5000  # not 1.8.1 + 1.8.2 = 2002
    assert read(with_total).sample.export_wh == 2002


def test_a_total_in_wh_is_read_as_wh() -> None:
    base = TELEGRAM["v2_2"].decode()
    in_wh = base.replace("1-0:2.8.1(00001.001*kWh)", "1-0:2.8.0(00012345678*Wh)\r\n1-0:2.8.1(00001.001*kWh)")

    assert read(in_wh).sample.export_wh == 12345678


@pytest.mark.parametrize(
    ("register", "wh"),
    [
        ("123456789.123*kWh", 123456789123),  # no float rounding on the way
        ("00001.0015*kWh", 1001),
        ("00001.0019999*kWh", 1001),
        ("00001.001*Wh", 1),
    ],
)
def test_digits_below_the_wh_are_dropped_exactly(register: str, wh: int) -> None:
    finer = TELEGRAM["v2_2"].decode().replace("1-0:1.8.1(00001.001*kWh)", f"1-0:1.8.1({register})")

    assert read(finer).sample.import_wh == wh + 1001


@pytest.mark.parametrize(
    ("register", "why"),
    [
        ("()", "1-0:1.8.1 is empty"),
        ("(00001.001)", "1-0:1.8.1 is in no unit, not kWh or Wh"),
        ("(00001.001*kvarh)", "1-0:1.8.1 is in kvarh, not kWh or Wh"),
        ("(NaN*kWh)", "1-0:1.8.1 holds NaN, not an energy"),
        ("(Infinity*kWh)", "1-0:1.8.1 holds Infinity, not an energy"),
        ("(-1.000*kWh)", "1-0:1.8.1 holds -1.000, not an energy"),
        (f"({2**64 // 1000}.616*kWh)", f"{2**64 + 1001} Wh is beyond a 64-bit index: not a reading"),
    ],
)
def test_a_register_that_is_not_a_reading_gives_no_import_and_says_why(register: str, why: str) -> None:
    odd = TELEGRAM["v2_2"].decode().replace("1-0:1.8.1(00001.001*kWh)", f"1-0:1.8.1{register}")

    assert read(odd).sample.import_wh is None
    assert read(odd).sample.export_wh == 2002
    assert read(odd).missing == {"import_wh": why}


def test_a_telegram_missing_tariff_2_and_a_total_gives_no_import_and_names_both() -> None:
    truncated = TELEGRAM["v2_2"].decode().replace("1-0:1.8.2(00001.001*kWh)\r\n", "")

    assert read(truncated).sample.import_wh is None
    assert read(truncated).sample.export_wh == 2002
    assert read(truncated).missing == {"import_wh": "no 1-0:1.8.0 register, nor 1-0:1.8.2"}


@pytest.mark.parametrize("name", WITH_CRC)
def test_a_corrupt_byte_is_rejected_by_the_crc(name: str) -> None:
    sent = TELEGRAM[name]
    at = sent.index(b"\r\n") + 4  # inside the first object line
    corrupt = sent[:at] + bytes([sent[at] ^ 0x04]) + sent[at + 1 :]

    (telegram,) = decode_stream(corrupt)
    assert read(telegram) == Reading(MeterSample(0.0, None, None, None, ("CRC",)), REFUSED)


@pytest.mark.parametrize("name", WITH_CRC)
def test_a_bit_error_on_any_byte_never_gets_past_the_crc(name: str) -> None:
    sent = TELEGRAM[name]
    refused = MeterSample(0.0, None, None, None, ("CRC",))

    for at in range(len(sent)):
        bit = 1 << (at % 7)  # each byte once, the flipped bit cycling (bit 7 is stripped as a parity bit)
        corrupt = sent[:at] + bytes([sent[at] ^ bit]) + sent[at + 1 :]
        samples = [read(t).sample for t in decode_stream(corrupt)]
        assert all(s == refused for s in samples), (at, bit, samples)


@given(data=st.data(), name=st.sampled_from(WITH_CRC), byte=st.integers(0, 255))
def test_one_corrupt_byte_never_gives_a_wrong_index(data: st.DataObject, name: str, byte: int) -> None:
    sent = TELEGRAM[name]
    at = data.draw(st.integers(0, len(sent) - 1))
    truth = read(sent).sample

    for telegram in decode_stream(sent[:at] + bytes([byte]) + sent[at + 1 :]):
        sample = read(telegram).sample
        assert sample.import_wh in (truth.import_wh, None)
        assert sample.export_wh in (truth.export_wh, None)
        assert sample.meter in (truth.meter, None)


@pytest.mark.parametrize(
    ("name", "line"), [("v2_2", "1-0:1.8.2(00001.001*kWh)"), ("easymeter_q3db", "1-0:2.8.0*255(00019949.3221493*kWh)")]
)
def test_a_malformed_register_in_a_telegram_without_crc_gives_nothing(name: str, line: str) -> None:
    corrupt = TELEGRAM[name].decode().replace(line, line[:-1])

    assert read(corrupt) == Reading(
        MeterSample(0.0, None, None, None, ("PARSE",)),
        dict.fromkeys(("import_wh", "export_wh", "meter"), "a register line of the telegram is malformed"),
    )


def test_a_dsmr4_telegram_that_lost_its_crc_is_refused() -> None:
    # A bit error can end a telegram early with a bare '!': the version line says it should carry a CRC.
    sent = TELEGRAM["v5"].decode()
    cut = sent[: sent.index("1-0:1.8.2")] + "!\r\n"

    (telegram,) = decode_stream(cut.encode())
    assert read(telegram).sample.rejected == ("CRC",)


def test_a_stream_gives_every_complete_telegram_and_skips_a_partial_first_one() -> None:
    stream = TELEGRAM["v4_2"][300:] + TELEGRAM["v5"] + b"noise" + TELEGRAM["fluvius_v171"] + TELEGRAM["v5"][:200]

    assert [read(t).sample.import_wh for t in decode_stream(stream)] == [6825, 15792]


def test_a_com1_gateways_lines_after_each_easymeter_telegram_are_skipped() -> None:
    # Once a second; after its bare '!' the gateway adds a counter line and an ID line, or 0xFF filler.
    first = TELEGRAM["easymeter_q3da_com1"]
    second = first.replace(b"00006543.2109876", b"00006543.2119876").replace(b"DE0000", b"\xff\xff\xff")

    assert [read(t).sample.import_wh for t in decode_stream(first + second)] == [6543210, 6543211]


@given(cuts=st.lists(st.integers(0, 6000), max_size=30))
def test_framing_does_not_depend_on_how_the_stream_is_chunked(cuts: list[int]) -> None:
    stream = b"".join(TELEGRAM[name] for name in NAMES)
    decoder = DsmrDecoder()
    bounds = [0, *sorted(min(c, len(stream)) for c in cuts), len(stream)]
    telegrams = [t for i in range(len(bounds) - 1) for t in decoder.feed(stream[bounds[i] : bounds[i + 1]])]

    assert telegrams == decode_stream(stream)
    assert len(telegrams) == len(NAMES)


@pytest.mark.parametrize("name", ["v2_2", "easymeter_q3db"])  # both sent 7E1 (DSMR 2.2, EasyMeter's D0 port)
def test_parity_bits_from_a_7e1_line_read_as_8n1_are_stripped(name: str) -> None:
    sent = TELEGRAM[name]
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


def parse(*args: str) -> list[dict[str, object]]:
    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "dsmr", "--json", *args])
    assert outcome.exit_code == 0, outcome.output
    return [json.loads(line) for line in outcome.stdout.splitlines()]


def test_meter_parse_prints_one_json_line_per_telegram(tmp_path: Path) -> None:
    capture = tmp_path / "p1.bin"
    capture.write_bytes(TELEGRAM["v5"] + TELEGRAM["v4_2"] + TELEGRAM["v5"].replace(b"4.426", b"4.427"))

    assert parse(str(capture)) == [
        {
            "meter": "4B384547303034303436333935353037",
            "import_wh": 6825,
            "export_wh": 2444,
            "rejected": [],
            "missing": {},
        },
        {
            "meter": "3960221976967177082151037881335713",
            "import_wh": 3016829,
            "export_wh": 0,
            "rejected": [],
            "missing": {},
        },
        {"meter": None, "import_wh": None, "export_wh": None, "rejected": ["CRC"], "missing": REFUSED},
    ]


@pytest.mark.parametrize(
    "name", ["smarty_lu", "kamstrup_se", "sagemcom_t210_wh", "easymeter_q3da_com1", "unpadded_crc"]
)
def test_meter_parse_gives_each_null_with_its_reason(name: str) -> None:
    imported, exported, meter_id, missing = EXPECTED[name]

    (row,) = parse(str(CAPTURES / f"{name}.txt"))
    assert row == {"meter": meter_id, "import_wh": imported, "export_wh": exported, "rejected": [], "missing": missing}
    assert {field for field in ("meter", "import_wh", "export_wh") if row[field] is None} == set(missing)


def test_meter_parse_shows_the_reasons_in_its_table() -> None:
    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "dsmr", str(CAPTURES / "kamstrup_se.txt")])

    assert outcome.exit_code == 0, outcome.output
    assert "18213440" in outcome.stdout
    assert "no equipment" in outcome.stdout


def test_meter_parse_of_a_capture_whose_lines_lost_their_cr_says_so_and_how_to_fix_it(tmp_path: Path) -> None:
    capture = tmp_path / "p1.txt"
    capture.write_bytes((CAPTURES / "v5_lf_only.txt").read_bytes())

    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "dsmr", str(capture)])

    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    assert outcome.stderr.strip().splitlines() == [
        f"error: the telegrams in {capture} end their lines in LF instead of CR LF (a text tool rewrote the capture): "
        f"capture the raw bytes again, or restore the CR LF with `unix2dos {capture}`"
    ]
    capture.write_bytes(capture.read_bytes().replace(b"\n", b"\r\n"))  # what unix2dos does
    assert parse(str(capture))[0]["import_wh"] == 6825


@pytest.mark.parametrize(
    "content",
    [b"/ISk5 but never finished\r\n", (CAPTURES.parent / "tic" / "standard_stream_raw.txt").read_bytes()],
)
def test_meter_parse_of_a_file_without_telegram_is_one_error_line(tmp_path: Path, content: bytes) -> None:
    capture = tmp_path / "p1.bin"
    capture.write_bytes(content)

    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "dsmr", str(capture)])

    assert outcome.exit_code == 1
    assert outcome.stderr.strip().splitlines() == [
        f"error: no complete DSMR telegram in {capture}: is it a dsmr capture, or try the other --format"
    ]
