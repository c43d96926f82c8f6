"""Meter readings signed with EIP-712, byte for byte as the EnergyLoop contract verifies them.

The hot path (a gateway signs every interval, a relay verifies thousands a minute) hashes with plain
`keccak` over hand-packed ABI words; `typed_data` builds the equivalent EIP-712 JSON for wallets and docs.
Signatures travel in EIP-2098 compact form (r, vs), as OpenZeppelin's `ECDSA.tryRecover(hash, r, vs)` takes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from coincurve import PublicKey
from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from sha3 import keccak_256

from daisee.domain import address
from daisee.errors import DaiseeError


def keccak(data: bytes) -> bytes:
    """Keccak-256, by safe-pysha3's C code: eth-hash's pycryptodome backend costs ten times more a call, and a
    relay hashes three times a reading."""
    return bytes(keccak_256(data).digest())


DOMAIN_NAME = "daisee EnergyLoop"
DOMAIN_VERSION = "1"
DOMAIN_FIELDS = (("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address"))
READING_FIELDS = (("meterId", "bytes32"), ("interval", "uint32"), ("importWh", "uint64"), ("exportWh", "uint64"))


def _type_string(name: str, fields: tuple[tuple[str, str], ...]) -> str:
    return f"{name}({','.join(f'{kind} {member}' for member, kind in fields)})"


DOMAIN_TYPE = _type_string("EIP712Domain", DOMAIN_FIELDS)
READING_TYPE = _type_string("Reading", READING_FIELDS)
DOMAIN_TYPEHASH = keccak(DOMAIN_TYPE.encode())
READING_TYPEHASH = keccak(READING_TYPE.encode())

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2  # the largest s OpenZeppelin's ECDSA accepts
_V_BIT = 1 << 255
RECOVERED = 1 << 14  # signatures whose signer is remembered
_JSON_KEYS = ("meter_id", "interval", "import_wh", "export_wh", "r", "vs")
_READING_KEYS = _JSON_KEYS[:4]
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX65 = re.compile(r"0x[0-9a-fA-F]{130}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")  # how ethers and eth_signTypedData_v4 clients write a uint64


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class LoopDomain:
    """The EIP-712 domain of one loop on one chain; a signature is worthless under any other."""

    chain_id: int
    loop: str
    _separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.chain_id) is not int or not 0 < self.chain_id < 2**256:
            raise DaiseeError(f"chain id {self.chain_id!r} is not a positive whole number: give the chain's id, e.g. 1")
        loop = address(self.loop, "loop address")
        object.__setattr__(self, "loop", loop)
        encoded = (
            DOMAIN_TYPEHASH
            + keccak(DOMAIN_NAME.encode())
            + keccak(DOMAIN_VERSION.encode())
            + _word(self.chain_id)
            + bytes(12)
            + bytes.fromhex(loop[2:])
        )
        object.__setattr__(self, "_separator", keccak(encoded))

    def separator(self) -> bytes:
        """The EIP-712 domain separator (computed once)."""
        return self._separator

    def as_json(self) -> dict[str, Any]:
        """The `domain` member of the EIP-712 JSON message."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.loop,
        }


def _check_uint(name: str, value: object, bits: int) -> None:
    top = 2**bits - 1
    if type(value) is not int:
        raise DaiseeError(f"reading {name} {value!r} is not a whole number: give an integer from 0 to {top}")
    if not 0 <= value <= top:
        raise DaiseeError(f"reading {name} {value} is out of range: give an integer from 0 to {top}")


@dataclass(frozen=True)
class Reading:
    """A meter's cumulative import and export indices (Wh) at the end of an interval."""

    meter_id: bytes
    interval: int
    import_wh: int
    export_wh: int

    def __post_init__(self) -> None:
        if not isinstance(self.meter_id, bytes) or len(self.meter_id) != 32:
            size = f"{len(self.meter_id)} bytes" if isinstance(self.meter_id, bytes) else type(self.meter_id).__name__
            raise DaiseeError(f"reading meter_id is {size}: give exactly 32 bytes (see daisee.domain.meter_id)")
        object.__setattr__(self, "meter_id", bytes(self.meter_id))
        _check_uint("interval", self.interval, 32)
        _check_uint("import_wh", self.import_wh, 64)
        _check_uint("export_wh", self.export_wh, 64)

    def struct_hash(self) -> bytes:
        """EIP-712 `hashStruct(Reading)`."""
        return keccak(
            READING_TYPEHASH + self.meter_id + _word(self.interval) + _word(self.import_wh) + _word(self.export_wh)
        )

    def digest(self, domain: LoopDomain) -> bytes:
        """The 32-byte hash that is signed: keccak256(0x1901 ‖ domain separator ‖ struct hash)."""
        return keccak(b"\x19\x01" + domain.separator() + self.struct_hash())

    def typed_data(self, domain: LoopDomain) -> dict[str, Any]:
        """The full EIP-712 message, as wallets and `eth_account.messages.encode_typed_data` take it."""
        return {
            "types": {
                "EIP712Domain": [{"name": member, "type": kind} for member, kind in DOMAIN_FIELDS],
                "Reading": [{"name": member, "type": kind} for member, kind in READING_FIELDS],
            },
            "primaryType": "Reading",
            "domain": domain.as_json(),
            "message": {
                "meterId": "0x" + self.meter_id.hex(),
                "interval": self.interval,
                "importWh": self.import_wh,
                "exportWh": self.export_wh,
            },
        }

    def sign(self, private_key: PrivateKey | bytes | str, domain: LoopDomain) -> SignedReading:
        """Sign for `domain`; an `eth_keys` `PrivateKey` signs about twice as fast as raw key bytes."""
        signed = Account.unsafe_sign_hash(self.digest(domain), private_key)
        return SignedReading.from_signature(self, bytes(signed.signature))


@dataclass(frozen=True)
class SignedReading:
    """A reading with its EIP-2098 compact signature: `vs` is s with the top bit set when v is 28."""

    reading: Reading
    r: bytes
    vs: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.reading, Reading):
            raise DaiseeError(f"signed reading holds a {type(self.reading).__name__}, not a Reading")
        for name in ("r", "vs"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise DaiseeError(f"signed reading {name} is not 32 bytes: give the signature's {name} as a bytes32")
            object.__setattr__(self, name, bytes(value))

    @classmethod
    def from_signature(cls, reading: Reading, signature: bytes) -> SignedReading:
        """From a 65-byte r ‖ s ‖ v signature (v = 27, 28, 0 or 1); malleable high-s signatures are refused."""
        if len(signature) != 65:
            raise DaiseeError(f"signature is {len(signature)} bytes: give the 65-byte r, s, v signature")
        v = signature[64]
        if v not in (0, 1, 27, 28):
            raise DaiseeError(f"signature v is {v}: give a signature whose v is 27 or 28 (or 0 or 1)")
        s = int.from_bytes(signature[32:64], "big")
        if s > _HALF_N:
            raise DaiseeError("signature s is in the upper half of the curve order (malleable): re-sign the reading")
        vs = s | (_V_BIT if v in (1, 28) else 0)
        return cls(reading, signature[:32], _word(vs))

    def signature(self) -> bytes:
        """The 65-byte r ‖ s ‖ v form (v = 27 or 28)."""
        vs = int.from_bytes(self.vs, "big")
        return self.r + _word(vs & (_V_BIT - 1)) + bytes([27 + (vs >> 255)])

    def recover(self, domain: LoopDomain) -> ChecksumAddress | None:
        """The signer's address, or None where OpenZeppelin's `ECDSA.tryRecover(hash, r, vs)` would fail."""
        recovered = _recover(self.reading.digest(domain), self.r, self.vs)
        return None if recovered is None else to_checksum_address(recovered)

    def verify(self, domain: LoopDomain, signer: str) -> bool:
        """Whether `signer` (any letter case) signed this reading for `domain`."""
        recovered = _recover(self.reading.digest(domain), self.r, self.vs)
        return recovered is not None and "0x" + recovered.hex() == signer.lower()

    def as_call_arg(self) -> tuple[bytes, int, int, int, bytes, bytes]:
        """The Solidity struct `SignedReading(meterId, interval, importWh, exportWh, r, vs)` as web3 takes it."""
        reading = self.reading
        return (reading.meter_id, reading.interval, reading.import_wh, reading.export_wh, self.r, self.vs)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: bytes as 0x-hex strings, numbers as integers."""
        reading = self.reading
        return {
            "meter_id": "0x" + reading.meter_id.hex(),
            "interval": reading.interval,
            "import_wh": reading.import_wh,
            "export_wh": reading.export_wh,
            "r": "0x" + self.r.hex(),
            "vs": "0x" + self.vs.hex(),
        }

    @classmethod
    def from_json(cls, data: object) -> SignedReading:
        """The inverse of `to_json`, for untrusted input; the signature itself is checked by `recover`.

        Also takes what JavaScript clients send: numbers as decimal strings, and a 65-byte `signature`
        (r ‖ s ‖ v, as ethers' `signTypedData` and `eth_signTypedData_v4` give it) instead of `r` and `vs`.
        """
        shape = f"give a JSON object with keys {', '.join(_JSON_KEYS)} (or signature instead of r and vs)"
        if not isinstance(data, dict):
            raise DaiseeError(f"signed reading is a {type(data).__name__}: {shape}")
        signature_keys = ("signature",) if "signature" in data else ("r", "vs")
        expected = (*_READING_KEYS, *signature_keys)
        missing = [key for key in expected if key not in data]
        extra = sorted(str(key) for key in data if key not in expected)
        if missing or extra:
            problem = f"missing key {missing[0]!r}" if missing else f"unknown key {extra[0]!r}"
            raise DaiseeError(f"signed reading has {problem}: {shape}")
        numbers = {key: _whole_number(key, data[key]) for key in ("interval", "import_wh", "export_wh")}
        reading = Reading(_bytes32("meter_id", data["meter_id"]), **numbers)
        if "signature" in data:
            value = data["signature"]
            if not isinstance(value, str) or not _HEX65.fullmatch(value):
                raise DaiseeError(f"signed reading signature {value!r} is not 0x + 130 hex digits: give r ‖ s ‖ v")
            return cls.from_signature(reading, bytes.fromhex(value[2:]))
        return cls(reading, _bytes32("r", data["r"]), _bytes32("vs", data["vs"]))


def _whole_number(key: str, value: object) -> int:
    """A JSON integer, or the decimal string a JavaScript client writes for a 64-bit one."""
    if type(value) is int:
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    raise DaiseeError(f"signed reading {key} {value!r} is not a whole number: give a JSON integer or decimal string")


def _bytes32(key: str, value: object) -> bytes:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise DaiseeError(f"signed reading {key} {value!r} is not 0x + 64 hex digits: give a hex bytes32")
    return bytes.fromhex(value[2:])


@lru_cache(maxsize=RECOVERED)
def _recover(digest: bytes, r_word: bytes, vs_word: bytes) -> bytes | None:
    """The 20-byte address that signed `digest` with (r, vs), by libsecp256k1 itself, remembered: a relay
    checks a reading when it arrives and again when it batches it."""
    r = int.from_bytes(r_word, "big")
    vs = int.from_bytes(vs_word, "big")
    s = vs & (_V_BIT - 1)
    if not (0 < r < SECP256K1_N and 0 < s <= _HALF_N):
        return None
    try:
        key = PublicKey.from_signature_and_message(r_word + _word(s) + bytes([vs >> 255]), digest, hasher=None)
    except ValueError:  # r is no point's x: no key signs so
        return None
    return keccak(key.format(compressed=False)[1:])[12:]
