"""The oracle's parts without a chain: outbox durability, interval sampling, configuration, flushing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eth_keys.datatypes import PrivateKey

from daisee.domain import RejectReason
from daisee.errors import DaiseeError
from daisee.gateways import MeterSample
from daisee.oracle.config import load_config
from daisee.oracle.outbox import CONFIRMED, COVERED, HELD, PENDING, REJECTED, SENT, Outbox
from daisee.oracle.runner import Oracle
from daisee.oracle.sampler import Sampler
from daisee.oracle.senders import RETRY, WAIT, Outcome, _after_rejection, _relay_rejection
from daisee.readings import LoopDomain, Reading, SignedReading

METER = b"\x42" * 32
KEY = PrivateKey(b"\x07" * 32)
DOMAIN = LoopDomain(31337, "0x" + "12" * 20)
GENESIS, LENGTH = 1_800_000_000, 900


def _signed(interval: int, imp: int = 100, exp: int = 0) -> SignedReading:
    return Reading(METER, interval, imp, exp).sign(KEY, DOMAIN)


# --- outbox -------------------------------------------------------------------------------


def test_outbox_keeps_one_row_per_meter_and_interval(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    assert outbox.add(_signed(3))
    assert not outbox.add(_signed(3, imp=999))  # a second signing of the same interval changes nothing
    assert [row.signed for row in outbox.rows()] == [_signed(3)]
    assert outbox.backlog() == 1


def test_outbox_survives_a_reopen_as_after_kill(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    first = Outbox(path)
    first.add(_signed(1))
    first.add(_signed(2))
    first.mark(_signed(1).reading, CONFIRMED)
    # no close(): the process died
    reopened = Outbox(path)
    assert [(r.signed.reading.interval, r.status) for r in reopened.rows()] == [(1, CONFIRMED), (2, PENDING)]
    assert reopened.due(now=1e12) == [_signed(2)]
    assert reopened.last_signed() == _signed(2).reading
    assert reopened.last_confirmed_interval() == 1


def test_outbox_backs_off_and_records_outcomes(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.add(_signed(5))
    reading = _signed(5).reading
    outbox.retry_later(reading, 60, "node unreachable")
    assert outbox.due(now=0) == []
    assert outbox.attempts(reading) == 1
    outbox.mark(reading, REJECTED, "BAD_SIGNATURE")
    assert outbox.backlog() == 0
    assert [(r.status, r.reason) for r in outbox.rows()] == [(REJECTED, "BAD_SIGNATURE")]


def test_a_corrupt_outbox_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DaiseeError, match=r"is unusable .*move it aside"):
        Outbox(path)


# --- sampler ------------------------------------------------------------------------------


def _sample(offset: float, imp: int | None, exp: int | None = 0) -> MeterSample:
    return MeterSample(GENESIS + offset, imp, exp)


def test_sampler_reads_each_interval_at_its_end() -> None:
    sampler = Sampler(METER, GENESIS, LENGTH)
    assert sampler.feed(_sample(100, 10)) is None  # interval 0 has not ended
    assert sampler.feed(_sample(LENGTH + 2, 50)) == Reading(METER, 0, 50, 0)
    assert sampler.feed(_sample(LENGTH + 30, 60)) is None  # interval 0 already read
    assert sampler.feed(_sample(2 * LENGTH + 1, 90, 5)) == Reading(METER, 1, 90, 5)


def test_sampler_reads_only_the_last_interval_after_a_gap() -> None:
    sampler = Sampler(METER, GENESIS, LENGTH, floor=Reading(METER, 0, 50, 0))
    assert sampler.feed(_sample(5 * LENGTH + 1, 400)) == Reading(METER, 4, 400, 0)


def test_sampler_counts_corrupt_samples_and_never_signs_them() -> None:
    sampler = Sampler(METER, GENESIS, LENGTH)
    assert sampler.feed(_sample(LENGTH + 1, None)) is None
    assert sampler.corrupt == 1
    assert sampler.feed(_sample(LENGTH + 5, 70)) == Reading(METER, 0, 70, 0)


def test_sampler_refuses_a_counter_that_went_backwards() -> None:
    sampler = Sampler(METER, GENESIS, LENGTH, floor=Reading(METER, 0, 5_000, 10))
    assert sampler.feed(_sample(2 * LENGTH + 1, 12)) is None
    assert "counter went backwards (import 5000 -> 12 Wh" in sampler.alerts[0]
    assert sampler.feed(_sample(2 * LENGTH + 9, 5_100, 10)) == Reading(METER, 1, 5_100, 10)


def test_sampler_keeps_the_export_index_when_the_meter_has_none() -> None:
    sampler = Sampler(METER, GENESIS, LENGTH, floor=Reading(METER, 0, 50, 7))
    assert sampler.feed(_sample(2 * LENGTH, 80, None)) == Reading(METER, 1, 80, 7)


# --- outcomes and flushing ----------------------------------------------------------------


WHAT_EACH_REJECTION_MEANS = {
    RejectReason.UNKNOWN_METER: REJECTED,
    RejectReason.BAD_SIGNATURE: REJECTED,
    RejectReason.METER_INACTIVE: REJECTED,
    RejectReason.NOT_YET_ACTIVE: HELD,  # the admission's notice runs: a later reading carries the energy
    RejectReason.STALE_INTERVAL: CONFIRMED,  # a re-send of a reading the chain has
    RejectReason.FUTURE_INTERVAL: WAIT,
    RejectReason.INTERVAL_FINALIZED: REJECTED,
    RejectReason.SETTLEMENT_BACKLOG: WAIT,
    RejectReason.INDEX_DECREASED: REJECTED,
    RejectReason.FLOW_NOT_ALLOWED: HELD,  # and an alert for the PMO
    RejectReason.ABOVE_METER_LIMIT: HELD,  # and an alert for the PMO
}


@pytest.mark.parametrize("reason", RejectReason, ids=lambda reason: reason.name)
def test_what_a_rejection_means_for_the_outbox(reason: RejectReason) -> None:
    outcome = _after_rejection(reason)
    assert outcome.status == WHAT_EACH_REJECTION_MEANS[reason]
    if outcome.status != CONFIRMED:
        assert outcome.reason == reason.name


@pytest.mark.parametrize("reason", RejectReason, ids=lambda reason: reason.name)
def test_a_relay_s_rejection_means_what_the_chain_s_does(reason: RejectReason) -> None:
    assert _relay_rejection(reason.name) == _after_rejection(reason)


def test_a_rejection_reason_the_oracle_does_not_know_is_final() -> None:
    assert _relay_rejection("SOMETHING_NEW") == Outcome(REJECTED, "SOMETHING_NEW")


class _Scripted:
    """A sender answering from a script: the chain's side is tested in tests/integration."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        self.sent: list[int] = []

    def send(self, readings: list[SignedReading]) -> dict[tuple[bytes, int], Outcome]:
        self.sent += [r.reading.interval for r in readings]
        return {(r.reading.meter_id, r.reading.interval): o for r, o in zip(readings, self.outcomes, strict=False)}


def test_flush_marks_each_reading_from_its_outcome(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    for t in (0, 1, 2, 3):
        outbox.add(_signed(t, imp=100 + t))
    sender = _Scripted(
        [Outcome(CONFIRMED), Outcome(REJECTED, "INDEX_DECREASED"), Outcome(RETRY, "down"), Outcome(SENT)]
    )
    oracle = Oracle(Sampler(METER, GENESIS, LENGTH), KEY, DOMAIN, outbox, sender)

    assert oracle.flush() == 1

    assert [(r.signed.reading.interval, r.status) for r in outbox.rows()] == [
        (0, CONFIRMED),
        (1, REJECTED),
        (2, PENDING),
        (3, SENT),
    ]
    assert outbox.alerts()[0][1:] == ("rejected", "interval 1: INDEX_DECREASED")
    assert outbox.due(now=1e12) == [_signed(2, imp=102), _signed(3, imp=103)]


def test_a_reading_over_the_meter_s_limits_is_held_and_the_pmo_told(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    for t in (0, 1, 2):
        outbox.add(_signed(t, imp=100 + t))
    sender = _Scripted([Outcome(HELD, "ABOVE_METER_LIMIT"), Outcome(HELD, "FLOW_NOT_ALLOWED"), Outcome(WAIT, "x")])
    oracle = Oracle(Sampler(METER, GENESIS, LENGTH), KEY, DOMAIN, outbox, sender)

    assert oracle.flush() == 0

    assert [(r.status, r.reason) for r in outbox.rows()] == [
        (HELD, "ABOVE_METER_LIMIT"),
        (HELD, "FLOW_NOT_ALLOWED"),
        (PENDING, "x"),
    ]
    assert [(kind, message) for _, kind, message in reversed(outbox.alerts())] == [
        (
            "meter-limits",
            "interval 0: ABOVE_METER_LIMIT: a wrong limit or a broken meter, tell the PMO "
            "(the next reading carries its energy if it fits the meter's limits)",
        ),
        (
            "meter-limits",
            "interval 1: FLOW_NOT_ALLOWED: a wrong limit or a broken meter, tell the PMO "
            "(the next reading carries its energy if it fits the meter's limits)",
        ),
    ]
    assert outbox.backlog() == 1  # held readings are not sent again, and the later ones do not wait for them
    assert outbox.due(now=1e12) == [_signed(2, imp=102)]


def test_a_held_reading_is_covered_by_the_next_one_the_chain_takes(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    for t in (0, 1, 2, 3):
        outbox.add(_signed(t, imp=100 + t))
    sender = _Scripted([Outcome(HELD, "NOT_YET_ACTIVE"), Outcome(HELD, "NOT_YET_ACTIVE"), Outcome(CONFIRMED)])
    oracle = Oracle(Sampler(METER, GENESIS, LENGTH), KEY, DOMAIN, outbox, sender)

    assert oracle.flush() == 1

    assert [(r.signed.reading.interval, r.status, r.reason) for r in outbox.rows()] == [
        (0, COVERED, "carried by interval 2"),
        (1, COVERED, "carried by interval 2"),
        (2, CONFIRMED, None),
        (3, PENDING, "no answer"),  # tried again later
    ]
    assert outbox.alerts() == []  # a meter waiting for its first interval is not a fault
    assert sender.sent == [0, 1, 2, 3]


def test_handle_signs_into_the_outbox_before_sending(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    oracle = Oracle(Sampler(METER, GENESIS, LENGTH), KEY, DOMAIN, outbox, _Scripted([]))
    oracle.handle(_sample(LENGTH + 1, 123, 4))
    [row] = outbox.rows()
    assert row.signed.reading == Reading(METER, 0, 123, 4)
    assert row.signed.verify(DOMAIN, KEY.public_key.to_checksum_address())


# --- configuration ------------------------------------------------------------------------

GOOD = """
[loop]
rpc = "http://127.0.0.1:8545"
chain_id = 31337
address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

[meter]
id = "house-12"
signer = "gateway"

[send]
mode = "direct"

[gateway]
kind = "tic"
port = "/dev/ttyUSB0"
"""


def test_reads_a_good_configuration(tmp_path: Path) -> None:
    path = tmp_path / "oracle.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert (config.chain_id, config.mode, config.signer) == (31337, "direct", "gateway")
    assert config.gateway == {"kind": "tic", "port": "/dev/ttyUSB0"}
    assert config.outbox == Path("~/.daisee/outbox.sqlite").expanduser()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.replace("[send]", "[sent]"), r"missing \[send\] section"),
        (lambda s: s.replace('mode = "direct"', 'mode = "pigeon"'), "mode 'pigeon' is unknown"),
        (lambda s: s.replace('mode = "direct"', 'mode = "relay"'), "relay mode needs `relay`"),
        (lambda s: s.replace("chain_id = 31337", 'chain_id = "31337"'), "`chain_id` must be a int"),
        (lambda s: s.replace('signer = "gateway"', ""), "missing `signer`"),
        (lambda s: s.replace('kind = "tic"', ""), "missing `kind`"),
        (lambda s: s.replace("[loop]", "[loop"), "is not valid TOML"),
        (lambda s: s.replace("0x5FbDB", "0x5fbDB"), "wrong EIP-55 checksum"),
    ],
    ids=["section", "mode", "relay-url", "type", "key", "gateway", "toml", "address"],
)
def test_bad_configurations_are_one_line_naming_the_fix(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "oracle.toml"
    path.write_text(change(GOOD))
    with pytest.raises(DaiseeError, match=message) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_a_missing_configuration_names_the_examples(tmp_path: Path) -> None:
    with pytest.raises(DaiseeError, match="copy one from oracles/"):
        load_config(tmp_path / "nope.toml")


def test_sqlite_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    Outbox(tmp_path / "o.sqlite")
    assert sqlite3.connect(tmp_path / "o.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_outbox_sends_in_interval_order_and_never_past_a_waiting_reading(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    for t in (0, 1, 2):
        outbox.add(_signed(t, imp=100 + t))
    outbox.retry_later(_signed(1).reading, 60, "SETTLEMENT_BACKLOG", count_attempt=False)
    assert outbox.due(now=1e9) == [_signed(0, imp=100)]  # 2 waits behind 1
    outbox.mark(_signed(0).reading, CONFIRMED)
    assert outbox.due(now=1e12) == [_signed(1, imp=101), _signed(2, imp=102)]


def test_a_waiting_reading_is_logged_once_per_cause(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.add(_signed(4))
    sender = _Scripted([Outcome(WAIT, "SETTLEMENT_BACKLOG")])
    oracle = Oracle(Sampler(METER, GENESIS, LENGTH), KEY, DOMAIN, outbox, sender)
    with caplog.at_level("INFO", logger="daisee.oracle"):
        for _ in range(3):
            assert oracle.flush() == 0
            outbox.retry_later(_signed(4).reading, 0, "SETTLEMENT_BACKLOG", count_attempt=False)  # due again now
        sender.outcomes = [Outcome(WAIT, "FUTURE_INTERVAL")]
        oracle.flush()
    assert [r.getMessage() for r in caplog.records] == [
        "event=wait interval=4 reason=SETTLEMENT_BACKLOG",
        "event=wait interval=4 reason=FUTURE_INTERVAL",
    ]
    assert outbox.reason(_signed(4).reading) == "FUTURE_INTERVAL"
    assert outbox.attempts(_signed(4).reading) == 0
    assert outbox.backlog() == 1
