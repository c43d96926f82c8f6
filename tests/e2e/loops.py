"""A loop on a real node, made the way a PMO makes one: `daisee deploy` with a genesis in the past, so that
intervals are over, and households that sign their readings."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount

from daisee.chain.connect import connect
from daisee.chain.deploy import load_deployment
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
    price_per_wh: int

    def submit(self, key: LocalAccount, label: str, interval: int, import_wh: int, export_wh: int = 0) -> None:
        signed = Reading(meter_id(label), interval, import_wh, export_wh).sign(key.key, self.loop.domain)
        result = self.loop.submit([signed])
        assert result.accepted == [(meter_id(label), interval)], result.rejected


def deploy_past(daisee: Daisee, url: str, intervals_ago: int, grace_seconds: int = 0) -> CliLoop:
    """`daisee deploy` on `url` with interval 0 starting `intervals_ago` intervals before the node's clock."""
    chain = connect(url)
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    genesis = now - now % INTERVAL - intervals_ago * INTERVAL
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
    )
    assert outcome.exit_code == 0, outcome.stderr
    deployment = load_deployment(chain)
    loop = Loop(Sender.dev(chain, 2), deployment.address)
    return CliLoop(url, loop, genesis, deployment.parameters["price_per_wh"])


def add_household(daisee: Daisee, cli_loop: CliLoop, label: str, kind: str, *indices: str) -> LocalAccount:
    """`daisee member add` for a new gateway key, which is also the payout account."""
    key: LocalAccount = Account.create()
    outcome = daisee("member", "add", label, "--signer", key.address, "--kind", kind, "--chain", cli_loop.url, *indices)
    assert outcome.exit_code == 0, outcome.stderr
    return key
