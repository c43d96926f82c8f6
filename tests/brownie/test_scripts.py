"""`brownie compile`, then the scripts in order on anvil and ganache; the chain is read back with daisee (web3 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daisee.chain.artifacts import linked_bytecode, load_artifact
from daisee.chain.compiler import SOLC_VERSION
from daisee.chain.connect import connect
from daisee.chain.deploy import LOOP_LIBRARIES, ZERO_ADDRESS, LoopParameters, load_deployment
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.demo import PREPAYMENT, Household, simulated_households
from daisee.domain import MeterKind
from daisee.loop import Loop, MemberResult
from daisee.model.allocation import MemberEnergy, allocate
from daisee.report.data import build_report, money
from daisee.simulation import LOCAL_OFFSET_SECONDS, MeterTrace, profiles, simulate
from tests.brownie.conftest import Venv
from tests.contract.timetravel import now, travel_to

pytestmark = pytest.mark.node

SEED = 1  # the scripts' default DAISEE_SEED
HOUSEHOLDS = 3  # add_members.py's default: a producer, a consumer and a prosumer
INTERVALS = 6
MORNING_HOUR = 9  # local time: the simulated PV produces, so energy is shared in the loop


def next_morning(timestamp: int) -> int:
    """The next MORNING_HOUR:00 local time after `timestamp`."""
    day = 86_400
    morning = timestamp - (timestamp + LOCAL_OFFSET_SECONDS) % day + MORNING_HOUR * 3600
    return morning if morning > timestamp else morning + day


def expected_settlements(
    households: list[Household], traces: list[MeterTrace], params: LoopParameters
) -> dict[int, dict[bytes, MemberResult]]:
    """What the reference model settles for each interval, as the settlement events report it."""
    expected = {}
    for t in range(INTERVALS):
        members = [
            MemberEnergy(h.meter_id, tr.imports[t + 1] - tr.imports[t], tr.exports[t + 1] - tr.exports[t])
            for h, tr in zip(households, traces, strict=True)
        ]
        price = params.price_per_wh
        expected[t] = {  # the consumers are prepaid: they pay all they owe, the producers are paid all they earn
            m.meter_id: MemberResult(
                consumed=m.consumed,
                allocated=m.allocated,
                cost=m.allocated * price,
                paid_cost=m.allocated * price,
                produced=m.produced,
                sold=m.sold,
                revenue=m.sold * price,
                paid_revenue=m.sold * price,
            )
            for m in allocate(params.key, price, members).members
        }
    return expected


def test_brownie_compiles_the_bytecode_daisee_ships(brownie_project: Path) -> None:
    # brownie names a library's placeholder (__Ledger___…), solc hashes it (__$e778…$__): compare them linked
    libraries = {name: "0x" + f"{i + 1:02x}" * 20 for i, name in enumerate(LOOP_LIBRARIES)}
    for name in ("EnergyLoop", "EuroToken", *LOOP_LIBRARIES):
        built = json.loads((brownie_project / "build" / "contracts" / f"{name}.json").read_text())
        shipped = load_artifact(name)
        assert built["compiler"]["version"].startswith(SOLC_VERSION + "+commit.")
        assert built.get("linkReferences", {}) == shipped.get("linkReferences", {}), name
        as_built = {**built, "bytecode": "0x" + built["bytecode"]}
        assert linked_bytecode(as_built, libraries) == linked_bytecode(shipped, libraries), name


def test_scripts_deploy_admit_simulate_and_settle(dev_node: LocalNode, brownie_project: Path, venv: Venv) -> None:
    chain = connect(dev_node.url)
    genesis = next_morning(now(chain))
    travel_to(chain, genesis)
    venv.run("brownie", "networks", "modify", "development", f"port={dev_node.port}", cwd=brownie_project)

    def brownie_run(script: str, *args: str) -> str:
        command = ("run", f"scripts/{script}.py", *args, "--network", "development")
        return venv.run("brownie", *command, cwd=brownie_project)

    brownie_run("deploy")
    brownie_run("add_members")
    brownie_run("simulate_day", "main", str(INTERVALS))
    printed = brownie_run("settle")

    deployment = load_deployment(chain, brownie_project / "deployments")
    assert (deployment.network, deployment.parameters["genesis"]) == (dev_node.kind, genesis)
    assert sorted(deployment.libraries) == sorted(LOOP_LIBRARIES)
    assert all(len(chain.w3.eth.get_code(address)) > 0 for address in deployment.libraries.values())
    assert (deployment.parameters["notice_seconds"], deployment.parameters["price_cap_per_wh"]) == (0, 200)
    loop = Loop(Sender(chain, ZERO_ADDRESS), deployment.address)
    households = simulated_households(HOUSEHOLDS, SEED)
    kinds = [h.kind for h in households]
    traces = simulate(kinds, genesis, 900, INTERVALS, SEED)
    assert [
        (m.meter_id, m.kind, m.signer, m.payout, m.import_wh, m.export_wh, (m.import_limit_w, m.export_limit_w))
        for m in loop.meters()
    ] == [
        (h.meter_id, h.kind, h.signer, h.payout, tr.imports[-1], tr.exports[-1], profile.meter_limits())
        for h, tr, profile in zip(households, traces, profiles(kinds, SEED), strict=True)
    ]
    assert [m.active_from for m in loop.meters()] == [0] * HOUSEHOLDS  # admitted in interval 0, no notice
    assert (loop.next_to_finalize(), loop.next_to_settle()) == (INTERVALS, INTERVALS)

    expected = expected_settlements(households, traces, LoopParameters())
    report = build_report(loop, deployment.block)
    assert report.settlements == expected
    prepaid = {h.payout: PREPAYMENT if h.kind is not MeterKind.PRODUCER else 0 for h in households}
    assert report.ledger == {
        **{
            h.payout: prepaid[h.payout] + sum(r[h.meter_id].revenue - r[h.meter_id].cost for r in expected.values())
            for h in households
        },
        deployment.deployer: 0,  # the treasury: prorata leaves no rounding dust in money
    }
    assert all(report.accounts[h.payout].debt == report.accounts[h.payout].receivable == 0 for h in households)
    assert report.held == sum(prepaid.values()) == sum(report.ledger.values())
    assert sum(r.allocated for interval in expected.values() for r in interval.values()) > 0
    # the record is daisee's: its CLI (here the web3 7.16 one next to brownie) reports on the brownie-deployed loop
    cli_report = json.loads(venv.run("daisee", "report", "--chain", dev_node.url, "--json", cwd=brownie_project))
    assert cli_report["ledger"] == report.ledger
    total = money(sum(prepaid.values()))
    assert f"the loop holds {total} for its members; their net positions sum to {total}" in printed
    assert all(h.name in printed for h in households)
