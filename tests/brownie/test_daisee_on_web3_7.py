"""The daisee CLI installed next to brownie (web3 7.16) runs a short real flow against anvil."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode
from daisee.domain import meter_id
from tests.brownie.conftest import Venv

pytestmark = pytest.mark.node


def test_the_brownie_venv_has_web3_7(venv: Venv, tmp_path: Path) -> None:
    version = venv.run("python", "-c", "import web3; print(web3.__version__)", cwd=tmp_path)
    assert version.startswith("7.16.")


def test_daisee_deploys_admits_and_reports_on_web3_7(venv: Venv, anvil_node: LocalNode, tmp_path: Path) -> None:
    def daisee(*args: str) -> Any:
        return json.loads(venv.run("daisee", *args, "--chain", anvil_node.url, "--json", cwd=tmp_path))

    signer, payout = Account.from_key(b"\x01" * 32).address, Account.from_key(b"\x02" * 32).address
    deployed = daisee("deploy", "--interval-seconds", "600", "--price", "0.12")
    added = daisee(
        "member", "add", "house-7", "--signer", signer, "--payout", payout, "--kind", "prosumer", "--import-wh", "1200"
    )
    report = daisee("report")
    w3 = connect(anvil_node.url).w3
    admitted_at = w3.eth.get_block(w3.eth.get_transaction_receipt(added["tx_hash"])["blockNumber"])["timestamp"]
    admitted_in = (admitted_at - deployed["parameters"]["genesis"]) // 600

    assert (deployed["network"], deployed["record"]) == ("anvil", "deployments/31337.json")
    assert deployed["parameters"]["interval_seconds"] == 600
    assert added == {
        "meter_id": "0x" + meter_id("house-7").hex(),
        "signer": signer,
        "payout": payout,
        "kind": "prosumer",
        "active": True,
        "import_wh": 1200,
        "export_wh": 0,
        "import_limit_w": 12_000,  # a household's defaults: 12 kVA, 9 kWc
        "export_limit_w": 9_000,
        "active_from": admitted_in,  # a development loop has no notice: it reports from its admission
        "change": None,
        "tx_hash": added["tx_hash"],
        "gas_used": added["gas_used"],
    }
    assert (report["loop"], report["price_per_wh"], report["intervals"]) == (deployed["address"], 120, [])
    assert [(m["meter_id"], m["kind"], m["payout"], m["balance"]) for m in report["members"]] == [
        (added["meter_id"], "prosumer", payout, 0)
    ]
