"""The loop's PMO role and meter registry, on py-evm, anvil and ganache."""

from __future__ import annotations

import re

import pytest
from eth_utils import keccak, to_checksum_address

from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.domain import MAX_LIMIT_W, AllocationKey, MeterKind
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterSpec
from tests.contract.conftest import LoopUnderTest
from tests.contract.timetravel import travel_to

METER_A = keccak(text="house-a")
METER_B = keccak(text="house-b")
GATEWAY = to_checksum_address("0x" + "a1" * 20)
WALLET = to_checksum_address("0x" + "b2" * 20)


def _logs(env: LoopUnderTest, event: str, receipt: dict) -> list:
    return list(getattr(env.loop.contract.events, event)().process_receipt(receipt))


def test_deployment_records_calendar_key_price_and_pmo(loop_env: LoopUnderTest) -> None:
    config = loop_env.loop.config()
    assert config.pmo == loop_env.pmo.address
    assert config.interval_seconds == 900
    assert config.key is AllocationKey.PRORATA
    assert config.price_per_wh == 120
    assert config.genesis == loop_env.genesis
    assert config.genesis % 900 == 0
    # a development loop's defaults: a third of an interval to land late readings, no notice, the cap twice the price
    assert (config.grace_seconds, config.notice_seconds, config.price_cap_per_wh) == (300, 0, 240)
    assert config.unprotected() == [
        "notice period is 0: the PMO's new meters, key changes and terms take effect at once"
    ]


def test_pmo_admits_a_meter_and_it_reads_back(loop_env: LoopUnderTest) -> None:
    receipt = loop_env.loop.add_meter(METER_A, GATEWAY, WALLET, MeterKind.PROSUMER)

    [meter] = loop_env.loop.meters()
    assert meter.meter_id == METER_A
    assert meter.signer == GATEWAY
    assert meter.payout == WALLET
    assert meter.kind is MeterKind.PROSUMER
    assert meter.active
    assert (meter.import_limit_w, meter.export_limit_w) == (12_000, 9_000)  # a household's defaults
    current = loop_env.loop.current_interval()
    assert (meter.active_from, meter.next_interval) == (current, current)  # no notice: it reports from now
    [event] = _logs(loop_env, "MeterAdded", receipt)
    assert event.args.meterId == METER_A
    assert event.args.signer == GATEWAY
    assert event.args.kind == MeterKind.PROSUMER
    assert (event.args.importLimitW, event.args.exportLimitW, event.args.activeFrom) == (12_000, 9_000, current)


def test_a_meters_kind_follows_from_its_limits(loop_env: LoopUnderTest) -> None:
    specs = [
        MeterSpec(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER, import_limit_w=6_000),
        MeterSpec(METER_B, GATEWAY, WALLET, MeterKind.PRODUCER, export_limit_w=MAX_LIMIT_W),
        MeterSpec(keccak(text="house-c"), GATEWAY, WALLET, MeterKind.PROSUMER, import_limit_w=1, export_limit_w=2),
    ]
    loop_env.loop.add_meters(specs)
    assert [(m.kind, m.import_limit_w, m.export_limit_w) for m in loop_env.loop.meters()] == [
        (MeterKind.CONSUMER, 6_000, 0),
        (MeterKind.PRODUCER, 0, MAX_LIMIT_W),
        (MeterKind.PROSUMER, 1, 2),
    ]


@pytest.mark.parametrize(
    ("kind", "import_limit", "export_limit"),
    [
        (MeterKind.CONSUMER, 12_000, 1),
        (MeterKind.CONSUMER, 0, 0),
        (MeterKind.PRODUCER, 1, 9_000),
        (MeterKind.PRODUCER, 0, 0),
        (MeterKind.PROSUMER, 0, 9_000),
        (MeterKind.PROSUMER, 12_000, 0),
        (MeterKind.CONSUMER, MAX_LIMIT_W + 1, 0),
        (MeterKind.PROSUMER, 12_000, 2**32 - 1),
    ],
    ids=["exporting-consumer", "consumer-without-import", "importing-producer", "producer-without-export",
         "prosumer-without-import", "prosumer-without-export", "import-of-16.7-MW", "export-of-4.3-GW"],
)  # fmt: skip
def test_rejects_limits_that_do_not_fit_the_kind(
    loop_env: LoopUnderTest, kind: MeterKind, import_limit: int, export_limit: int
) -> None:
    spec = MeterSpec(METER_A, GATEWAY, WALLET, kind, import_limit_w=import_limit, export_limit_w=export_limit)
    expected = f"InvalidMeterLimits(kind={int(kind)}, importLimitW={import_limit}, exportLimitW={export_limit})"
    with pytest.raises(DaiseeError, match=re.escape(expected)):
        loop_env.loop.add_meters([spec])
    assert loop_env.loop.meters(include_removed=True) == []


def test_settlement_records_name_meters_by_their_registry_index(loop_env: LoopUnderTest) -> None:
    receipts = loop_env.loop.add_meters([
        MeterSpec(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER), MeterSpec(METER_B, GATEWAY, WALLET, MeterKind.PRODUCER)
    ])  # fmt: skip
    assert [e.args.index for r in receipts for e in _logs(loop_env, "MeterAdded", r)] == [0, 1]
    assert (loop_env.loop.meter_id_at(0), loop_env.loop.meter_id_at(1)) == (METER_A, METER_B)
    with pytest.raises(DaiseeError, match=r"^the loop has no meter number 2: is the RPC node synced with the loop\?"):
        loop_env.loop.meter_id_at(2)


def test_removed_meter_stays_listed_as_inactive(loop_env: LoopUnderTest) -> None:
    loop_env.loop.add_meter(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER)
    loop_env.loop.add_meter(METER_B, GATEWAY, WALLET, MeterKind.PRODUCER)

    receipt = loop_env.loop.remove_meter(METER_A)

    assert [m.meter_id for m in loop_env.loop.meters()] == [METER_B]
    assert [(m.meter_id, m.active) for m in loop_env.loop.meters(include_removed=True)] == [
        (METER_A, False),
        (METER_B, True),
    ]
    assert [e.args.meterId for e in _logs(loop_env, "MeterRemoved", receipt)] == [METER_A]
    # the removed meter no longer counts: interval 0 waits for one meter only
    travel_to(loop_env.chain, loop_env.genesis + 901)
    expected = f"IntervalStillOpen(interval=0, reported=0, activeMeters=1, graceEnd={loop_env.genesis + 900 + 300})"
    with pytest.raises(DaiseeError, match=re.escape(expected)):
        loop_env.loop.finalize(0)


@pytest.mark.parametrize(
    ("meter_id", "signer", "payout", "error"),
    [
        (bytes(32), GATEWAY, WALLET, "InvalidMeterId()"),
        (METER_A, "0x" + "00" * 20, WALLET, "InvalidMeterAccount(account=0x0000000000000000000000000000000000000000)"),
        (METER_A, GATEWAY, "0x" + "00" * 20, "InvalidMeterAccount(account=0x0000000000000000000000000000000000000000)"),
    ],
    ids=["zero-id", "zero-signer", "zero-payout"],
)
def test_rejects_meter_with_zero_id_or_account(
    loop_env: LoopUnderTest, meter_id: bytes, signer: str, payout: str, error: str
) -> None:
    with pytest.raises(DaiseeError, match=re.escape(f"rejected by the contract: {error}")):
        loop_env.loop.add_meter(meter_id, signer, payout, MeterKind.CONSUMER)
    assert loop_env.loop.meters(include_removed=True) == []


def test_rejects_reusing_a_meter_id_even_after_removal(loop_env: LoopUnderTest) -> None:
    loop_env.loop.add_meter(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER)
    loop_env.loop.remove_meter(METER_A)

    with pytest.raises(DaiseeError, match=f"MeterAlreadyRegistered\\(meterId=0x{METER_A.hex()}\\)"):
        loop_env.loop.add_meter(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER)
    assert loop_env.loop.contract.functions.meterCount().call() == 1


def test_rejects_removing_unknown_or_removed_meter(loop_env: LoopUnderTest) -> None:
    with pytest.raises(DaiseeError, match=f"UnknownMeter\\(meterId=0x{METER_A.hex()}\\)"):
        loop_env.loop.remove_meter(METER_A)
    loop_env.loop.add_meter(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER)
    loop_env.loop.remove_meter(METER_A)
    with pytest.raises(DaiseeError, match=f"MeterNotActive\\(meterId=0x{METER_A.hex()}\\)"):
        loop_env.loop.remove_meter(METER_A)


def test_only_the_pmo_administers_meters(loop_env: LoopUnderTest) -> None:
    outsider = loop_env.as_outsider()
    expected = f"OwnableUnauthorizedAccount\\(account={loop_env.outsider.address}\\)"
    with pytest.raises(DaiseeError, match=expected):
        outsider.add_meter(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER)
    loop_env.loop.add_meter(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER)
    with pytest.raises(DaiseeError, match=expected):
        outsider.remove_meter(METER_A)
    assert loop_env.loop.meter(METER_A).active


def test_pmo_role_moves_only_when_the_new_pmo_accepts(loop_env: LoopUnderTest) -> None:
    f = loop_env.loop.contract.functions
    loop_env.pmo.transact(f.transferOwnership(loop_env.outsider.address), "proposing a new PMO")
    assert f.owner().call() == loop_env.pmo.address
    assert f.pendingOwner().call() == loop_env.outsider.address

    loop_env.outsider.transact(f.acceptOwnership(), "accepting the PMO role")

    assert f.owner().call() == loop_env.outsider.address
    with pytest.raises(DaiseeError, match="OwnableUnauthorizedAccount"):
        loop_env.loop.add_meter(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER)
    Loop(loop_env.outsider, loop_env.loop.address).add_meter(METER_A, GATEWAY, WALLET, MeterKind.CONSUMER)


def test_intervals_follow_the_calendar(loop_env: LoopUnderTest) -> None:
    f = loop_env.loop.contract.functions
    genesis = loop_env.genesis
    assert f.intervalAt(genesis).call() == 0
    assert f.intervalAt(genesis + 899).call() == 0
    assert f.intervalAt(genesis + 900).call() == 1
    assert f.intervalAt(genesis + 10 * 900 + 1).call() == 10
    latest = loop_env.chain.w3.eth.get_block("latest")["timestamp"]
    assert f.currentInterval().call() == (latest - genesis) // 900


def test_interval_before_genesis_reverts_with_the_times(loop_env: LoopUnderTest) -> None:
    call = loop_env.loop.contract.functions.intervalAt(loop_env.genesis - 1)
    expected = f"BeforeGenesis(timestamp={loop_env.genesis - 1}, genesis={loop_env.genesis})"
    with pytest.raises(DaiseeError, match=re.escape(expected)):
        loop_env.pmo.transact(call, "reading the interval")


@pytest.mark.parametrize("seconds", [59, 86_401])
def test_rejects_interval_length_out_of_range(loop_env: LoopUnderTest, seconds: int) -> None:
    with pytest.raises(DaiseeError, match=f"InvalidIntervalLength\\(intervalSeconds={seconds}\\)"):
        deploy_loop(loop_env.pmo, LoopParameters(interval_seconds=seconds, grace_seconds=60, token=None))


def test_meter_list_is_in_registration_order(loop_env: LoopUnderTest) -> None:
    ids = [keccak(text=f"house-{i}") for i in range(5)]
    for i, mid in enumerate(ids):
        loop_env.loop.add_meter(mid, GATEWAY, WALLET, MeterKind(i % 3))
    assert [m.meter_id for m in loop_env.loop.meters()] == ids
    assert [m.kind for m in loop_env.loop.meters()] == [MeterKind(i % 3) for i in range(5)]
