"""Linky TIC: the real captures decode to the right indices, corrupt groups are refused, and no single bad byte
ever turns into a wrong index."""

from __future__ import annotations

import json
import string
from itertools import pairwise
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import assume, given
from hypothesis import strategies as st

from daisee.cli.app import DaiseeGroup
from daisee.cli.meter import meter
from daisee.gateways.tic import (
    EOT,
    NUMERIC_LABELS,
    Frame,
    Group,
    Mode,
    TicDecoder,
    checksum,
    decode_stream,
    encode_frame,
    encode_group,
    frame_sample,
    parse_group,
)

CAPTURES = Path(__file__).parents[1] / "fixtures" / "meters" / "tic"
STANDARD = (CAPTURES / "standard_stream_raw.txt").read_bytes()
HISTORIQUE_STREAM = (CAPTURES / "historique_stream_raw.txt").read_bytes()
HISTORIQUE_FRAMES = (CAPTURES / "historique_captured_frames.bin").read_bytes()
TEMPO = ("BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR")


def frames_in(data: bytes) -> list[bytes]:
    """The STX…ETX segments of a stream that are complete, as sent."""
    return [b"\x02" + part[: part.index(b"\x03") + 1] for part in data.split(b"\x02")[1:] if b"\x03" in part]


def with_parity_bit(data: bytes) -> bytes:
    """The bytes as an 8N1 adapter delivers a 7E1 line: the even-parity bit lands in bit 7."""
    return bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in data)


# --- the captures -------------------------------------------------------------------------------------------


def test_historique_stream_gives_its_one_complete_frame_as_the_sum_of_the_tempo_indices() -> None:
    frames = decode_stream(HISTORIQUE_STREAM)

    assert len(frames) == 1  # the stream starts mid-frame and ends mid-frame
    sample = frame_sample(frames[0], 0.0)
    # BBRHCJB 001478389 + BBRHPJB 001012295 + BBRHCJW 000134553 + BBRHPJW 000213701 + BBRHCJR 000025098
    # + BBRHPJR 000006010
    assert sample.import_wh == 1478389 + 1012295 + 134553 + 213701 + 25098 + 6010 == 2870046
    assert sample.export_wh is None
    assert sample.meter == "031961098836"
    assert sample.rejected == ()
    assert frames[0].mode == "historique"
    assert frames[0].get("OPTARIF") == Group("OPTARIF", "BBR(")


def test_historique_captured_frames_give_ten_samples_whose_blue_day_off_peak_index_moves() -> None:
    samples = [frame_sample(frame, 0.0) for frame in decode_stream(HISTORIQUE_FRAMES)]

    # Frame 1 by hand: 018328856 + 023739545 + 001466099 + 002132883 + 000860118 + 000844115 = 47371616.
    # Only BBRHCJB moves afterwards: 018328857, …860, …862, …865, …867, …869, …871, …873, …876.
    off_peak_blue = [18328856, 18328857, 18328860, 18328862, 18328865, 18328867, 18328869, 18328871, 18328873, 18328876]
    assert [s.import_wh for s in samples] == [i + 23739545 + 1466099 + 2132883 + 860118 + 844115 for i in off_peak_blue]
    assert samples[0].import_wh == 47371616
    assert {s.meter for s in samples} == {"021861348497"}
    assert all(s.export_wh is None and s.rejected == () for s in samples)


def test_standard_stream_gives_seven_frames_with_east_and_their_corrupt_groups_refused() -> None:
    frames = decode_stream(STANDARD)

    assert [f.mode for f in frames] == ["standard"] * 7
    samples = [frame_sample(f, 0.0) for f in frames]
    assert [s.import_wh for s in samples] == [21849106, 21849107, 21849107, 21849108, 21849108, 21849109, 21849109]
    assert {s.meter for s in samples} == {"041776199277"}
    assert all(s.export_wh is None for s in samples)  # a consumer: no EAIT
    # The bit errors inside complete frames, as read (two labels were hit themselves: CCASN, PCOUP).
    # EASD01 and EASF06 kept their checksum but their CR became a form feed (0x0D -> 0x0C).
    assert [s.rejected for s in samples] == [
        (),
        ("EASD01",),
        ("EASF06", "EASF09", "EASD02"),
        ("CC@SN-1", "NTARF"),
        ("EASF07", "SMAXSN2-1", "FPM1"),
        ("@COUP", "SINSTS1", "CC@SN"),
        (),
    ]
    assert sum(len(s.rejected) for s in samples) == 12
    # Cross-check of EAST by hand: the supplier tariff indices of frame 1 add up to it.
    first = frames[0]
    assert sum(int(g.data) for g in first.groups if g.label.startswith("EASF")) == 21849106
    assert first.get("EAST") == Group("EAST", "021849106")


def test_standard_groups_keep_horodates_spaces_and_empty_data() -> None:
    first = decode_stream(STANDARD)[0]

    assert first.get("DATE") == Group("DATE", "", "H200214230804")
    assert first.get("SMAXSN-1") == Group("SMAXSN-1", "09562", "H200213085118")  # its checksum is a space
    assert first.get("DPM1") == Group("DPM1", "00", " 200214060000")  # a horodate whose season is a space
    assert first.get("NGTF") == Group("NGTF", "     TEMPO      ")
    assert first.get("MSG1") == Group("MSG1", "PAS DE          MESSAGE         ")
    assert first.get("PJOURF+1") is not None
    assert len(first.groups) == 55


def test_the_readmes_thirteen_checksum_failures_are_the_cr_terminated_groups_that_fail() -> None:
    lines = STANDARD.replace(b"\x02", b"").replace(b"\x03", b"").split(b"\n")
    # The first line is the tail of a group cut by the start of the capture, not a group.
    failed = [line for line in lines[1:] if line.endswith(b"\r") and parse_group("standard", line[:-1]) is None]

    labels = [line.split(b"\t")[0].decode() for line in failed]
    assert labels == [
        "EAST  0021849106",  # in the partial first frame: the decoder never gets that far
        "EASF09",
        "EASD02",
        "CC@SN-1",
        "NTARF",
        "EASF07",
        "SMAXSN2-1",
        "FPM1",
        "@COUP",
        "SINSTS1",
        "CC@SN",
        "SMAXSN1",  # these two are in the last frame, cut by the end of the capture
        "NTARF",
    ]


def test_a_frame_whose_east_failed_its_checksum_gives_no_import() -> None:
    # The capture's partial first frame holds the only corrupt EAST: give it a start to make it a frame.
    frame = decode_stream(b"\x02" + STANDARD)[0]

    assert "EAST" in " ".join(frame.rejected)
    assert frame.get("EAST") is None
    assert frame_sample(frame, 0.0).import_wh is None
    assert frame.get("EASF01") == Group("EASF01", "004855593")


@pytest.mark.parametrize("label", TEMPO)
def test_a_historique_frame_with_one_corrupt_tariff_index_gives_no_import(label: str) -> None:
    frame = frames_in(HISTORIQUE_FRAMES)[0]
    at = frame.index(label.encode()) + len(label) + 5  # a digit of the index
    corrupt = frame[:at] + bytes([frame[at] ^ 0x01]) + frame[at + 1 :]

    (decoded,) = decode_stream(corrupt)
    assert decoded.rejected == (label,)
    assert frame_sample(decoded, 0.0).import_wh is None


def test_a_tariff_label_corrupted_beyond_recognition_still_gives_no_import() -> None:
    frame = frames_in(HISTORIQUE_FRAMES)[0].replace(b"BBRHPJW", b"BBRHPJ\x17")

    (decoded,) = decode_stream(frame)
    assert decoded.rejected == ("BBRHPJ?",)
    assert frame_sample(decoded, 0.0).import_wh is None


def test_an_index_beyond_what_the_chain_stores_is_not_a_reading() -> None:
    huge = str(2**64)
    standard = Frame("standard", (Group("EAST", huge), Group("EAIT", "000000042")))
    historique = Frame("historique", (Group("HCHC", huge), Group("HCHP", "000000001")))

    assert (frame_sample(standard, 0.0).import_wh, frame_sample(standard, 0.0).export_wh) == (None, 42)
    assert frame_sample(historique, 0.0).import_wh is None


def test_reencoding_every_intact_frame_gives_back_the_bytes_sent() -> None:
    intact = [
        (sent, frame)
        for capture in (HISTORIQUE_STREAM, HISTORIQUE_FRAMES, STANDARD)
        for sent in frames_in(capture)
        for frame in decode_stream(sent)
        if not frame.rejected
    ]

    assert len(intact) == 1 + 10 + 2
    for sent, frame in intact:
        assert encode_frame(frame.mode, frame.groups) == sent


# --- stream handling ----------------------------------------------------------------------------------------


def test_an_8n1_adapter_with_the_parity_bit_set_decodes_the_same_as_7e1() -> None:
    for capture in (HISTORIQUE_STREAM, HISTORIQUE_FRAMES, STANDARD):
        assert any(b & 0x80 for b in with_parity_bit(capture))
        assert decode_stream(with_parity_bit(capture)) == decode_stream(capture)


def test_a_partial_first_frame_and_a_frame_cut_by_eot_are_skipped() -> None:
    first, second, third = frames_in(HISTORIQUE_FRAMES)[:3]
    cut = second[: len(second) // 2] + bytes([EOT])
    stream = first[len(first) // 2 :] + cut + third

    assert decode_stream(stream) == decode_stream(third)


def test_a_frame_cut_by_a_new_start_is_skipped() -> None:
    first, second = frames_in(HISTORIQUE_FRAMES)[:2]

    assert decode_stream(first[:-40] + second) == decode_stream(second)


def test_forced_modes_refuse_the_other_modes_groups() -> None:
    assert decode_stream(HISTORIQUE_FRAMES, "standard") == []
    assert decode_stream(STANDARD, "historique") == []
    assert decode_stream(STANDARD, "standard") == decode_stream(STANDARD)


@given(cuts=st.lists(st.integers(0, len(STANDARD)), max_size=40))
def test_decoding_does_not_depend_on_how_the_stream_is_chunked(cuts: list[int]) -> None:
    decoder = TicDecoder()
    bounds = pairwise([0, *sorted(cuts), len(STANDARD)])
    frames = [frame for start, end in bounds for frame in decoder.feed(STANDARD[start:end])]

    assert frames == decode_stream(STANDARD)


def test_the_checksum_may_be_a_space() -> None:
    raw = b"SMAXSN-1\tH200213085118\t09562\t "
    assert checksum(raw[:-1]) == 0x20
    assert parse_group("standard", raw) == Group("SMAXSN-1", "09562", "H200213085118")


# --- properties: random frames ------------------------------------------------------------------------------

LABELS = st.text(string.ascii_uppercase + string.digits + "+-", min_size=1, max_size=8).filter(
    lambda label: label not in NUMERIC_LABELS
)
HORODATES = st.builds(lambda s, d: s + d, st.sampled_from("HEhe "), st.text(string.digits, min_size=12, max_size=12))
PRINTABLE = "".join(map(chr, range(0x20, 0x7F)))


def with_space_checksum(mode: Mode, group: Group) -> Group:
    """The group with one character added to its data so that its checksum is a space."""
    probe = encode_group(mode, Group(group.label, group.data + "\x00", group.horodate))[1:-2]
    summed = probe if mode == "standard" else probe[:-1]
    fix = -sum(summed) % 64
    fixed = Group(group.label, group.data + chr(fix + 64 if fix < 0x20 else fix), group.horodate)
    assert encode_group(mode, fixed)[-2] == 0x20
    return fixed


@st.composite
def groups(draw: st.DrawFn, mode: Mode) -> Group:
    if mode == "standard":
        group = Group(draw(LABELS), draw(st.text(PRINTABLE, max_size=20)), draw(st.none() | HORODATES))
    else:  # historique data has no spaces
        group = Group(draw(LABELS), draw(st.text(PRINTABLE[1:], min_size=1, max_size=12)))
    return with_space_checksum(mode, group) if draw(st.booleans()) else group


def indices(digits: int) -> st.SearchStrategy[str]:
    return st.text(string.digits, min_size=digits, max_size=digits)


@st.composite
def meter_frames(draw: st.DrawFn, mode: Mode) -> list[Group]:
    """A frame with a meter address, its energy indices and random other groups, shuffled."""
    others = draw(st.lists(groups(mode), max_size=6))
    if mode == "standard":
        known = [Group("ADSC", draw(indices(12))), Group("EAST", draw(indices(9)))]
        known += [Group("EAIT", draw(indices(9)))] if draw(st.booleans()) else []
    else:
        family = draw(st.sampled_from([("BASE",), ("HCHC", "HCHP"), ("EJPHN", "EJPHPM"), TEMPO]))
        known = [Group("ADCO", draw(indices(12)))] + [Group(label, draw(indices(9))) for label in family]
    return draw(st.permutations(known + others))


MODES = st.sampled_from(["historique", "standard"])


@given(data=st.data(), mode=MODES)
def test_random_frames_round_trip(data: st.DataObject, mode: Mode) -> None:
    sent = data.draw(st.lists(groups(mode), min_size=1, max_size=12))

    assert decode_stream(encode_frame(mode, sent)) == [Frame(mode, tuple(sent))]
    assert decode_stream(encode_frame(mode, sent), mode) == [Frame(mode, tuple(sent))]


@given(data=st.data(), mode=MODES)
def test_random_meter_frames_give_their_indices(data: st.DataObject, mode: Mode) -> None:
    sent = data.draw(meter_frames(mode))
    by_label = {g.label: int(g.data) for g in sent if g.label in NUMERIC_LABELS}

    (frame,) = decode_stream(encode_frame(mode, sent))
    sample = frame_sample(frame, 12.5)

    if mode == "standard":
        assert (sample.import_wh, sample.export_wh) == (by_label["EAST"], by_label.get("EAIT"))
    else:
        assert sample.import_wh == sum(v for k, v in by_label.items() if k != "ADCO")
        assert sample.export_wh is None
    assert sample.meter == next(g.data for g in sent if g.label in ("ADSC", "ADCO"))
    assert sample.timestamp == 12.5


def is_subsequence(part: tuple[Group, ...], whole: tuple[Group, ...]) -> bool:
    rest = iter(whole)
    return all(group in rest for group in part)


@given(data=st.data(), mode=MODES, byte=st.integers(0, 255))
def test_one_corrupt_byte_never_gives_a_wrong_index_or_address(data: st.DataObject, mode: Mode, byte: int) -> None:
    sent = data.draw(meter_frames(mode))
    wire = encode_frame(mode, sent)
    at = data.draw(st.integers(0, len(wire) - 1))
    truth = frame_sample(decode_stream(wire)[0], 0.0)

    decoded = decode_stream(wire[:at] + bytes([byte]) + wire[at + 1 :])

    assert len(decoded) <= 1
    for frame in decoded:
        sample = frame_sample(frame, 0.0)
        assert sample.import_wh in (truth.import_wh, None)
        assert sample.export_wh in (truth.export_wh, None)
        assert sample.meter in (truth.meter, None)


@given(data=st.data(), mode=MODES, byte=st.integers(0, 255))
def test_one_corrupt_byte_the_checksum_sees_is_never_accepted(data: st.DataObject, mode: Mode, byte: int) -> None:
    """Any change of a byte by other than a multiple of 64 (which a 6-bit sum cannot see) drops the group it
    hits, and only that: whatever is decoded is a subsequence of what was sent."""
    sent = data.draw(st.lists(groups(mode), min_size=1, max_size=8))
    wire = encode_frame(mode, sent)
    at = data.draw(st.integers(0, len(wire) - 1))
    assume(((byte & 0x7F) - wire[at]) % 64 != 0 and byte & 0x7F != 0x0A)

    decoded = decode_stream(wire[:at] + bytes([byte]) + wire[at + 1 :])

    assert len(decoded) <= 1
    for frame in decoded:
        assert is_subsequence(frame.groups, tuple(sent))
        assert frame.groups != tuple(sent) or wire[at] in (0x02, 0x0A)


def test_the_checksum_cannot_see_a_change_by_64_so_indices_must_be_digits() -> None:
    def shifted(label: str) -> bytes:
        raw = encode_group("standard", Group(label, "021849106"))[1:-1]
        return raw.replace(b"021849106", b"0218491p6")  # '0' + 64 = 'p': the same sum modulo 64

    assert shifted("EAST")[-1] == checksum(shifted("EAST")[:-1])
    assert parse_group("standard", shifted("EAST")) is None
    # Text data cannot be checked beyond the sum: such a group is read as it arrived.
    assert parse_group("standard", shifted("MSG1")) == Group("MSG1", "0218491p6")


# --- the CLI ------------------------------------------------------------------------------------------------


@click.group(cls=DaiseeGroup)
def daisee() -> None:
    """The meter group under the real error handling, until app.py registers it."""


daisee.add_command(meter)


def test_meter_parse_prints_one_json_line_per_frame() -> None:
    outcome = CliRunner().invoke(
        daisee, ["meter", "parse", "--format", "tic", "--json", str(CAPTURES / "standard_stream_raw.txt")]
    )

    assert outcome.exit_code == 0, outcome.output
    rows = [json.loads(line) for line in outcome.stdout.splitlines()]
    assert len(rows) == 7
    no_eait = "no valid EAIT group (sent in producer mode only)"
    assert rows[0] == {
        "meter": "041776199277",
        "import_wh": 21849106,
        "export_wh": None,
        "rejected": [],
        "missing": {"export_wh": no_eait},
    }
    assert rows[2] == {
        "meter": "041776199277",
        "import_wh": 21849107,
        "export_wh": None,
        "rejected": ["EASF06", "EASF09", "EASD02"],
        "missing": {"export_wh": f"{no_eait}; groups refused by their checksum: EASF06 EASF09 EASD02"},
    }


def test_meter_parse_says_why_a_historique_frame_has_no_export_and_a_corrupt_one_no_import(tmp_path: Path) -> None:
    intact = encode_frame("historique", [Group("ADCO", "031961098836"), Group("BASE", "002870046")])
    capture = tmp_path / "capture.bin"
    capture.write_bytes(intact + intact.replace(b"BASE 002870046", b"BASE 002870047"))

    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "tic", "--json", str(capture)])

    assert outcome.exit_code == 0, outcome.output
    no_export = {"export_wh": "historique mode has no export index"}
    tariffs = "no valid set of tariff indices (BASE, HCHC+HCHP, EJPHN+EJPHPM or BBRH…)"
    no_import = f"{tariffs}; groups refused by their checksum: BASE"
    assert [json.loads(line) for line in outcome.stdout.splitlines()] == [
        {"meter": "031961098836", "import_wh": 2870046, "export_wh": None, "rejected": [], "missing": no_export},
        {
            "meter": "031961098836",
            "import_wh": None,
            "export_wh": None,
            "rejected": ["BASE"],
            "missing": {"import_wh": no_import, **no_export},
        },
    ]


@pytest.mark.parametrize(
    ("capture", "forced", "found"),
    [("standard_stream_raw.txt", "historique", "standard"), ("historique_stream_raw.txt", "standard", "historique")],
)
def test_meter_parse_with_the_wrong_mode_forced_points_to_mode_auto(capture: str, forced: str, found: str) -> None:
    path = CAPTURES / capture

    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "tic", "--mode", forced, str(path)])

    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    assert outcome.stderr.strip().splitlines() == [
        f"error: no {forced} TIC frame in {path}: it holds {found} frames: use --mode auto"
    ]


def test_meter_parse_without_json_prints_a_table() -> None:
    outcome = CliRunner().invoke(
        daisee,
        ["meter", "parse", "--format", "tic", "--mode", "historique", str(CAPTURES / "historique_stream_raw.txt")],
    )

    assert outcome.exit_code == 0, outcome.output
    assert "031961098836" in outcome.stdout
    assert "2870046" in outcome.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "no complete TIC frame"),
        ((CAPTURES.parent / "dsmr" / "v5.txt").read_bytes(), "no complete TIC frame"),
    ],
)
def test_meter_parse_of_a_missing_or_frameless_file_is_one_error_line(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "capture.bin"
    if content is not None:
        path.write_bytes(content)

    outcome = CliRunner().invoke(daisee, ["meter", "parse", "--format", "tic", "--json", str(path)])

    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_a_corrupt_byte_read_as_stx_does_not_make_the_rest_of_a_group_a_group() -> None:
    """Found by the property above: STX in place of a digit starts a frame in the middle of a group whose tail
    (`000 TAB TAB B`) has a valid checksum; a group starts with LF, so that tail is no group."""
    sent = [Group("000", "00", "H000000000000"), Group("00000000", "0", None), Group("P", "", "E023777888000")]
    wire = encode_frame("standard", sent)
    corrupt = wire[:51] + b"\x02" + wire[52:]
    assert corrupt[51:] == b"\x02000\t\tB\r\x03"
    assert decode_stream(corrupt) == []
