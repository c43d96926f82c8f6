"""Deployment records: genesis alignment, atomic writes, refusing to overwrite, and checked loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import (
    CONSENT_CONTRACT,
    LOOP_CONTRACT,
    LOOP_LIBRARIES,
    Deployment,
    LoopParameters,
    deploy_loop,
    ensure_can_record,
    load_deployment,
    record_path,
    save_deployment,
)
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey
from daisee.errors import DaiseeError

ANVIL_CHAIN_ID = 31337
NO_CODE_ADDRESS = "0x000000000000000000000000000000000000dEaD"


def offline_chain(chain_id: int = ANVIL_CHAIN_ID, kind: str = "anvil") -> Chain:
    """A Chain value for functions that only read its id and kind; its Web3 is never called."""
    return Chain(Web3(), kind, chain_id, "http://127.0.0.1:1")


def a_deployment(chain_id: int = ANVIL_CHAIN_ID, address: str = NO_CODE_ADDRESS) -> Deployment:
    return Deployment(
        chain_id=chain_id,
        network="anvil",
        address=address,
        block=7,
        tx_hash="0x" + "ab" * 32,
        deployer="0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        parameters={"genesis": 1_700_000_100, "interval_seconds": 900, "key": "prorata", "price_per_wh": 100},
        deployed_at=1_700_000_123,
    )


@pytest.fixture
def anvil(anvil_node: LocalNode) -> Chain:
    return connect(anvil_node.url)


# --- LoopParameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "now", "genesis"),
    [
        (900, 1_700_000_123, 1_700_000_100),
        (900, 1_700_000_100, 1_700_000_100),
        (900, 1_700_000_099, 1_699_999_200),
        (600, 1_000, 600),
        (60, 59, 0),
    ],
)
def test_resolved_genesis_aligns_now_to_the_interval_boundary(interval: int, now: int, genesis: int) -> None:
    resolved = LoopParameters(interval_seconds=interval).resolved_genesis(now)

    assert resolved == genesis
    assert resolved % interval == 0
    assert resolved <= now < resolved + interval


@pytest.mark.parametrize("explicit", [1_234_567, 0])
def test_resolved_genesis_keeps_an_explicit_genesis(explicit: int) -> None:
    assert LoopParameters(genesis=explicit).resolved_genesis(1_700_000_123) == explicit


def test_loop_parameters_default_to_prorata_quarter_hours_at_ten_cents() -> None:
    params = LoopParameters()

    assert (params.interval_seconds, params.key, params.price_per_wh, params.genesis) == (
        900,
        AllocationKey.PRORATA,
        100,
        None,
    )
    assert (params.resolved_grace(), params.resolved_cap()) == (300, 200)  # a third of an interval, twice the price
    assert (params.resolved_notice(dev_chain=True), params.resolved_notice(dev_chain=False)) == (0, 7 * 86_400)


def test_the_constructor_takes_one_config_struct_in_its_field_order() -> None:
    params = LoopParameters(interval_seconds=600, key=AllocationKey.WEIGHTED, price_per_wh=125, grace_seconds=90)
    pmo, token = "0x" + "11" * 20, "0x" + "22" * 20

    assert params.constructor_args(pmo, 1_700_000_400, token, 3600) == (
        (pmo, pmo, token, 1_700_000_400, 600, 90, 3600, int(AllocationKey.WEIGHTED), 125, 250),
    )
    credits_only = LoopParameters(treasury="0x" + "33" * 20, token=None, price_cap_per_wh=1000)
    assert credits_only.constructor_args(pmo, 0, None, 0) == (
        (pmo, "0x" + "33" * 20, "0x" + "00" * 20, 0, 900, 300, 0, 0, 100, 1000),
    )


def test_a_record_names_the_loop_its_token_and_its_linked_libraries(tmp_path: Path) -> None:
    libraries = {name: "0x" + f"{i + 1:02x}" * 20 for i, name in enumerate(LOOP_LIBRARIES)}
    deployment = a_deployment()
    deployment.token, deployment.libraries = "0x" + "ee" * 20, libraries

    data = json.loads(save_deployment(deployment, tmp_path).read_text())

    assert data["contracts"] == {LOOP_CONTRACT: NO_CODE_ADDRESS, "SettlementToken": "0x" + "ee" * 20, **libraries}
    assert data["libraries"] == libraries


# --- save_deployment / ensure_can_record ---------------------------------------------------------


def test_save_deployment_writes_the_record_atomically(tmp_path: Path) -> None:
    folder = tmp_path / "deployments"

    path = save_deployment(a_deployment(), folder)

    assert path == folder / f"{ANVIL_CHAIN_ID}.json"
    assert sorted(p.name for p in folder.iterdir()) == [f"{ANVIL_CHAIN_ID}.json"]  # no .tmp left behind
    data = json.loads(path.read_text())
    assert data["chain_id"] == ANVIL_CHAIN_ID
    assert data["address"] == NO_CODE_ADDRESS
    assert data["parameters"]["interval_seconds"] == 900
    assert data["contracts"] == {LOOP_CONTRACT: NO_CODE_ADDRESS}
    assert data["block"] == 7
    assert "daisee_version" in data


def test_save_deployment_replaces_an_existing_record(tmp_path: Path) -> None:
    save_deployment(a_deployment(address="0x" + "11" * 20), tmp_path)

    path = save_deployment(a_deployment(address="0x" + "22" * 20), tmp_path)

    assert json.loads(path.read_text())["address"] == "0x" + "22" * 20
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_record_path_is_named_after_the_chain_id(tmp_path: Path) -> None:
    assert record_path(11155111, tmp_path) == tmp_path / "11155111.json"


def test_ensure_can_record_allows_when_no_record_exists(tmp_path: Path) -> None:
    ensure_can_record(offline_chain(), tmp_path)  # no exception


def test_ensure_can_record_refuses_an_existing_record_naming_the_file_and_force(tmp_path: Path) -> None:
    path = save_deployment(a_deployment(), tmp_path)

    with pytest.raises(DaiseeError) as excinfo:
        ensure_can_record(offline_chain(), tmp_path)

    message = str(excinfo.value)
    assert str(path) in message
    assert "--force" in message


def test_ensure_can_record_allows_an_existing_record_with_force(tmp_path: Path) -> None:
    save_deployment(a_deployment(), tmp_path)

    ensure_can_record(offline_chain(), tmp_path, force=True)  # no exception


def test_ensure_can_record_only_looks_at_the_record_of_this_chain(tmp_path: Path) -> None:
    save_deployment(a_deployment(chain_id=1), tmp_path)

    ensure_can_record(offline_chain(ANVIL_CHAIN_ID), tmp_path)  # chain 1's record is not in the way


# --- load_deployment -----------------------------------------------------------------------------


def test_load_deployment_refuses_the_embedded_chain(embedded: Chain, tmp_path: Path) -> None:
    save_deployment(a_deployment(chain_id=embedded.chain_id), tmp_path)  # even a record does not help

    with pytest.raises(DaiseeError, match="embedded chain lives only inside one command"):
        load_deployment(embedded, tmp_path)


def test_load_deployment_without_a_record_points_to_daisee_deploy(anvil: Chain, tmp_path: Path) -> None:
    with pytest.raises(DaiseeError) as excinfo:
        load_deployment(anvil, tmp_path)

    message = str(excinfo.value)
    assert "`daisee deploy`" in message
    assert str(record_path(anvil.chain_id, tmp_path)) in message


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", json.dumps({"chain_id": ANVIL_CHAIN_ID}), json.dumps({"unexpected": 1})],
)
def test_load_deployment_rejects_a_corrupt_record(content: str, anvil: Chain, tmp_path: Path) -> None:
    record_path(anvil.chain_id, tmp_path).write_text(content)

    with pytest.raises(DaiseeError, match="is not a deployment record"):
        load_deployment(anvil, tmp_path)


@pytest.mark.parametrize("broken", ["scalar", "address"])
def test_load_deployment_rejects_a_record_with_the_wrong_shape(broken: str, anvil: Chain, tmp_path: Path) -> None:
    path = save_deployment(a_deployment(address="not-an-address"), tmp_path)
    if broken == "scalar":
        path.write_text('"just a string"')

    with pytest.raises(DaiseeError, match="deployment record"):
        load_deployment(anvil, tmp_path)


def test_load_deployment_rejects_a_record_whose_address_has_no_code(anvil: Chain, tmp_path: Path) -> None:
    save_deployment(a_deployment(chain_id=anvil.chain_id), tmp_path)

    with pytest.raises(DaiseeError) as excinfo:
        load_deployment(anvil, tmp_path)

    message = str(excinfo.value)
    assert f"no contract at {NO_CODE_ADDRESS}" in message
    assert "--force" in message


def test_a_real_deployment_saved_then_loaded_round_trips(anvil: Chain, tmp_path: Path) -> None:
    params = LoopParameters(interval_seconds=600, key=AllocationKey.STATIC, price_per_wh=125)

    deployment = deploy_loop(Sender.dev(anvil), params)
    save_deployment(deployment, tmp_path)
    loaded = load_deployment(anvil, tmp_path)

    assert loaded == deployment
    assert loaded.chain_id == ANVIL_CHAIN_ID
    assert loaded.network == "anvil"
    assert loaded.deployer == anvil.dev_accounts()[0]
    assert len(anvil.w3.eth.get_code(loaded.address)) > 0
    assert loaded.parameters["genesis"] % 600 == 0
    assert loaded.parameters["key"] == "static"
    assert loaded.parameters["price_per_wh"] == 125
    assert loaded.parameters["price_per_kwh"] == "0.125"
    assert loaded.parameters["gas_used"] > 0
    assert (loaded.parameters["notice_seconds"], loaded.parameters["price_cap_per_wh"]) == (0, 250)  # a dev chain
    assert loaded.parameters["grace_seconds"] == 200
    receipt = anvil.w3.eth.get_transaction_receipt(loaded.tx_hash)
    assert receipt["contractAddress"] == loaded.address
    assert receipt["blockNumber"] == loaded.block


def test_a_real_deployment_links_the_libraries_it_records(anvil: Chain, tmp_path: Path) -> None:
    deployment = deploy_loop(Sender.dev(anvil), LoopParameters(token=None))
    save_deployment(deployment, tmp_path)

    loaded = load_deployment(anvil, tmp_path)

    assert list(loaded.libraries) == list(LOOP_LIBRARIES)
    assert len(set(loaded.libraries.values())) == len(LOOP_LIBRARIES)
    code = bytes(anvil.w3.eth.get_code(loaded.address)).hex()
    for name, address in loaded.libraries.items():
        assert len(anvil.w3.eth.get_code(address)) > 0
        assert address.lower().removeprefix("0x") in code, f"{name} is not linked into the loop"
    assert loaded.token is None
    assert loaded.consent_registry is not None
    registry = anvil.w3.eth.contract(address=loaded.consent_registry, abi=load_artifact(CONSENT_CONTRACT)["abi"])
    assert registry.functions.loop().call() == loaded.address
    assert json.loads(record_path(anvil.chain_id, tmp_path).read_text())["contracts"] == {
        LOOP_CONTRACT: loaded.address,
        **loaded.libraries,
        CONSENT_CONTRACT: loaded.consent_registry,
    }


def test_a_record_from_before_the_consent_registry_still_loads(anvil: Chain, tmp_path: Path) -> None:
    deployment = deploy_loop(Sender.dev(anvil), LoopParameters(token=None))
    old = json.loads(deployment.to_json())
    del old["consent_registry"], old["contracts"][CONSENT_CONTRACT]
    record_path(anvil.chain_id, tmp_path).write_text(json.dumps(old))

    loaded = load_deployment(anvil, tmp_path)

    assert loaded.consent_registry is None
    assert loaded.address == deployment.address
    assert CONSENT_CONTRACT not in json.loads(loaded.to_json())["contracts"]
