"""A fresh loop per test, on every chain kind.

A meter reports only from the interval of its admission, so a signed loop is deployed at an interval
boundary (its genesis), admits its meters during interval 0, and then moves the chain's clock forward
until the intervals its test reads are over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract

from daisee.chain.connect import Chain
from daisee.chain.deploy import TEST_EURO, LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind
from daisee.loop import AccountBalance, Loop, MeterSpec
from daisee.readings import Reading, SignedReading
from tests.contract.timetravel import now, travel_to

INTERVAL = 900
PRICE = 100
INTERVALS_OVER = 4  # a signed loop starts with intervals 0..3 over (its meters were admitted in interval 0)
HOUSEHOLDS = ((MeterKind.PRODUCER, None, None), (MeterKind.CONSUMER, None, None), (MeterKind.PROSUMER, None, None))
FIRST_PAYOUT = 2  # households are paid to the chain's development accounts 2, 3, 4 (0 is the PMO, 1 an outsider)


def next_boundary(chain: Chain, interval: int = INTERVAL) -> int:
    """Move the clock just past the next interval boundary (a few seconds ahead at least); return the boundary."""
    start = now(chain) + 5
    boundary = start - start % interval + interval
    travel_to(chain, boundary + 1)
    return boundary


@dataclass
class LoopUnderTest:
    chain: Chain
    pmo: Sender
    outsider: Sender
    loop: Loop
    genesis: int

    def as_outsider(self) -> Loop:
        return Loop(self.outsider, self.loop.address)


@pytest.fixture
def loop_env(any_chain: Chain) -> LoopUnderTest:
    """A loop deployed just after an interval boundary, its genesis (so its meters are admitted in interval 0)."""
    pmo, outsider = Sender.dev(any_chain, 0), Sender.dev(any_chain, 1)
    next_boundary(any_chain)
    deployment = deploy_loop(pmo, LoopParameters(interval_seconds=900, price_per_wh=120))
    return LoopUnderTest(any_chain, pmo, outsider, Loop(pmo, deployment.address), deployment.parameters["genesis"])


@dataclass(frozen=True)
class Household:
    meter_id: bytes
    key: LocalAccount
    kind: MeterKind
    member: Sender  # its payout account, an unlocked development account that can deposit and withdraw

    @property
    def payout(self) -> str:
        return self.member.address


@dataclass
class SignedLoop(LoopUnderTest):
    """A loop with a producer, a consumer and a prosumer whose gateways sign their readings."""

    households: list[Household]
    interval_seconds: int = INTERVAL

    def sign(self, household: Household, interval: int, import_wh: int, export_wh: int) -> SignedReading:
        return Reading(household.meter_id, interval, import_wh, export_wh).sign(household.key.key, self.loop.domain)

    def counter(self, household: Household) -> tuple[int, int, int]:
        m = self.loop.meter(household.meter_id)
        return m.next_interval, m.import_wh, m.export_wh

    def start_of(self, interval: int) -> int:
        return self.genesis + interval * self.interval_seconds

    def end(self, interval: int) -> None:
        """Move the clock so that `interval` is over (its grace period is not), for calls too."""
        travel_to(self.chain, self.start_of(interval + 1) + 1)

    def grace_over(self, interval: int) -> None:
        """Move the clock past `interval`'s grace period."""
        travel_to(self.chain, self.start_of(interval + 1) + self.loop.config().grace_seconds + 1)

    def settle_through(self, interval: int) -> None:
        """Finalize and settle every interval up to `interval` (each must be closable now)."""
        for t in range(self.loop.next_to_finalize(), interval + 1):
            self.loop.finalize(t)
        while self.loop.next_to_settle() <= interval:
            self.loop.settle()

    def accounts(self) -> list[str]:
        """Everyone whose money a test watches: the households' payouts, the PMO and the outsider."""
        return [h.payout for h in self.households] + [self.pmo.address, self.outsider.address]

    def token(self) -> Contract:
        found = self.loop.settlement_token()
        assert found is not None
        return found

    def fund(self, member: Sender, amount: int) -> None:
        """Mint `amount` test euros to `member` and deposit them into its account."""
        self.pmo.transact(self.token().functions.mint(member.address, amount), "minting test euros")
        self.loop.as_sender(member).deposit(amount)

    def account(self, household: Household) -> AccountBalance:
        return self.loop.account(household.payout)

    def report(self, interval: int, energy: Sequence[tuple[int, int]]) -> None:
        """Every household reports its indices moved on by (imported, exported) Wh; all are accepted."""
        readings = []
        for household, (d_import, d_export) in zip(self.households, energy, strict=True):
            _, imported, exported = self.counter(household)
            readings.append(self.sign(household, interval, imported + d_import, exported + d_export))
        assert len(self.loop.submit(readings).accepted) == len(readings)


def make_signed_loop(
    chain: Chain,
    *,
    grace_seconds: int = 86_400,
    key: AllocationKey = AllocationKey.PRORATA,
    intervals_over: int = INTERVALS_OVER,
    token: str | None = TEST_EURO,
    price_per_wh: int = PRICE,
    price_cap_per_wh: int | None = None,
    notice_seconds: int = 0,
    interval_seconds: int = INTERVAL,
    meters: Sequence[tuple[MeterKind, int | None, int | None]] = HOUSEHOLDS,
    indices: Sequence[tuple[int, int]] | None = None,
    share: int = 3000,
) -> SignedLoop:
    """Deploy at the next interval boundary, admit the households in interval 0, then let
    `intervals_over` intervals pass. `meters` are (kind, import limit, export limit) with None for a
    household's default; `indices` their indices at admission; each has the static `share`."""
    pmo, outsider = Sender.dev(chain, 0), Sender.dev(chain, 1)
    genesis = next_boundary(chain, interval_seconds)
    params = LoopParameters(
        interval_seconds,
        key,
        price_per_wh,
        genesis,
        grace_seconds,
        token=token,
        notice_seconds=notice_seconds,
        price_cap_per_wh=price_cap_per_wh,
    )
    loop = Loop(pmo, deploy_loop(pmo, params).address)
    households = [
        Household(keccak(text=f"house-{i}"), Account.create(), kind, Sender.dev(chain, FIRST_PAYOUT + i))
        for i, (kind, _, _) in enumerate(meters)
    ]
    starts = indices or [(0, 0)] * len(meters)
    loop.add_meters(
        [
            MeterSpec(
                h.meter_id, h.key.address, h.payout, h.kind, share=share, weight=1 + i,
                import_wh=start[0], export_wh=start[1], import_limit_w=limits[1], export_limit_w=limits[2],
            )
            for i, (h, limits, start) in enumerate(zip(households, meters, starts, strict=True))
        ]
    )  # fmt: skip
    signed = SignedLoop(chain, pmo, outsider, loop, genesis, households, interval_seconds)
    if intervals_over:
        signed.end(intervals_over - 1)
    return signed


@pytest.fixture
def signed_loop(any_chain: Chain) -> SignedLoop:
    """Grace of a day: an interval closes only when every meter reported."""
    return make_signed_loop(any_chain)


def assert_solvent(loop: Loop, accounts: Sequence[str], *, exact: bool = True) -> None:
    """What members may withdraw is at most what the loop holds (all of it, with `exact` and no
    settlement under way), and the receivables are the debts plus the repaid debts not yet paid out."""
    books = [loop.account(a) for a in dict.fromkeys(accounts)]
    recovered, _ = loop.receivables_queue()
    token = loop.settlement_token()
    assert token is not None
    held = token.functions.balanceOf(loop.address).call()
    withdrawable = sum(b.balance for b in books) + recovered
    assert withdrawable == held if exact else withdrawable <= held
    assert sum(b.receivable for b in books) == sum(b.debt for b in books) + recovered
