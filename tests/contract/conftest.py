"""A fresh loop per test, on every chain kind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from daisee.chain.connect import Chain
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.loop import Loop


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
