"""Deploy a loop and keep its record in `deployments/<chain-id>.json`.

A record is written only after the deployment succeeded, atomically, and never over an existing
one unless asked. Until then the deployment's journal (`deployments/<chain-id>.pending.json`) lets an
interrupted deploy resume rather than create its contracts twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3.types import TxReceipt

from daisee import __version__
from daisee.chain.compiler import EVM_VERSION
from daisee.chain.connect import Chain
from daisee.chain.evm import evm_version
from daisee.chain.journal import DeploymentJournal
from daisee.chain.transact import Sender
from daisee.consent.model import MAX_DURATION_SECONDS
from daisee.domain import AllocationKey, price_per_kwh
from daisee.errors import DaiseeError

DEPLOYMENTS_DIR = Path("deployments")
LOOP_CONTRACT = "EnergyLoop"
LOOP_LIBRARIES = ("MeterAdmin", "Ledger", "Settlement")  # linked into EnergyLoop, deployed before it
CONSENT_CONTRACT = "ConsentRegistry"  # the loop's members' consents, deployed after it
MIN_GRACE_SECONDS = 60  # EnergyLoop.MIN_GRACE_SECONDS
MAX_PRICE_PER_WH = 2**56 - 1  # EnergyLoop.MAX_PRICE_PER_WH
REAL_NETWORK_NOTICE = 7 * 86_400  # default notice of a loop on a real network: a week
TEST_EURO = "test-euro"  # `token` value: deploy the test euro (development chains only)
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class LoopParameters:
    """What the PMO chooses when creating a loop."""

    interval_seconds: int = 900
    key: AllocationKey = AllocationKey.PRORATA
    price_per_wh: int = 100  # ledger units per Wh: 0.10 per kWh with 6 decimals
    genesis: int | None = None  # start of interval 0; default: the current interval boundary
    grace_seconds: int | None = None  # wait for late readings; default: a third of an interval
    treasury: str | None = None  # the PMO's ledger account; default: the PMO
    token: str | None = TEST_EURO  # settlement ERC-20 address, TEST_EURO, or None for credits only
    notice_seconds: int | None = None  # notice of new meters, key changes, terms; default: 0 on dev chains, a week
    price_cap_per_wh: int | None = None  # the highest price ever; default: twice the price
    consent_max_seconds: int = MAX_DURATION_SECONDS  # the longest consent the loop's registry records

    def resolved_genesis(self, now: int) -> int:
        """The given genesis, or the start of the interval that contains `now`."""
        return self.genesis if self.genesis is not None else now - now % self.interval_seconds

    def resolved_grace(self) -> int:
        if self.grace_seconds is not None:
            return self.grace_seconds
        return max(self.interval_seconds // 3, MIN_GRACE_SECONDS)

    def resolved_notice(self, dev_chain: bool) -> int:
        if self.notice_seconds is not None:
            return self.notice_seconds
        return 0 if dev_chain else REAL_NETWORK_NOTICE

    def resolved_cap(self) -> int:
        if self.price_cap_per_wh is not None:
            return self.price_cap_per_wh
        return max(min(2 * self.price_per_wh, MAX_PRICE_PER_WH), self.price_per_wh, 1)

    def check(self) -> None:
        """Refuse, before spending gas, what the contract would refuse."""
        if self.resolved_grace() < MIN_GRACE_SECONDS:
            raise DaiseeError(
                f"a grace period of {self.resolved_grace()} s is too short for readings to land after an interval "
                f"ends (anyone could finalize it first): give --grace-seconds {MIN_GRACE_SECONDS} or more"
            )
        if not 0 < self.consent_max_seconds < 2**64:
            raise DaiseeError(f"the longest consent must be 1 s to 2^64 - 1 s, not {self.consent_max_seconds} s")
        cap = self.resolved_cap()
        if cap > MAX_PRICE_PER_WH:
            raise DaiseeError(f"a price cap of {cap} units per Wh is beyond what a loop accepts: lower --price-cap")
        if self.price_per_wh > cap:
            raise DaiseeError(
                f"the price ({price_per_kwh(self.price_per_wh)} per kWh) is above the cap "
                f"({price_per_kwh(cap)} per kWh): raise --price-cap or lower --price"
            )

    def constructor_args(self, pmo: str, genesis: int, token: str | None, notice: int) -> tuple[Any, ...]:
        """EnergyLoop's constructor argument: its Config struct."""
        return (
            (
                pmo,
                self.treasury or pmo,
                token or ZERO_ADDRESS,
                genesis,
                self.interval_seconds,
                self.resolved_grace(),
                notice,
                int(self.key),
                self.price_per_wh,
                self.resolved_cap(),
            ),
        )

    def recorded(self, genesis: int, pmo: str, gas_used: int, notice: int) -> dict[str, Any]:
        """The parameters as a deployment record keeps them."""
        return {
            "genesis": genesis,
            "interval_seconds": self.interval_seconds,
            "grace_seconds": self.resolved_grace(),
            "notice_seconds": notice,
            "price_cap_per_wh": self.resolved_cap(),
            "key": self.key.name.lower(),
            "price_per_wh": self.price_per_wh,
            "price_per_kwh": str(price_per_kwh(self.price_per_wh)),
            "treasury": self.treasury or pmo,
            "gas_used": gas_used,
        }


@dataclass
class Deployment:
    """The record of a deployed loop."""

    chain_id: int
    network: str
    address: str
    block: int
    tx_hash: str
    deployer: str
    parameters: dict[str, Any]
    deployed_at: int
    token: str | None = None
    libraries: dict[str, str] = field(default_factory=dict)
    daisee_version: str = field(default=__version__)
    evm_version: str = EVM_VERSION  # which shipped bytecode was deployed (records before london was shipped: shanghai)
    consent_registry: str | None = None  # the loop's ConsentRegistry (records before it was deployed: none)

    def to_json(self) -> str:
        contracts = {LOOP_CONTRACT: self.address} | ({"SettlementToken": self.token} if self.token else {})
        contracts |= self.libraries
        contracts |= {CONSENT_CONTRACT: self.consent_registry} if self.consent_registry else {}
        return json.dumps({"contracts": contracts, **asdict(self)}, indent=2) + "\n"


def record_path(chain_id: int, folder: Path = DEPLOYMENTS_DIR) -> Path:
    return folder / f"{chain_id}.json"


def journal_path(chain_id: int, folder: Path = DEPLOYMENTS_DIR) -> Path:
    """Where an unfinished deployment on `chain_id` notes its contract creations."""
    return folder / f"{chain_id}.pending.json"


def deploy_loop(sender: Sender, params: LoopParameters, journal: Path | None = None) -> Deployment:
    """Deploy an EnergyLoop administered by `sender` (the PMO), the test euro if asked, and the loop's
    ConsentRegistry (no owner: `sender` has no power over it), from the bytecode built for the chain's EVM
    level (see {daisee.chain.evm}).

    With a `journal` file, each creation is noted before it is sent, and a deployment interrupted
    (RPC node lost, process killed) resumes where it was when asked again with the same parameters.
    """
    chain = sender.chain
    if params.token == TEST_EURO and not chain.is_dev:
        raise DaiseeError(
            f"the test euro is for development chains only, not {chain.label}: "
            "pass --token with the address of a real euro token, or --token none"
        )
    params.check()
    asked = {**asdict(params), "key": params.key.name.lower()}
    notes = DeploymentJournal.open(journal, sender.address, asked) if journal else None
    resolved = notes.resolved if notes else {}
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    genesis = resolved.setdefault("genesis", params.resolved_genesis(now))

    def create(name: str, *args: Any, libraries: dict[str, str] | None = None) -> TxReceipt:
        call = sender.constructor(name, *args, libraries=libraries)
        return notes.create(sender, name, call) if notes else sender.transact(call, f"deploying {name}")

    token = params.token
    if token == TEST_EURO:
        token = create("EuroToken")["contractAddress"]
    libraries = {name: str(create(name)["contractAddress"]) for name in LOOP_LIBRARIES}
    notice = params.resolved_notice(chain.is_dev)
    receipt = create(
        LOOP_CONTRACT, *params.constructor_args(sender.address, genesis, token, notice), libraries=libraries
    )
    registry = create(CONSENT_CONTRACT, receipt["contractAddress"], params.consent_max_seconds)["contractAddress"]
    return Deployment(
        chain_id=chain.chain_id,
        network=chain.network or chain.kind,
        address=str(receipt["contractAddress"]),
        block=int(receipt["blockNumber"]),
        tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
        deployer=sender.address,
        parameters=params.recorded(genesis, sender.address, int(receipt["gasUsed"]), notice),
        deployed_at=int(time.time()),
        token=token,
        libraries=libraries,
        evm_version=evm_version(chain),
        consent_registry=str(registry),
    )


def ensure_can_record(chain: Chain, folder: Path = DEPLOYMENTS_DIR, *, force: bool = False) -> None:
    """Refuse, before spending gas, to deploy over an existing record unless `force`."""
    path = record_path(chain.chain_id, folder)
    if path.exists() and not force:
        raise DaiseeError(
            f"a loop is already recorded for chain {chain.chain_id} in {path}: "
            "use it, or pass --force to deploy a new one and replace the record"
        )


def save_deployment(deployment: Deployment, folder: Path = DEPLOYMENTS_DIR) -> Path:
    """Write the record atomically (temporary file, then rename), then forget the deployment's journal."""
    folder.mkdir(parents=True, exist_ok=True)
    path = record_path(deployment.chain_id, folder)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(deployment.to_json())
    tmp.replace(path)
    journal_path(deployment.chain_id, folder).unlink(missing_ok=True)
    return path


def load_deployment(chain: Chain, folder: Path = DEPLOYMENTS_DIR) -> Deployment:
    """The loop recorded for `chain`, checked to still exist on it."""
    path = record_path(chain.chain_id, folder)
    if chain.kind == "embedded":
        raise DaiseeError(
            "the embedded chain lives only inside one command, so it keeps no deployment: "
            "use `daisee demo`, or run a node (`daisee chain start`) and pass --chain anvil"
        )
    try:
        data = json.loads(path.read_text())
        data.pop("contracts", None)
        deployment = Deployment(**data)
        address = to_checksum_address(deployment.address)
    except FileNotFoundError:
        raise DaiseeError(
            f"no loop deployed on chain {chain.chain_id} (no {path}): run `daisee deploy` first"
        ) from None
    except (ValueError, TypeError, AttributeError):
        raise DaiseeError(f"{path} is not a deployment record: remove it and deploy again") from None
    if len(chain.w3.eth.get_code(address)) == 0:
        raise DaiseeError(
            f"no contract at {deployment.address} on chain {chain.chain_id} (was the node reset?): "
            "deploy again with `daisee deploy --force`"
        )
    return deployment
