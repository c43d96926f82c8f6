"""The reference model's ledger: balances, debts and receivables, worked by hand.

A consumer pays from its balance and owes the rest; producers share what was paid and are owed the
rest, paid oldest first from repaid debts; whatever reaches an account repays its debt first.
"""

from __future__ import annotations

from daisee.domain import MeterKind
from daisee.model import Account, IntervalResult, LedgerModel, LoopModel
from daisee.model.ledger import UINT96_MAX
from tests.unit.test_model_support import add, close, feed, new_loop, payout, reverts


def books(loop: LoopModel) -> tuple[int, int, list[tuple[str, int]]]:
    """(held, recovered, claims oldest first)."""
    return loop.ledger.held, loop.ledger.recovered, loop.ledger.claims()


def three_members(price: int = 1, *, with_token: bool = True) -> LoopModel:
    """Consumers 1 and 2, producer 3."""
    loop = new_loop(price=price, price_cap_per_wh=max(price, 1), with_token=with_token)
    add(loop, 1, MeterKind.CONSUMER)
    add(loop, 2, MeterKind.CONSUMER)
    add(loop, 3, MeterKind.PRODUCER)
    return loop


# --- members' calls --------------------------------------------------------------------------


def test_deposit_and_withdraw_move_a_balance() -> None:
    loop = new_loop()

    loop.deposit(payout(1), 100)
    loop.withdraw(payout(1), 40)

    assert loop.account(payout(1)) == Account(balance=60)
    assert loop.balance(payout(1)) == 60
    assert books(loop) == (60, 0, [])


def test_ledger_refuses_zero_amounts_and_overdrafts() -> None:
    loop = new_loop()
    loop.deposit(payout(1), 10)

    with reverts("ZeroAmount"):
        loop.deposit(payout(1), 0)
    with reverts("ZeroAmount"):
        loop.withdraw(payout(1), 0)
    with reverts("InsufficientBalance", payout(1), 10, 11):
        loop.withdraw(payout(1), 11)
    with reverts("InsufficientBalance", payout(2), 0, 1):
        loop.withdraw(payout(2), 1)
    assert loop.account(payout(1)) == Account(balance=10)


def test_a_credits_only_loop_takes_no_deposits_and_pays_nothing_out() -> None:
    loop = new_loop(with_token=False)

    with reverts("ZeroAmount"):
        loop.deposit(payout(1), 0)
    with reverts("NoSettlementToken"):
        loop.deposit(payout(1), 1)
    with reverts("NoSettlementToken"):
        loop.withdraw(payout(1), 1)
    assert loop.pay_receivables(10) == 0


def test_pausing_stops_readings_only() -> None:
    loop = three_members()
    loop.deposit(payout(1), 10)
    feed(loop, 0, {1: (4, 0), 3: (0, 4)})
    loop.pause()

    close(loop, 0)
    loop.deposit(payout(2), 5)
    loop.withdraw(payout(1), 6)
    loop.withdraw(payout(3), 4)

    assert [loop.account(payout(n)) for n in (1, 2, 3)] == [Account(), Account(balance=5), Account()]


# --- settlement ------------------------------------------------------------------------------


def test_a_consumer_pays_from_its_balance_and_owes_the_rest() -> None:
    loop = three_members(price=3)
    loop.deposit(payout(1), 100)
    loop.deposit(payout(2), 5)
    feed(loop, 0, {1: (4, 0), 2: (3, 0), 3: (0, 10)})

    result = close(loop, 0)

    assert [(m.amount, m.paid_cost) for m in result.members[:2]] == [(-12, 12), (-9, 5)]
    assert loop.account(payout(1)) == Account(balance=88)
    assert loop.account(payout(2)) == Account(debt=4)
    assert loop.balance(payout(2)) == -4
    with reverts("InsufficientBalance", payout(2), 0, 1):
        loop.withdraw(payout(2), 1)


def short_paying_consumer() -> tuple[LoopModel, IntervalResult]:
    """Producers 1 (2 Wh) and 2 (1 Wh) sell to consumer 3 (3 Wh at 3 per Wh), who brought only 5."""
    loop = new_loop(price=3)
    add(loop, 1, MeterKind.PRODUCER)
    add(loop, 2, MeterKind.PRODUCER)
    add(loop, 3, MeterKind.CONSUMER)
    loop.deposit(payout(3), 5)
    feed(loop, 0, {1: (0, 2), 2: (0, 1), 3: (3, 0)})
    return loop, close(loop, 0)


def test_producers_share_what_the_consumers_paid_and_are_owed_the_rest() -> None:
    loop, result = short_paying_consumer()

    # The consumer owes 9 and paid 5. By sold Wh, cumulatively: floor(2·5/3) = 3, then 5 - 3 = 2.
    assert [(m.meter_id[-1], m.amount, m.paid_cost, m.paid_revenue) for m in result.members] == [
        (3, -9, 5, 0),
        (1, 6, 0, 3),
        (2, 3, 0, 2),
    ]
    assert [loop.account(payout(n)) for n in (1, 2, 3)] == [
        Account(balance=3, receivable=3),
        Account(balance=2, receivable=1),
        Account(debt=4),
    ]
    assert books(loop) == (5, 0, [(payout(1), 3), (payout(2), 1)])


def test_repaid_debts_pay_the_receivables_oldest_first() -> None:
    loop, _ = short_paying_consumer()

    loop.deposit(payout(3), 2)  # repays 2 of its 4

    assert loop.account(payout(3)) == Account(debt=2)
    assert books(loop) == (7, 2, [(payout(1), 3), (payout(2), 1)])
    assert loop.pay_receivables(5) == 2  # the oldest claim, in part
    assert books(loop) == (7, 0, [(payout(1), 1), (payout(2), 1)])
    assert loop.pay_receivables(5) == 0

    loop.deposit(payout(3), 10)  # repays the rest: 2 of 10
    assert loop.pay_receivables(1) == 1  # one claim at a time
    assert books(loop) == (17, 1, [(payout(2), 1)])
    assert loop.pay_receivables(1) == 1
    assert [loop.account(payout(n)) for n in (1, 2, 3)] == [Account(balance=6), Account(balance=3), Account(balance=8)]
    assert books(loop) == (17, 0, [])


def test_a_prosumers_revenue_repays_its_own_debt_first() -> None:
    loop = new_loop(price=2)
    add(loop, 1)  # prosumer
    add(loop, 2, MeterKind.CONSUMER)
    add(loop, 3, MeterKind.PRODUCER)
    loop.deposit(payout(2), 100)
    feed(loop, 0, {1: (3, 0), 2: (0, 0), 3: (0, 3)})
    close(loop, 0)
    assert loop.account(payout(1)) == Account(debt=6)

    feed(loop, 1, {1: (0, 4), 2: (4, 0)})
    result = close(loop, 1)

    # The consumer pays 8 for the prosumer's 4 Wh: 6 of it repay the prosumer's debt.
    assert [(m.meter_id[-1], m.paid_cost, m.paid_revenue) for m in result.members] == [
        (1, 0, 8),
        (2, 8, 0),
        (3, 0, 0),
    ]
    assert loop.account(payout(1)) == Account(balance=2)
    assert books(loop) == (100, 6, [(payout(3), 6)])
    assert loop.pay_receivables(1) == 6
    assert [loop.account(payout(n)) for n in (1, 2, 3)] == [Account(balance=2), Account(balance=92), Account(balance=6)]


def test_whatever_an_account_receives_repays_its_debt_first() -> None:
    ledger = LedgerModel(with_token=True)
    ledger.charge("a", 10)  # a owes 10
    ledger.earn("b", 10, 0)  # b is owed 10
    ledger.charge("b", 4)  # and owes 4 for its own consumption
    ledger.earn("c", 4, 0)

    ledger.deposit("a", 10)  # a's money repays a's debt, nobody else's
    assert (ledger.account("a"), ledger.recovered) == (Account(), 10)

    assert ledger.pay_receivables(5) == 14  # b's 10 repays b's 4, which pays c
    assert [ledger.account(x) for x in "abc"] == [Account(), Account(balance=6), Account(balance=4)]
    assert (ledger.held, ledger.recovered, ledger.claims()) == (10, 0, [])


def test_a_deposit_repays_the_debt_then_fills_the_balance() -> None:
    ledger = LedgerModel(with_token=True)
    ledger.charge("a", 12)

    ledger.deposit("a", 5)
    assert (ledger.account("a"), ledger.recovered) == (Account(debt=7), 5)
    ledger.deposit("a", 10)
    assert (ledger.account("a"), ledger.recovered, ledger.held) == (Account(balance=3), 12, 15)


def test_consecutive_receivables_of_one_holder_share_a_claim_while_it_fits() -> None:
    ledger = LedgerModel(with_token=True)

    ledger.earn("a", 5, 0)
    ledger.earn("a", 2, 0)
    ledger.earn("b", 1, 0)
    ledger.earn("a", 1, 0)
    ledger.earn("b", UINT96_MAX, 0)
    ledger.earn("b", 1, 0)
    ledger.earn("b", 3, 3)  # paid in full: no claim

    assert ledger.claims() == [("a", 7), ("b", 1), ("a", 1), ("b", UINT96_MAX), ("b", 1)]
    assert ledger.account("b") == Account(balance=3, receivable=UINT96_MAX + 2)


def test_no_members_deposit_pays_another_members_debt() -> None:
    # The case: A prepaid 10, B nothing; A uses 4, B 8, P produced 12 at 1 per Wh.
    loop = three_members()
    loop.deposit(payout(1), 10)
    feed(loop, 0, {1: (4, 0), 2: (8, 0), 3: (0, 12)})

    close(loop, 0)

    assert [loop.account(payout(n)) for n in (1, 2, 3)] == [
        Account(balance=6),
        Account(debt=8),
        Account(balance=4, receivable=8),
    ]
    loop.withdraw(payout(1), 6)  # A takes back what it did not spend
    loop.withdraw(payout(3), 4)  # P takes what was paid for its energy
    with reverts("InsufficientBalance", payout(3), 0, 1):
        loop.withdraw(payout(3), 1)
    assert books(loop) == (0, 0, [(payout(3), 8)])

    loop.deposit(payout(2), 8)  # B pays its debt: P's receivable is paid from it
    assert loop.pay_receivables(1) == 8
    assert loop.account(payout(3)) == Account(balance=8)


def test_a_credits_only_loop_books_debts_and_receivables_without_a_queue() -> None:
    loop = three_members(price=2, with_token=False)
    feed(loop, 0, {1: (4, 0), 2: (8, 0), 3: (0, 12)})

    close(loop, 0)

    assert [loop.account(payout(n)) for n in (1, 2, 3)] == [Account(debt=8), Account(debt=16), Account(receivable=24)]
    assert loop.ledger_positions() == {payout(1): -8, payout(2): -16, payout(3): 24}
    assert books(loop) == (0, 0, [])
    assert loop.pay_receivables(10) == 0


def test_a_holders_own_debt_is_netted_against_its_claim_without_repaid_money() -> None:
    ledger = LedgerModel(with_token=True)
    ledger.charge("P", 100)  # P owes 100 for its consumption...
    ledger.earn("P", 100, 0)  # ...and is owed 100 for its production, nothing collected
    ledger.charge("Q", 5)
    ledger.earn("Q", 5, 0)
    assert ledger.account("P") == Account(0, 100, 100)

    assert ledger.pay_receivables(1) == 100  # one step, though nothing was repaid
    assert ledger.account("P") == Account()
    assert ledger.claims() == [("Q", 5)]
    assert ledger.pay_receivables(5) == 5
    assert (ledger.recovered, ledger.claims()) == (0, [])
