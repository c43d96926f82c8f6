"""Network profiles: built-in ones, the user's networks.toml, and a clear line for every mistake in it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from daisee.chain.connect import connect
from daisee.chain.networks import BUILT_IN, TxPolicy, find_network, load_networks, networks_file
from daisee.errors import DaiseeError


def write_profiles(home: Path, text: str) -> Path:
    path = home / "networks.toml"
    path.write_text(text)
    return path


def test_built_in_profiles_name_the_chains_a_loop_lives_on() -> None:
    networks = load_networks()
    assert {n: p.chain_id for n, p in networks.items()} == {
        "ewc": 246,
        "volta": 73799,
        "gnosis": 100,
        "chiado": 10200,
        "sepolia": 11155111,
    }
    assert networks["ewc"].rpc_env == "EWC_RPC_URL"
    assert networks["ewc"].policy.confirmations == 2


def test_built_in_profiles_name_the_evm_level_of_their_chain() -> None:
    levels = {name: profile.evm_version for name, profile in load_networks().items()}

    # Energy Web's Aura chains stop at London (no PUSH0); Gnosis and Ethereum's testnets run Shanghai and later
    assert levels == {
        "ewc": "london",
        "volta": "london",
        "gnosis": "shanghai",
        "chiado": "shanghai",
        "sepolia": "shanghai",
    }


def test_user_profiles_add_and_override(isolated_home: Path) -> None:
    write_profiles(
        isolated_home,
        """
[networks.regie]
chain_id = 8995
rpc_env = "REGIE_RPC_URL"
fees = "legacy"
gas_price_gwei = 0
confirmations = 1
description = "the régie's PoA chain"
evm_version = "london"

[networks.lab]
chain_id = 1337
rpc_env = "LAB_RPC_URL"

[networks.ewc]
confirmations = 5
max_fee_gwei = 2.5
""",
    )
    networks = load_networks()
    regie = networks["regie"]
    assert (regie.chain_id, regie.rpc_env, regie.description) == (8995, "REGIE_RPC_URL", "the régie's PoA chain")
    assert regie.policy == TxPolicy(confirmations=1, fees="legacy", gas_price_gwei=Decimal(0))
    assert regie.evm_version == "london"
    assert networks["lab"].evm_version is None  # its node is asked
    ewc = networks["ewc"]
    assert (ewc.chain_id, ewc.rpc_env, ewc.evm_version) == (246, "EWC_RPC_URL", "london")  # kept from the built-in
    assert ewc.policy.confirmations == 5
    assert ewc.policy.max_fee_gwei == Decimal("2.5")
    assert find_network("nowhere") is None


def test_networks_file_can_be_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('[networks.lab]\nchain_id = 1234\nrpc_env = "LAB_URL"\n')
    monkeypatch.setenv("DAISEE_NETWORKS", str(path))
    assert networks_file() == path
    assert load_networks()["lab"].chain_id == 1234


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[networks.lab\n", "is not valid TOML"),
        ("chain_id = 3\n", "put each profile in a [networks.NAME] table"),
        ('[networks.Lab]\nchain_id = 3\nrpc_env = "X"\n', "a profile name is lowercase"),
        ('[networks.lab]\nrpc_env = "LAB_URL"\n', "chain_id must be a positive integer"),
        ('[networks.lab]\nchain_id = "5"\nrpc_env = "LAB_URL"\n', "chain_id must be a positive integer"),
        ('[networks.lab]\nchain_id = 5\nrpc_env = "http://x"\n', "rpc_env must name an environment variable"),
        ('[networks.lab]\nchain_id = 5\nrpc_env = "L"\nrpc_url = "http://x"\n', "unknown setting 'rpc_url'"),
        ('[networks.lab]\nchain_id = 5\nrpc_env = "L"\nfees = "cheap"\n', "fees must be one of auto, eip1559, legacy"),
        ('[networks.lab]\nchain_id = 5\nrpc_env = "L"\nconfirmations = -1\n', "confirmations must be a whole number"),
        ('[networks.lab]\nchain_id = 5\nrpc_env = "L"\nmax_fee_gwei = "lots"\n', "max_fee_gwei must be a non-negative"),
        ('[networks.lab]\nchain_id = 5\nrpc_env = "L"\nreplace_after = 0\n', "replace_after must be a positive"),
        (
            '[networks.lab]\nchain_id = 5\nrpc_env = "L"\nevm_version = "paris"\n',
            "evm_version must be one of shanghai, london",
        ),
    ],
)
def test_a_bad_profile_file_is_named_with_the_fix(isolated_home: Path, text: str, message: str) -> None:
    path = write_profiles(isolated_home, text)
    with pytest.raises(DaiseeError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        load_networks()
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_wrong_network_name_lists_what_exists() -> None:
    with pytest.raises(DaiseeError, match=r"unknown chain 'volte'.*ewc, volta, gnosis, chiado, sepolia"):
        connect("volte")


def test_profile_without_its_rpc_url_says_which_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOLTA_RPC_URL", raising=False)
    with pytest.raises(DaiseeError, match=r"\$VOLTA_RPC_URL, which is not set: export VOLTA_RPC_URL="):
        connect("volta")


def test_profile_names_the_variable_when_its_node_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLTA_RPC_URL", "http://127.0.0.1:9/secret-key")
    with pytest.raises(DaiseeError, match=r"cannot reach .* http://127.0.0.1:9: check \$VOLTA_RPC_URL") as caught:
        connect("volta", timeout=2)
    assert "secret-key" not in str(caught.value)


def test_built_in_names_are_all_valid_profile_names() -> None:
    for name, network in BUILT_IN.items():
        assert name == network.name
        assert network.policy.receipt_timeout > network.policy.replace_after > 0
