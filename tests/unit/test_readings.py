"""Signed readings: EIP-712 hashing, compact signatures, recovery as OpenZeppelin's ECDSA does it, and JSON."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys.backends.native import NativeECCBackend
from eth_keys.datatypes import PrivateKey, Signature
from eth_keys.exceptions import BadSignature
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from daisee.errors import DaiseeError
from daisee.readings import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    READING_TYPE,
    READING_TYPEHASH,
    SECP256K1_N,
    LoopDomain,
    Reading,
    SignedReading,
)

KNOWN_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KNOWN_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
LOOP = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_LOOP = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
DOMAIN = LoopDomain(31337, LOOP)
METER = bytes.fromhex("11" * 32)
READING = Reading(METER, 7, 123_456, 789)
# The digest of READING under DOMAIN; the contract tests can pin the same value.
KNOWN_DIGEST = "90fbe4c0739cef2b3420cfafc080264ab38dcd4111b737519badd285cf74a4e4"

SECP256K1_P = 2**256 - 2**32 - 977
HALF_N = SECP256K1_N // 2
V_BIT = 1 << 255

readings = st.builds(
    Reading,
    meter_id=st.binary(min_size=32, max_size=32),
    interval=st.integers(0, 2**32 - 1),
    import_wh=st.integers(0, 2**64 - 1),
    export_wh=st.integers(0, 2**64 - 1),
)
private_keys = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
domains = st.builds(
    LoopDomain,
    chain_id=st.integers(1, 2**256 - 1),
    loop=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
)


def signed_with_v(v: int) -> SignedReading:
    """A reading signed by KNOWN_KEY whose signature has the given v, found by trying intervals."""
    for interval in range(64):
        signed = dataclasses.replace(READING, interval=interval).sign(KNOWN_KEY, DOMAIN)
        if signed.signature()[64] == v:
            return signed
    raise AssertionError(f"no interval below 64 gives v = {v}")


def with_vs(signed: SignedReading, r: int, s: int, v_bit: int) -> SignedReading:
    return SignedReading(signed.reading, r.to_bytes(32, "big"), (s | v_bit << 255).to_bytes(32, "big"))


def x_off_the_curve() -> int:
    """The smallest x with no point (x, y) on secp256k1: x³ + 7 is not a square mod p."""
    return next(x for x in range(1, 100) if pow(x**3 + 7, (SECP256K1_P - 1) // 2, SECP256K1_P) == SECP256K1_P - 1)


# --- hashing -----------------------------------------------------------------------------------------------------


def test_reading_type_and_typehash_are_the_contracts() -> None:
    assert READING_TYPE == "Reading(bytes32 meterId,uint32 interval,uint64 importWh,uint64 exportWh)"
    assert keccak(text=READING_TYPE) == READING_TYPEHASH
    assert (DOMAIN_NAME, DOMAIN_VERSION) == ("daisee EnergyLoop", "1")


def test_known_digest_matches_an_independent_eth_abi_computation() -> None:
    domain_typehash = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    separator = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [domain_typehash, keccak(text="daisee EnergyLoop"), keccak(text="1"), 31337, LOOP],
        )
    )
    reading_typehash = keccak(text="Reading(bytes32 meterId,uint32 interval,uint64 importWh,uint64 exportWh)")
    struct_hash = keccak(
        encode(["bytes32", "bytes32", "uint32", "uint64", "uint64"], [reading_typehash, METER, 7, 123_456, 789])
    )
    digest = keccak(b"\x19\x01" + separator + struct_hash)

    assert DOMAIN.separator() == separator
    assert READING.struct_hash() == struct_hash
    assert READING.digest(DOMAIN) == digest
    assert digest.hex() == KNOWN_DIGEST


@settings(max_examples=50)
@given(reading=readings, domain=domains)
def test_digest_equals_eth_account_hash_of_the_typed_data(reading: Reading, domain: LoopDomain) -> None:
    signable = encode_typed_data(full_message=reading.typed_data(domain))

    assert _hash_eip191_message(signable) == reading.digest(domain)


def test_signature_equals_eth_account_sign_typed_data() -> None:
    expected = Account.sign_typed_data(KNOWN_KEY, full_message=READING.typed_data(DOMAIN))

    assert READING.sign(KNOWN_KEY, DOMAIN).signature() == bytes(expected.signature)


def test_loop_domain_checksums_the_loop_address() -> None:
    assert LoopDomain(1, LOOP.lower()).loop == LOOP
    assert LoopDomain(1, LOOP.lower()) == LoopDomain(1, LOOP)


@pytest.mark.parametrize(
    ("chain_id", "loop"),
    [(0, LOOP), (-1, LOOP), (2**256, LOOP), ("1", LOOP), (1, "0x1234"), (1, LOOP.replace("F", "f", 1))],
)
def test_loop_domain_rejects_bad_chain_ids_and_addresses(chain_id: Any, loop: str) -> None:
    with pytest.raises(DaiseeError):
        LoopDomain(chain_id, loop)


# --- signing and recovery ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KNOWN_KEY, bytes.fromhex(KNOWN_KEY[2:]), PrivateKey(bytes.fromhex(KNOWN_KEY[2:]))])
def test_sign_then_recover_gives_the_signers_address(key: Any) -> None:
    signed = READING.sign(key, DOMAIN)

    assert signed.recover(DOMAIN) == KNOWN_ADDRESS
    assert signed.verify(DOMAIN, KNOWN_ADDRESS)
    assert signed.verify(DOMAIN, KNOWN_ADDRESS.lower())


@pytest.mark.parametrize(
    "field",
    ["chain id", "loop", "meter", "interval", "import index", "export index"],
)
def test_signature_does_not_carry_over_to_another_domain_or_reading(field: str) -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)
    domain, reading = DOMAIN, READING
    if field == "chain id":
        domain = LoopDomain(1, LOOP)
    elif field == "loop":
        domain = LoopDomain(DOMAIN.chain_id, OTHER_LOOP)
    elif field == "meter":
        reading = dataclasses.replace(READING, meter_id=bytes.fromhex("22" * 32))
    elif field == "interval":
        reading = dataclasses.replace(READING, interval=READING.interval + 1)
    elif field == "import index":
        reading = dataclasses.replace(READING, import_wh=READING.import_wh + 1)
    else:
        reading = dataclasses.replace(READING, export_wh=READING.export_wh + 1)
    moved = dataclasses.replace(signed, reading=reading)

    assert moved.recover(domain) != KNOWN_ADDRESS
    assert not moved.verify(domain, KNOWN_ADDRESS)


def test_verify_is_false_for_another_signer() -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)

    assert not signed.verify(DOMAIN, Account.create().address)


@pytest.mark.parametrize("v", [27, 28])
def test_compact_signature_round_trips_for_both_parities(v: int) -> None:
    signed = signed_with_v(v)
    signature = signed.signature()
    high_bit = signed.vs[0] >> 7

    assert len(signature) == 65
    assert high_bit == v - 27
    assert signature[:32] == signed.r
    assert SignedReading.from_signature(signed.reading, signature) == signed
    assert SignedReading.from_signature(signed.reading, signature[:64] + bytes([v - 27])) == signed
    assert signed.recover(DOMAIN) == KNOWN_ADDRESS


def test_from_signature_rejects_a_malleable_high_s_signature() -> None:
    signature = READING.sign(KNOWN_KEY, DOMAIN).signature()
    s = int.from_bytes(signature[32:64], "big")
    flipped = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])

    with pytest.raises(DaiseeError, match="malleable"):
        SignedReading.from_signature(READING, flipped)


@pytest.mark.parametrize("signature", [bytes(64), bytes(66), bytes(64) + b"\x1d", bytes(64) + b"\x02"])
def test_from_signature_rejects_wrong_lengths_and_v_values(signature: bytes) -> None:
    with pytest.raises(DaiseeError, match="signature"):
        SignedReading.from_signature(READING, signature)


@pytest.mark.parametrize("s", [HALF_N + 1, V_BIT - 1])
@pytest.mark.parametrize("v_bit", [0, 1])
def test_recover_refuses_a_hand_made_high_s_that_plain_ecrecover_accepts(s: int, v_bit: int) -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)
    r = int.from_bytes(signed.r, "big")
    # plain ECDSA recovers some key from this (r, s) ...
    Signature(vrs=(v_bit, r, s)).recover_public_key_from_msg_hash(READING.digest(DOMAIN))

    # ... but OpenZeppelin's ECDSA refuses an s above n / 2, and so do we
    assert with_vs(signed, r, s, v_bit).recover(DOMAIN) is None


@pytest.mark.parametrize(
    ("r", "s"),
    [
        (0, 1),
        (1, 0),
        (SECP256K1_N, 1),
        (1, HALF_N + 1),
    ],
)
def test_recover_returns_none_for_out_of_range_r_or_s(r: int, s: int) -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)

    assert with_vs(signed, r, s, 0).recover(DOMAIN) is None
    assert with_vs(signed, r, s, 1).recover(DOMAIN) is None
    assert not with_vs(signed, r, s, 0).verify(DOMAIN, KNOWN_ADDRESS)


def test_recover_returns_none_when_r_is_not_on_the_curve() -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)

    assert with_vs(signed, x_off_the_curve(), 1, 0).recover(DOMAIN) is None


@settings(max_examples=300)
@given(
    r=st.integers(1, SECP256K1_N - 1),
    s=st.integers(1, HALF_N),
    v_bit=st.integers(0, 1),
    meter=st.binary(min_size=32, max_size=32),
)
def test_recover_agrees_with_eth_keys_pure_python_ecrecover(r: int, s: int, v_bit: int, meter: bytes) -> None:
    # any (r, s) in range, most of them signatures by no one's key: libsecp256k1 through coincurve, as daisee
    # calls it, and eth_keys' own Python arithmetic recover the same address or both find none
    signed = with_vs(READING.sign(KNOWN_KEY, DOMAIN), r, s, v_bit)
    signed = dataclasses.replace(signed, reading=dataclasses.replace(READING, meter_id=meter))
    try:
        key = NativeECCBackend().ecdsa_recover(signed.reading.digest(DOMAIN), Signature(vrs=(v_bit, r, s)))
    except BadSignature:
        expected = None
    else:
        expected = key.to_checksum_address()

    assert signed.recover(DOMAIN) == expected


def test_recover_accepts_s_at_exactly_half_the_curve_order() -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)
    r = int.from_bytes(signed.r, "big")

    assert with_vs(signed, r, HALF_N, 0).recover(DOMAIN) is not None


def test_as_call_arg_follows_the_solidity_struct_field_order() -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)

    assert signed.as_call_arg() == (METER, 7, 123_456, 789, signed.r, signed.vs)


# --- field validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"meter_id": bytes(31)}, "meter_id"),
        ({"meter_id": bytes(33)}, "meter_id"),
        ({"meter_id": "11" * 32}, "meter_id"),
        ({"interval": -1}, "interval"),
        ({"interval": 2**32}, "interval"),
        ({"interval": 1.0}, "interval"),
        ({"interval": True}, "interval"),
        ({"import_wh": 2**64}, "import_wh"),
        ({"import_wh": -1}, "import_wh"),
        ({"import_wh": "5"}, "import_wh"),
        ({"export_wh": 2**64}, "export_wh"),
        ({"export_wh": None}, "export_wh"),
    ],
)
def test_reading_rejects_out_of_range_or_mistyped_fields(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(DaiseeError, match=named) as error:
        dataclasses.replace(READING, **changes)

    assert "\n" not in str(error.value)


def test_reading_accepts_the_extreme_values() -> None:
    Reading(bytes(32), 0, 0, 0)
    Reading(b"\xff" * 32, 2**32 - 1, 2**64 - 1, 2**64 - 1)


def test_signed_reading_rejects_r_or_vs_not_32_bytes() -> None:
    with pytest.raises(DaiseeError, match="signed reading vs "):
        SignedReading(READING, bytes(32), bytes(31))
    with pytest.raises(DaiseeError, match="signed reading r "):
        SignedReading(READING, bytes(33), bytes(32))


# --- JSON ----------------------------------------------------------------------------------------------------------


def test_json_round_trip_uses_hex_strings_and_integers() -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)
    data = signed.to_json()

    assert data["meter_id"] == "0x" + "11" * 32
    assert (data["interval"], data["import_wh"], data["export_wh"]) == (7, 123_456, 789)
    assert data["r"] == "0x" + signed.r.hex()
    assert data["vs"] == "0x" + signed.vs.hex()
    assert SignedReading.from_json(data) == signed


def test_from_json_accepts_uppercase_hex() -> None:
    signed = READING.sign(KNOWN_KEY, DOMAIN)
    data = signed.to_json() | {"r": "0x" + signed.r.hex().upper()}

    assert SignedReading.from_json(data) == signed


_DELETE = object()


def bad_json(key: str, value: Any) -> dict[str, Any]:
    data = READING.sign(KNOWN_KEY, DOMAIN).to_json()
    if value is _DELETE:
        del data[key]
    else:
        data[key] = value
    return data


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("meter_id", _DELETE),
        ("vs", _DELETE),
        ("signer", "0x00"),
        ("r", "0x" + "zz" * 32),
        ("r", "11" * 32),
        ("r", "0x" + "11" * 32 + "\n"),
        ("r", 5),
        ("vs", "0x" + "11" * 31),
        ("meter_id", "house-12"),
        ("interval", "07"),
        ("import_wh", "-1"),
        ("export_wh", "1e3"),
        ("import_wh", " 1"),
        ("interval", "4294967296"),
        ("export_wh", "18446744073709551616"),
        ("interval", 7.0),
        ("interval", True),
        ("import_wh", None),
        ("export_wh", -1),
        ("interval", 2**32),
    ],
)
def test_from_json_rejects_bad_shapes_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(DaiseeError, match=rf"\b{key}\b") as error:
        SignedReading.from_json(bad_json(key, value))

    assert "\n" not in str(error.value)


def test_from_json_takes_what_javascript_clients_send() -> None:
    # ethers writes 64-bit values as decimal strings and signTypedData gives one 65-byte r ‖ s ‖ v signature
    signed = READING.sign(KNOWN_KEY, DOMAIN)
    typed = Account.sign_typed_data(KNOWN_KEY, full_message=READING.typed_data(DOMAIN))
    data = {
        "meter_id": "0x" + READING.meter_id.hex(),
        "interval": "7",
        "import_wh": "123456",
        "export_wh": "789",
        "signature": "0x" + bytes(typed.signature).hex(),
    }

    assert SignedReading.from_json(data) == signed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"r": "0x" + "11" * 32}, "unknown key 'r'"),  # both forms at once
        ({"signature": "0x" + "11" * 64}, "signature '0x1111"),
        ({"signature": 5}, "signature 5 is not 0x + 130 hex digits"),
    ],
)
def test_from_json_refuses_a_bad_65_byte_signature(change: dict[str, Any], message: str) -> None:
    data = READING.sign(KNOWN_KEY, DOMAIN).to_json()
    del data["r"], data["vs"]
    data["signature"] = "0x" + "11" * 65

    with pytest.raises(DaiseeError, match=re.escape(message)):
        SignedReading.from_json(data | change)


@pytest.mark.parametrize("data", [[], "{}", None, 42])
def test_from_json_rejects_non_objects(data: Any) -> None:
    with pytest.raises(DaiseeError, match="JSON object"):
        SignedReading.from_json(data)


def test_from_json_keeps_an_invalid_signature_for_recover_to_refuse() -> None:
    data = READING.sign(KNOWN_KEY, DOMAIN).to_json() | {"vs": "0x" + "ff" * 32}

    assert SignedReading.from_json(data).recover(DOMAIN) is None


# --- properties ----------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(reading=readings, key=private_keys, domain=domains)
def test_any_reading_signed_by_any_key_recovers_its_signer_and_survives_json(
    reading: Reading, key: bytes, domain: LoopDomain
) -> None:
    signed = reading.sign(key, domain)

    assert signed.recover(domain) == Account.from_key(key).address
    assert SignedReading.from_json(signed.to_json()) == signed
    assert SignedReading.from_signature(reading, signed.signature()) == signed
