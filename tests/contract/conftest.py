"""A fresh loop per test, on every chain kind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from daisee.chain.connect import Chain
from daisee.chain.deploy import TEST_EURO, LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind
from daisee.loop import Loop, MeterSpec
from daisee.readings import Reading, SignedReading


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
    pmo, outsider = Sender.dev(any_chain, 0), Sender.dev(any_chain, 1)
    deployment = deploy_loop(pmo, LoopParameters(interval_seconds=900, price_per_wh=120))
    return LoopUnderTest(any_chain, pmo, outsider, Loop(pmo, deployment.address), deployment.parameters["genesis"])


INTERVAL = 900
PAST_INTERVALS = 20  # genesis this many intervals ago, so intervals 0..19 are over


@dataclass(frozen=True)
class Household:
    meter_id: bytes
    key: LocalAccount
    kind: MeterKind

    @property
    def payout(self) -> str:
        return self.key.address


@dataclass
class SignedLoop(LoopUnderTest):
    """A loop whose genesis lies in the past, with three households that sign their readings."""

    households: list[Household]

    def sign(self, household: Household, interval: int, import_wh: int, export_wh: int) -> SignedReading:
        return Reading(household.meter_id, interval, import_wh, export_wh).sign(household.key.key, self.loop.domain)

    def counter(self, household: Household) -> tuple[int, int, int]:
        m = self.loop.meter(household.meter_id)
        return m.next_interval, m.import_wh, m.export_wh


def make_signed_loop(
    chain: Chain,
    *,
    grace_seconds: int,
    key: AllocationKey = AllocationKey.PRORATA,
    past_intervals: int = PAST_INTERVALS,
    token: str | None = TEST_EURO,
) -> SignedLoop:
    pmo, outsider = Sender.dev(chain, 0), Sender.dev(chain, 1)
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    genesis = now - now % INTERVAL - past_intervals * INTERVAL
    params = LoopParameters(INTERVAL, key, 100, genesis, grace_seconds, token=token)
    deployment = deploy_loop(pmo, params)
    loop = Loop(pmo, deployment.address)
    kinds = (MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER)
    households = [Household(keccak(text=f"house-{i}"), Account.create(), kind) for i, kind in enumerate(kinds)]
    loop.add_meters(
        [
            MeterSpec(h.meter_id, h.key.address, h.payout, h.kind, share=3000, weight=1 + i)
            for i, h in enumerate(households)
        ]
    )
    return SignedLoop(chain, pmo, outsider, loop, genesis, households)


@pytest.fixture
def signed_loop(any_chain: Chain) -> SignedLoop:
    """Grace of a day: an interval closes only when every meter reported."""
    return make_signed_loop(any_chain, grace_seconds=86_400)
