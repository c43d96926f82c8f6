"""Why a contract reverted: its revert data as the custom error it names, with its values, and the
reason of a transaction found by running it again as a call."""

from __future__ import annotations

import ast
from typing import Any

from eth_abi import decode
from eth_tester.exceptions import TransactionFailed
from eth_utils import function_signature_to_4byte_selector, is_hex_address, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import BlockIdentifier, TxParams

from daisee.chain.artifacts import load_artifact

_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")
# Whose errors a revert may name: a call to the consent registry may revert with the loop's errors too.
CONTRACTS = ("EnergyLoop", "ConsentRegistry")
# What to do about a consent registry's refusal (its one-line message is `Error(values): fix`); the errors it
# shares with the loop (UnknownMeter, NotMeterPayout) read as the loop's.
FIXES = {
    "InvalidSignature": "the message was not signed by this account for this chain and registry: sign it again "
    "with the meter's payout account (a grant) or the consent's grantor (a revocation)",
    "ConsentAlreadyRecorded": "this very message is recorded already: see `daisee consent list`",
    "InvalidAudience": "grant to an account, the loop's members or everyone",
    "GranteeMismatch": "name a grantee account, or grant to the loop's members or to everyone (no account)",
    "InvalidPurpose": "use one of the purposes `daisee consent grant --help` lists",
    "InvalidKinds": "cover at least one of consumption, production, allocation and bill, and nothing else",
    "InvalidGranularity": "use interval, hour, day or month",
    "ConsentExpired": "the consent would be over before it starts: choose an expiry in the future",
    "ConsentTooLong": "choose an earlier expiry",
    "TimeOutOfRange": "choose an expiry before the year 36812",
    "UnknownConsent": "no consent has this id in the loop's registry: see `daisee consent list`",
    "NotGrantor": "only the consent's grantor revokes it: pass --account with its key",
    "ConsentAlreadyRevoked": "nothing to do: it was revoked before",
}


def _canonical_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def _format(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and is_hex_address(value):
        return str(to_checksum_address(value))
    return str(value)


def describe_revert(data: str | bytes | None, contracts: tuple[str, ...] = CONTRACTS) -> str:
    """`MeterAlreadyRegistered(meterId=0x…)` for revert data of one of `contracts`' errors, followed by its fix
    for a consent registry's (`ConsentAlreadyRevoked(consentId=0x…): nothing to do: …`).

    Unknown data is shown as hex, so nothing is hidden.
    """
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else (data or b"")
    if len(raw) < 4:
        return "reverted without a reason"
    if raw[:4] == _ERROR_STRING:
        return str(decode(["string"], raw[4:])[0])
    if raw[:4] == _PANIC:
        return f"panic 0x{decode(['uint256'], raw[4:])[0]:02x} (a bug: please report it)"
    for item in (item for contract in contracts for item in load_artifact(contract)["abi"]):
        if item["type"] != "error":
            continue
        types = [_canonical_type(i) for i in item["inputs"]]
        if function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})") != raw[:4]:
            continue
        values = decode(types, raw[4:])
        args = ", ".join(f"{i['name']}={_format(v)}" for i, v in zip(item["inputs"], values, strict=True))
        said = f"{item['name']}({args})"
        return f"{said}: {FIXES[item['name']]}" if item["name"] in FIXES else said
    return f"reverted with unknown data 0x{raw.hex()}"


def revert_reason(exc: ContractLogicError | TransactionFailed) -> str:
    """The contract's reason, whichever way the node reported it.

    Anvil gives the revert data (a custom error) or the reason string; Ganache puts the data under
    `result`; the embedded chain says `execution reverted: b'<raw data>'`.
    """
    if isinstance(exc, TransactionFailed):
        reason = (str(exc.args[0]) if exc.args else "").removeprefix("execution reverted: ")
        if reason.startswith(("b'", 'b"')):
            return describe_revert(ast.literal_eval(reason))
        return reason or "no reason given"
    data = exc.data.get("result") if isinstance(exc.data, dict) else exc.data
    if isinstance(exc, ContractCustomError) or (isinstance(data, str) and len(data) >= 10):
        return describe_revert(data)
    return str(exc.message or "no reason given").removeprefix("execution reverted: ")


def replayed_revert(w3: Web3, tx: TxParams, block: BlockIdentifier) -> str | None:
    """The contract's reason if `tx`, run as a call on `block`'s state with its own gas, reverts; None if it
    passes. A call the node cannot run (out of gas, say) raises its Web3RPCError."""
    call: Any = {key: tx[key] for key in ("from", "to", "data", "value", "gas") if key in tx}
    try:
        w3.eth.call(call, block)
    except (ContractLogicError, TransactionFailed) as exc:
        return revert_reason(exc)
    return None
