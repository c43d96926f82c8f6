"""The loop's vocabulary: parsing meter kinds, allocation keys, meter ids, prices and addresses."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import IntEnum
from pathlib import Path

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from daisee.domain import (
    MAX_LIMIT_W,
    MAX_METERS,
    SETTLEMENT_LAG,
    SHARE_DENOMINATOR,
    AllocationKey,
    MeterKind,
    RejectReason,
    address,
    meter_id,
    price_per_kwh,
    price_per_wh,
)
from daisee.errors import DaiseeError

HEX32 = "0x" + "0123456789abcdef" * 4
KNOWN_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


# --- MeterKind / AllocationKey ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("consumer", MeterKind.CONSUMER),
        ("PRODUCER", MeterKind.PRODUCER),
        ("ProSumer", MeterKind.PROSUMER),
    ],
)
def test_meter_kind_parse_is_case_insensitive(text: str, expected: MeterKind) -> None:
    assert MeterKind.parse(text) is expected


def test_meter_kind_values_mirror_the_contract_enum() -> None:
    assert [int(kind) for kind in (MeterKind.CONSUMER, MeterKind.PRODUCER, MeterKind.PROSUMER)] == [0, 1, 2]


@pytest.mark.parametrize("text", ["battery", "", "consumers"])
def test_meter_kind_parse_rejects_unknown_kind_naming_the_choices(text: str) -> None:
    with pytest.raises(DaiseeError) as excinfo:
        MeterKind.parse(text)

    message = str(excinfo.value)
    assert repr(text) in message
    assert "consumer, producer or prosumer" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prorata", AllocationKey.PRORATA),
        ("Static", AllocationKey.STATIC),
        ("WEIGHTED", AllocationKey.WEIGHTED),
    ],
)
def test_allocation_key_parse_is_case_insensitive(text: str, expected: AllocationKey) -> None:
    assert AllocationKey.parse(text) is expected


def test_allocation_key_values_mirror_the_contract_enum() -> None:
    assert [int(key) for key in (AllocationKey.PRORATA, AllocationKey.STATIC, AllocationKey.WEIGHTED)] == [0, 1, 2]


@pytest.mark.parametrize("text", ["equal", "", "pro-rata"])
def test_allocation_key_parse_rejects_unknown_key_naming_the_choices(text: str) -> None:
    with pytest.raises(DaiseeError) as excinfo:
        AllocationKey.parse(text)

    message = str(excinfo.value)
    assert repr(text) in message
    assert "prorata, static or weighted" in message


# --- mirrors of the contracts --------------------------------------------------------------


def solidity_enum(project_root: Path, name: str) -> list[str]:
    """The members of `enum name` in IEnergyLoop.sol, in order."""
    source = (project_root / "contracts" / "interfaces" / "IEnergyLoop.sol").read_text()
    body = re.search(rf"enum {name}\s*{{([^}}]*)}}", source)
    assert body is not None, f"no enum {name} in IEnergyLoop.sol"
    return [member.strip() for member in body.group(1).split(",") if member.strip()]


def camel(member: IntEnum) -> str:
    return "".join(word.capitalize() for word in member.name.split("_"))


@pytest.mark.parametrize("enum", [MeterKind, AllocationKey, RejectReason])
def test_enums_mirror_the_contract_enums_name_for_name_in_order(project_root: Path, enum: type[IntEnum]) -> None:
    members = list(enum)

    assert [camel(m) for m in members] == solidity_enum(project_root, enum.__name__)
    assert [int(m) for m in members] == list(range(len(members)))


def test_reject_reasons_are_numbered_in_the_order_the_checks_run() -> None:
    assert [(r.name, int(r)) for r in RejectReason] == [
        ("UNKNOWN_METER", 0),
        ("BAD_SIGNATURE", 1),
        ("METER_INACTIVE", 2),
        ("NOT_YET_ACTIVE", 3),
        ("STALE_INTERVAL", 4),
        ("FUTURE_INTERVAL", 5),
        ("INTERVAL_FINALIZED", 6),
        ("SETTLEMENT_BACKLOG", 7),
        ("INDEX_DECREASED", 8),
        ("FLOW_NOT_ALLOWED", 9),
        ("ABOVE_METER_LIMIT", 10),
    ]
    assert not {"INDEX_OVERFLOW", "MAX_DELTA_WH"} & set(RejectReason.__members__)


def test_constants_mirror_the_contracts(project_root: Path) -> None:
    contracts = project_root / "contracts"
    loop = (contracts / "EnergyLoop.sol").read_text()
    storage = (contracts / "libraries" / "LoopStorage.sol").read_text()
    allocation = (contracts / "libraries" / "Allocation.sol").read_text()

    assert f"SETTLEMENT_LAG = {SETTLEMENT_LAG};" in loop
    assert f"SHARE_DENOMINATOR = {SHARE_DENOMINATOR:_};" in allocation
    assert "MAX_METERS = type(uint16).max;" in storage
    assert MAX_METERS == 2**16 - 1
    # the limits are uint24 in the meter's record, beside its uint16 index
    assert re.search(r"uint16 index;\s*uint24 importLimitW;\s*uint24 exportLimitW;", storage)
    assert "MAX_LIMIT_W = type(uint24).max;" in storage
    assert MAX_LIMIT_W == 2**24 - 1


# --- meter_id ----------------------------------------------------------------------------------


def test_meter_id_keeps_a_bytes32_hex_value_exactly() -> None:
    assert meter_id(HEX32) == bytes.fromhex(HEX32[2:])
    assert len(meter_id(HEX32)) == 32


def test_meter_id_accepts_upper_case_hex_digits_as_the_same_bytes() -> None:
    assert meter_id("0x" + HEX32[2:].upper()) == bytes.fromhex(HEX32[2:])


def test_meter_id_ignores_surrounding_whitespace() -> None:
    assert meter_id(f"  {HEX32}\n") == bytes.fromhex(HEX32[2:])
    assert meter_id(" house-12 ") == meter_id("house-12")


def test_meter_id_hashes_a_label_with_keccak256_of_its_utf8() -> None:
    assert meter_id("house-12") == keccak(b"house-12")
    assert meter_id("maison-é") == keccak(b"maison-\xc3\xa9")  # "é" in UTF-8
    assert meter_id("house-12") != meter_id("house-13")


def test_meter_id_hash_matches_a_known_keccak_vector() -> None:
    assert meter_id("abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_meter_id_rejects_empty_or_blank_text(text: str) -> None:
    with pytest.raises(DaiseeError, match="empty meter id") as excinfo:
        meter_id(text)

    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize("text", ["0x1234", "0x" + "ab" * 31, "0x" + "ab" * 33, "0x" + "zz" * 32])
def test_meter_id_rejects_a_malformed_hex_value(text: str) -> None:
    with pytest.raises(DaiseeError, match="not 0x \\+ 64 hex digits") as excinfo:
        meter_id(text)

    assert "\n" not in str(excinfo.value)


# --- prices ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "units"),
    [("0.10", 100), ("0.125", 125), ("0", 0), ("1", 1000), ("0.001", 1), (Decimal("0.2"), 200)],
)
def test_price_per_wh_converts_a_price_per_kwh_exactly(price: str | Decimal, units: int) -> None:
    result = price_per_wh(price)

    assert result == units
    assert type(result) is int


def test_price_per_wh_rejects_more_than_three_decimals_naming_the_fix() -> None:
    with pytest.raises(DaiseeError) as excinfo:
        price_per_wh("0.1234")

    message = str(excinfo.value)
    assert "0.1234" in message
    assert "at most 3 decimals" in message


@pytest.mark.parametrize("price", ["-1", "NaN", "Infinity", "-Infinity"])
def test_price_per_wh_rejects_negative_or_non_finite_prices(price: str) -> None:
    with pytest.raises(DaiseeError) as excinfo:
        price_per_wh(price)

    assert price in str(excinfo.value)
    assert "per kWh" in str(excinfo.value)


def test_price_per_wh_rejects_text_that_is_not_a_number_naming_the_fix() -> None:
    with pytest.raises(DaiseeError) as excinfo:
        price_per_wh("abc")

    message = str(excinfo.value)
    assert "'abc' is not a plain number" in message
    assert "e.g. 0.12" in message


def test_price_per_wh_names_negativity_as_the_cause_for_a_negative_price() -> None:
    with pytest.raises(DaiseeError) as excinfo:
        price_per_wh("-1")

    assert "not a whole number" not in str(excinfo.value)
    assert "negative" in str(excinfo.value)


@pytest.mark.parametrize("price", ["sNaN", "1e999999999"])
def test_price_per_wh_rejects_signalling_nan_and_huge_exponents_with_a_daisee_error(price: str) -> None:
    with pytest.raises(DaiseeError):
        price_per_wh(price)


def test_price_per_wh_rejects_a_price_with_more_digits_than_the_decimal_context_keeps() -> None:
    with pytest.raises(DaiseeError):
        price_per_wh("0.10000000000000000000000000000001")


def test_price_per_kwh_is_the_inverse_for_known_values() -> None:
    assert price_per_kwh(100) == Decimal("0.1")
    assert price_per_kwh(125) == Decimal("0.125")
    assert price_per_kwh(0) == 0


@given(st.integers(min_value=0, max_value=10**9))
def test_price_per_kwh_inverts_price_per_wh_for_every_representable_price(thousandths: int) -> None:
    price = Decimal(thousandths) / 1000

    assert price_per_wh(price) == thousandths
    assert price_per_kwh(price_per_wh(price)) == price
    assert price_per_kwh(price_per_wh(str(price))) == price


# --- address -----------------------------------------------------------------------------------


def test_address_checksums_a_lowercase_address() -> None:
    assert address(KNOWN_ADDRESS.lower()) == KNOWN_ADDRESS


def test_address_keeps_an_already_checksummed_address() -> None:
    assert address(KNOWN_ADDRESS) == KNOWN_ADDRESS


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x1234",
        "not-an-address",
        "0x" + "g" * 40,
        "0x" + "ab" * 21,
    ],
)
def test_address_rejects_a_bad_address_naming_the_option(text: str) -> None:
    with pytest.raises(DaiseeError) as excinfo:
        address(text, what="--pmo")

    message = str(excinfo.value)
    assert message.startswith(f"--pmo {text!r} is not an Ethereum address")
    assert "0x + 40 hex digits" in message


def test_address_rejects_a_mixed_case_address_with_a_broken_checksum() -> None:
    typo = KNOWN_ADDRESS.replace("E36", "e36")  # one letter's case flipped: the EIP-55 checksum no longer holds

    with pytest.raises(DaiseeError, match="--pmo"):
        address(typo, what="--pmo")


def test_address_error_defaults_to_calling_the_input_address() -> None:
    with pytest.raises(DaiseeError, match=r"^address 'nope' is not an Ethereum address"):
        address("nope")
