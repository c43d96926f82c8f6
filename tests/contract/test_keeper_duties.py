"""The keeper's duties beside settling: paying receivables from repaid debts, applying due meter changes."""

from __future__ import annotations

from eth_account import Account

from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import Chain
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind
from daisee.keeper import MeterChanges, pay_receivables, settle_ready
from daisee.loop import AccountBalance, Loop, MeterSpec
from daisee.readings import Reading

INTERVAL = 900


def _loop(chain: Chain, notice: int) -> tuple[Loop, int]:
    pmo = Sender.dev(chain, 0)
    now = chain_time(chain)
    genesis = now - now % INTERVAL + INTERVAL
    params = LoopParameters(INTERVAL, AllocationKey.PRORATA, 100, genesis, notice_seconds=notice)
    return Loop(pmo, deploy_loop(pmo, params).address), genesis


def test_repaid_debt_reaches_the_producer_through_the_keeper(embedded: Chain) -> None:
    loop, genesis = _loop(embedded, notice=0)
    producer, consumer = Account.create(), Account.create()
    sun, home = b"\x01" * 32, b"\x02" * 32
    loop.add_meters(
        [
            MeterSpec(sun, producer.address, producer.address, MeterKind.PRODUCER),
            MeterSpec(home, consumer.address, consumer.address, MeterKind.CONSUMER),
        ]
    )
    advance_to(embedded, genesis + INTERVAL)
    loop.submit([Reading(sun, 0, 0, 1000).sign(producer.key, loop.domain)])
    loop.submit([Reading(home, 0, 600, 0).sign(consumer.key, loop.domain)])
    settle_ready(loop)
    assert loop.account(consumer.address).debt == 60_000  # 600 Wh at 100 units/Wh, nothing prepaid
    assert loop.account(producer.address).receivable == 60_000
    assert pay_receivables(loop) == 0  # nothing repaid yet: no transaction

    token = loop.settlement_token()
    assert token is not None
    loop.sender.transact(token.functions.mint(loop.sender.address, 100_000), "minting")
    loop.deposit(100_000, consumer.address)  # the consumer's deposit repays its debt first
    assert loop.account(consumer.address).balance == 40_000
    assert loop.receivables_queue() == (60_000, 1)

    assert pay_receivables(loop) == 1
    assert loop.account(producer.address).balance == 60_000
    assert loop.account(producer.address).receivable == 0
    assert loop.receivables_queue() == (0, 0)


def test_an_announced_key_change_is_applied_once_due(embedded: Chain) -> None:
    loop, _ = _loop(embedded, notice=3 * 86_400)
    old, new = Account.create(), Account.create()
    meter = b"\x03" * 32
    loop.add_meters([MeterSpec(meter, old.address, old.address, MeterKind.CONSUMER)])
    watch = MeterChanges(loop)
    receipt = loop.rotate_signer(meter, new.address)
    announced_at = int(embedded.w3.eth.get_block(receipt["blockNumber"])["timestamp"])

    assert watch.apply_due(announced_at + 3 * 86_400 - 1) == []
    assert loop.meter(meter).signer == old.address
    advance_to(embedded, announced_at + 3 * 86_400)
    assert watch.apply_due(chain_time(embedded)) == [meter]
    assert loop.meter(meter).signer == new.address
    assert loop.meter_change(meter) is None
    assert watch.apply_due(chain_time(embedded)) == []


def test_a_holders_own_debt_is_netted_against_its_receivable(embedded: Chain) -> None:
    loop, genesis = _loop(embedded, notice=0)
    home = Account.create()
    meter = b"\x04" * 32  # a prosumer that consumed its own production, nothing prepaid
    loop.add_meters([MeterSpec(meter, home.address, home.address, MeterKind.PROSUMER)])
    advance_to(embedded, genesis + INTERVAL)
    loop.submit([Reading(meter, 0, 600, 1000).sign(home.key, loop.domain)])
    settle_ready(loop)
    assert loop.account(home.address) == AccountBalance(0, 60_000, 60_000)
    assert loop.receivables_queue() == (0, 1)
    assert loop.receivable_due() == 60_000  # nothing was repaid, yet the claim can be settled

    assert pay_receivables(loop) == 1
    assert loop.account(home.address) == AccountBalance(0, 0, 0)
    assert loop.receivables_queue() == (0, 0)
    assert loop.receivable_due() == 0
