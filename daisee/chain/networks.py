"""Named network profiles: which chain, where its RPC URL comes from, and how to send transactions there.

A profile never holds the RPC URL itself (providers put API keys in it): it names the environment
variable that does. Built-in profiles cover the chains a loop is likely to live on; a PMO adds or
overrides profiles in `$DAISEE_HOME/networks.toml` (or the file named by `$DAISEE_NETWORKS`):

    [networks.regie]                 # a private proof-of-authority chain run by the régie
    chain_id = 8995
    rpc_env = "REGIE_RPC_URL"
    confirmations = 1
    fees = "legacy"
    gas_price_gwei = 0               # free gas on a permissioned chain
    evm_version = "london"           # geth's Clique has no PUSH0; leave it out to have the node asked
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from daisee.chain.accounts import daisee_home
from daisee.chain.compiler import EVM_VERSIONS
from daisee.errors import DaiseeError

NETWORKS_ENV = "DAISEE_NETWORKS"
FEE_MODES = ("auto", "eip1559", "legacy")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class TxPolicy:
    """How transactions are priced, sent and awaited on one chain."""

    confirmations: int = 0  # blocks on top of the one that includes a transaction (0: the receipt is enough)
    fees: str = "auto"  # auto: EIP-1559 where blocks carry a base fee, else a legacy gas price
    gas_price_gwei: Decimal | None = None  # a fixed legacy gas price (permissioned chains), else the node's
    max_fee_gwei: Decimal | None = None  # never offer more than this per gas
    receipt_timeout: float = 300.0  # give up waiting for a transaction after this many seconds
    replace_after: float = 60.0  # re-send a transaction the node lost, or bump its fee, after this many seconds
    poll_seconds: float = 1.0  # how often to look for a receipt


DEV_POLICY = TxPolicy(receipt_timeout=120.0, replace_after=20.0, poll_seconds=0.05)


@dataclass(frozen=True)
class Network:
    """A named chain: its id, the environment variable holding its RPC URL, its transaction policy, and
    the EVM level it runs (None: ask the node, see {daisee.chain.evm})."""

    name: str
    chain_id: int
    rpc_env: str
    description: str = ""
    policy: TxPolicy = field(default_factory=TxPolicy)
    evm_version: str | None = None

    def rpc_url(self) -> str:
        """The RPC URL from the environment; a clear error when it is missing."""
        url = os.environ.get(self.rpc_env, "").strip()
        if not url:
            raise DaiseeError(
                f"network {self.name!r} takes its RPC URL from ${self.rpc_env}, which is not set: "
                f"export {self.rpc_env}=https://… (your node or provider)"
            )
        return url


BUILT_IN = {
    n.name: n
    for n in (
        # Energy Web's Aura chainspecs stop at London (no EIP-3855 PUSH0 transition)
        Network("ewc", 246, "EWC_RPC_URL", "Energy Web Chain", TxPolicy(confirmations=2), "london"),
        Network("volta", 73799, "VOLTA_RPC_URL", "Energy Web Volta testnet", TxPolicy(confirmations=1), "london"),
        Network("gnosis", 100, "GNOSIS_RPC_URL", "Gnosis Chain", TxPolicy(confirmations=2), "shanghai"),
        Network("chiado", 10200, "CHIADO_RPC_URL", "Gnosis Chiado testnet", TxPolicy(confirmations=1), "shanghai"),
        Network(
            "sepolia", 11155111, "SEPOLIA_RPC_URL", "Ethereum Sepolia testnet", TxPolicy(confirmations=2), "shanghai"
        ),
    )
}


def networks_file() -> Path:
    """The user's profiles: `$DAISEE_NETWORKS`, else `$DAISEE_HOME/networks.toml`."""
    return Path(os.environ.get(NETWORKS_ENV) or daisee_home() / "networks.toml")


def load_networks(path: Path | None = None) -> dict[str, Network]:
    """Built-in profiles, overridden and extended by the user's file when it exists."""
    path = path or networks_file()
    networks = dict(BUILT_IN)
    if not path.exists():
        return networks
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise DaiseeError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DaiseeError(f"{path} is not valid TOML ({exc}): fix it or remove it") from None
    table = data.get("networks", {})
    if not isinstance(table, dict) or set(data) - {"networks"}:
        raise DaiseeError(f"{path}: put each profile in a [networks.NAME] table")
    for name, entry in table.items():
        networks[name] = _parse_profile(name, entry, networks.get(name), path)
    return networks


def find_network(name: str, path: Path | None = None) -> Network | None:
    """The profile called `name`, or None when there is none."""
    return load_networks(path).get(name)


_POLICY_KEYS = {f.name for f in fields(TxPolicy)}


def _parse_profile(name: str, entry: Any, base: Network | None, path: Path) -> Network:
    where = f"{path}, network {name!r}"
    if not _NAME.match(name):
        raise DaiseeError(f"{where}: a profile name is lowercase letters, digits, - and _")
    if not isinstance(entry, dict):
        raise DaiseeError(f"{where}: expected a table of settings")
    unknown = set(entry) - _POLICY_KEYS - {"chain_id", "rpc_env", "description", "evm_version"}
    if unknown:
        raise DaiseeError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    chain_id = entry.get("chain_id", base.chain_id if base else None)
    rpc_env = entry.get("rpc_env", base.rpc_env if base else None)
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
        raise DaiseeError(f"{where}: chain_id must be a positive integer")
    if not isinstance(rpc_env, str) or not _ENV_NAME.match(rpc_env):
        raise DaiseeError(f"{where}: rpc_env must name an environment variable, like MY_CHAIN_RPC_URL")
    policy = replace(base.policy if base else TxPolicy(), **_policy_settings(entry, where))
    description = str(entry.get("description", base.description if base else ""))
    evm_version = entry.get("evm_version", base.evm_version if base else None)
    if evm_version is not None and evm_version not in EVM_VERSIONS:
        raise DaiseeError(f"{where}: evm_version must be one of {', '.join(EVM_VERSIONS)} (or left out to probe)")
    return Network(name, chain_id, rpc_env, description, policy, evm_version)


def _policy_settings(entry: dict[str, Any], where: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if "confirmations" in entry:
        settings["confirmations"] = _count(entry["confirmations"], "confirmations", where)
    if "fees" in entry:
        if entry["fees"] not in FEE_MODES:
            raise DaiseeError(f"{where}: fees must be one of {', '.join(FEE_MODES)}")
        settings["fees"] = entry["fees"]
    for key in ("gas_price_gwei", "max_fee_gwei"):
        if key in entry:
            settings[key] = gwei_setting(entry[key], f"{where}: {key}")
    for key in ("receipt_timeout", "replace_after", "poll_seconds"):
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise DaiseeError(f"{where}: {key} must be a positive number of seconds")
            settings[key] = float(value)
    return settings


def _count(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
        raise DaiseeError(f"{where}: {key} must be a whole number from 0 to 64")
    return value


def gwei_setting(value: Any, what: str) -> Decimal:
    """A non-negative amount of gwei (per gas), from TOML or the command line."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal(-1)
    if isinstance(value, bool) or not amount.is_finite() or amount < 0:
        raise DaiseeError(f"{what} must be a non-negative number of gwei, like 1.5")
    return amount
