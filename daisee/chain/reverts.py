"""Turn a contract's revert data into the custom error it names, with its values."""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, is_hex_address, to_checksum_address

from daisee.chain.artifacts import load_artifact

_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")


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


def describe_revert(data: str | bytes | None, contract: str = "EnergyLoop") -> str:
    """`MeterAlreadyRegistered(meterId=0x…)` for revert data of one of `contract`'s errors.

    Unknown data is shown as hex, so nothing is hidden.
    """
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else (data or b"")
    if len(raw) < 4:
        return "reverted without a reason"
    if raw[:4] == _ERROR_STRING:
        return str(decode(["string"], raw[4:])[0])
    if raw[:4] == _PANIC:
        return f"panic 0x{decode(['uint256'], raw[4:])[0]:02x} (a bug: please report it)"
    for item in load_artifact(contract)["abi"]:
        if item["type"] != "error":
            continue
        types = [_canonical_type(i) for i in item["inputs"]]
        if function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})") != raw[:4]:
            continue
        values = decode(types, raw[4:])
        args = ", ".join(f"{i['name']}={_format(v)}" for i, v in zip(item["inputs"], values, strict=True))
        return f"{item['name']}({args})"
    return f"reverted with unknown data 0x{raw.hex()}"
