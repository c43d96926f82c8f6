"""A loop on a real node, made the way a PMO makes one: `daisee deploy` with interval 0 starting at the
node's next interval boundary, `daisee member add` for households that sign their readings, then the
node's clock moved through the intervals the test plays (a meter reports only from its admission)."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount

from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import connect
from daisee.chain.deploy import MIN_GRACE_SECONDS, load_deployment
from daisee.chain.transact import Sender
from daisee.domain import meter_id
from daisee.loop import Loop
from daisee.readings import Reading
from tests.e2e.conftest import Daisee

INTERVAL = 900


@dataclass
class CliLoop:
    url: str
    loop: Loop  # driven by a development account that is not the PMO
    genesis: int
    grace_seconds: int
    price_per_wh: int

    def submit(self, key: LocalAccount, label: str, interval: int, import_wh: int, export_wh: int = 0) -> None:
        signed = Reading(meter_id(label), interval, import_wh, export_wh).sign(key.key, self.loop.domain)
        result = self.loop.submit([signed])
        assert result.accepted == [(meter_id(label), interval)], result.rejected

    def advance(self, intervals: int, *, past_grace: bool = True) -> None:
        """Move the node's clock to the end of interval `intervals - 1`, and past its grace period if asked."""
        advance_to(self.loop.sender.chain, self.genesis + intervals * INTERVAL + (self.grace_seconds * past_grace))


def deploy(daisee: Daisee, url: str, *options: str, grace_seconds: int = MIN_GRACE_SECONDS) -> CliLoop:
    """`daisee deploy` on `url`, interval 0 starting at the node's next interval boundary, so that every meter
    admitted before `CliLoop.advance` reports from interval 0."""
    chain = connect(url)
    now = chain_time(chain)
    genesis = now - now % INTERVAL + INTERVAL
    outcome = daisee(
        "deploy",
        "--chain",
        url,
        "--genesis",
        str(genesis),
        "--interval-seconds",
        str(INTERVAL),
        "--grace-seconds",
        str(grace_seconds),
        *options,
    )
    assert outcome.exit_code == 0, outcome.stderr
    deployment = load_deployment(chain)
    loop = Loop(Sender.dev(chain, 2), deployment.address)
    return CliLoop(url, loop, genesis, grace_seconds, deployment.parameters["price_per_wh"])


def add_household(daisee: Daisee, cli_loop: CliLoop, label: str, kind: str, *options: str) -> LocalAccount:
    """`daisee member add` for a new gateway key, which is also the payout account."""
    key: LocalAccount = Account.create()
    outcome = daisee("member", "add", label, "--signer", key.address, "--kind", kind, "--chain", cli_loop.url, *options)
    assert outcome.exit_code == 0, outcome.stderr
    return key
