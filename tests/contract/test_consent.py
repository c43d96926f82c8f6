"""The consent registry on every chain: a consent counts only when signed (or sent) by its meter's payout account,
for this chain and this registry, once; it is pending, active, then expired, and revoked only by its grantor.

Each refusal is the contract's own, with its reason (the calls go straight to the contract, past the client's
checks), and leaves nothing recorded; the client's checks are tested to refuse the same messages before any gas
is spent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import CONSENT_CONTRACT, LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.consent.model import (
    DAY,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    GRANULARITIES,
    MAX_DURATION_SECONDS,
    ZERO_ADDRESS,
    Audience,
    DataKind,
    Grant,
    Purpose,
    Status,
    revocation_typed_data,
    typed_digest,
)
from daisee.consent.registry import ConsentRegistry, RecordedConsent, granted, sign_grant, sign_revocation
from daisee.domain import MeterKind
from daisee.errors import DaiseeError
from daisee.loop import Loop
from daisee.regie.calendar import Granularity
from tests.contract.timetravel import now, travel_to

RESEARCHER = to_checksum_address("0x" + "5e" * 20)
FUNDS = 10**18  # what a member's key gets to pay for its own transactions


@dataclass
class Consents:
    """A loop and its registry; one meter whose payout is a local key (`member`), recorded by a relayer."""

    chain: Chain
    loop: Loop  # driven by the PMO
    registry: ConsentRegistry  # driven by a relayer (the régie), not the member
    meter_id: bytes
    gateway: LocalAccount  # the meter's signer key: not its payout account
    member: LocalAccount  # the meter's payout account

    def grant(self, **changes: Any) -> Grant:
        """A month of hourly consumption and allocation for a researcher, from now, with `changes`."""
        start = now(self.chain)
        fields: dict[str, Any] = {
            "meter_id": self.meter_id,
            "audience": Audience.ACCOUNT,
            "grantee": RESEARCHER,
            "purpose": Purpose.RESEARCH,
            "kinds": DataKind.CONSUMPTION | DataKind.ALLOCATION,
            "granularity": Granularity.HOUR,
            "history_days": 365,
            "valid_from": start,
            "valid_until": start + 30 * DAY,
            "nonce": 1,
        }
        return Grant(**(fields | changes))

    def sign(self, grant: Grant, key: LocalAccount | None = None, **domain: Any) -> bytes:
        """`key`'s (the member's) signature of `grant` for this registry, or the chain id and registry in `domain`."""
        chain_id, registry = domain.get("chain_id", self.chain.chain_id), domain.get("registry", self.registry.address)
        return sign_grant(grant, key or self.member, chain_id, registry)

    def consent_id(self, grant: Grant) -> bytes:
        return grant.consent_id(self.chain.chain_id, self.registry.address)

    def member_registry(self) -> ConsentRegistry:
        """The registry driven by the member's own key, funded to pay its gas."""
        return self.registry.as_sender(funded(self.chain, self.member))

    def raw_record(self, grant: Grant | tuple[Any, ...], signature: bytes) -> None:
        """`recordGrant` sent straight to the contract, past the client's checks."""
        arg = grant_arg(grant) if isinstance(grant, Grant) else grant
        call = self.registry.contract.functions.recordGrant(arg, signature)
        self.registry.sender.transact(call, "recording a consent")


def funded(chain: Chain, key: LocalAccount) -> Sender:
    """A sender that signs locally with `key`, given ether by a development account."""
    if chain.w3.eth.get_balance(key.address) < FUNDS // 2:
        chain.w3.eth.send_transaction({"from": chain.dev_accounts()[5], "to": key.address, "value": FUNDS})  # type: ignore[typeddict-item]
    return Sender.local(chain, key)


def grant_arg(grant: Grant) -> tuple[Any, ...]:
    m = grant.message()
    return (
        grant.meter_id, m["audience"], m["grantee"], m["purpose"], m["kinds"], m["granularity"],
        m["historyDays"], m["validFrom"], m["validUntil"], m["nonce"],
    )  # fmt: skip


def deploy_consents(chain: Chain) -> Consents:
    pmo = Sender.dev(chain, 0)
    deployment = deploy_loop(pmo, LoopParameters(token=None))
    assert deployment.consent_registry is not None
    loop = Loop(pmo, deployment.address)
    gateway, member = Account.create(), Account.create()
    meter_id = keccak(text="house-consent")
    loop.add_meter(meter_id, gateway.address, member.address, MeterKind.PROSUMER)
    return Consents(
        chain, loop, ConsentRegistry(Sender.dev(chain, 1), deployment.consent_registry), meter_id, gateway, member
    )


@pytest.fixture
def consents(any_chain: Chain) -> Consents:
    return deploy_consents(any_chain)


def refused(action: Any, reason: str) -> str:
    """Run `action`, which must be refused with `reason` (the contract's error name, or the client's words)."""
    with pytest.raises(DaiseeError) as caught:
        action()
    message = str(caught.value)
    assert reason in message, message
    assert "\n" not in message
    return message


def assert_nothing_recorded(consents: Consents, consent_id: bytes) -> None:
    assert consents.registry.status(consent_id) is None
    assert consents.registry.consents() == []


# ---------------------------------------------------------------- the registry itself


def test_deploy_loop_deploys_the_loops_registry_with_three_years_at_most(consents: Consents) -> None:
    functions = consents.registry.contract.functions

    assert functions.loop().call() == consents.loop.address
    assert consents.registry.max_duration() == MAX_DURATION_SECONDS == 1_096 * DAY
    assert functions.domainSeparator().call() == bytes(
        typed_digest_domain(consents.chain.chain_id, consents.registry.address)
    )
    _, name, version, chain_id, verifying, _, _ = functions.eip712Domain().call()
    assert (name, version, chain_id, verifying) == (
        DOMAIN_NAME, DOMAIN_VERSION, consents.chain.chain_id, consents.registry.address
    )  # fmt: skip
    assert not any(item.get("name") in {"owner", "transferOwnership"} for item in functions.abi)  # no admin power


def typed_digest_domain(chain_id: int, registry: str) -> bytes:
    """The EIP-712 domain separator of the registry, as eth-account computes it."""
    grant = Grant(
        b"\x00" * 32, Audience.EVERYONE, ZERO_ADDRESS, Purpose.OPEN_DATA, DataKind.BILL, Granularity.DAY, 0, 0, 1, 0
    )
    return bytes(encode_typed_data(full_message=grant.typed_data(chain_id, registry)).header)


# ---------------------------------------------------------------- grants


def test_a_grant_signed_by_the_payout_account_is_recorded_by_anyone_with_its_event(consents: Consents) -> None:
    grant = consents.grant()
    relayer_nonce = consents.chain.w3.eth.get_transaction_count(consents.registry.sender.address)

    consent_id = consents.registry.record_grant(grant, consents.sign(grant))

    assert consent_id == consents.consent_id(grant)
    assert consents.chain.w3.eth.get_transaction_count(consents.registry.sender.address) == relayer_nonce + 1
    assert consents.chain.w3.eth.get_transaction_count(consents.member.address) == 0  # the member paid nothing
    (event,) = consents.registry.contract.events.ConsentGranted().get_logs(from_block=0)
    assert dict(event["args"]) == {
        "consentId": consent_id,
        "meterId": consents.meter_id,
        "grantee": RESEARCHER,
        "grantor": consents.member.address,
        "audience": 0,
        "purpose": 3,
        "kinds": 0b0101,
        "granularity": 1,
        "historyDays": 365,
        "validFrom": grant.valid_from,
        "validUntil": grant.valid_until,
        "nonce": 1,
    }
    assert granted(event["args"]) == grant
    meter_id, grantor, valid_from, valid_until, revoked = consents.registry.contract.functions.consent(
        consent_id
    ).call()
    assert (meter_id, grantor, valid_from, valid_until, revoked) == (
        consents.meter_id, consents.member.address, grant.valid_from, grant.valid_until, False
    )  # fmt: skip
    assert consents.registry.consents() == [
        RecordedConsent(consent_id, grant, consents.member.address, int(event["blockNumber"]), revoked=False)
    ]


def test_the_payout_account_grants_directly_without_a_signature(consents: Consents) -> None:
    grant = consents.grant(audience=Audience.MEMBERS, grantee=ZERO_ADDRESS, purpose=Purpose.NEIGHBOUR_COMPARISON)

    consent_id = consents.member_registry().grant(grant)

    assert consent_id == consents.consent_id(grant)
    assert consents.registry.status(consent_id) is Status.ACTIVE
    assert [c.grant for c in consents.registry.consents()] == [grant]


def test_anyone_but_the_payout_account_is_refused_a_direct_grant(consents: Consents) -> None:
    grant = consents.grant()
    call = consents.registry.contract.functions.grant(grant_arg(grant))

    refused(lambda: consents.registry.sender.transact(call, "granting"), "NotMeterPayout(")
    refused(lambda: consents.registry.grant(grant), "only meter 0x")

    assert_nothing_recorded(consents, consents.consent_id(grant))


@pytest.mark.parametrize(
    "signed_for",
    [
        {"chain_id": 1},
        {"registry": "0x" + "12" * 20},
    ],
    ids=["another-chain", "another-registry"],
)
def test_refuses_a_grant_signed_for_another_chain_or_registry(consents: Consents, signed_for: dict[str, Any]) -> None:
    grant = consents.grant()
    signature = consents.sign(grant, **signed_for)

    refused(lambda: consents.raw_record(grant, signature), f"InvalidSignature(signer={consents.member.address})")
    refused(lambda: consents.registry.record_grant(grant, signature), "is not signed by meter 0x")

    assert_nothing_recorded(consents, consents.consent_id(grant))


@pytest.mark.parametrize("who", ["gateway", "outsider"])
def test_refuses_a_grant_signed_by_the_meters_gateway_key_or_an_outsider(consents: Consents, who: str) -> None:
    grant = consents.grant()
    signature = consents.sign(grant, consents.gateway if who == "gateway" else Account.create())

    refused(lambda: consents.raw_record(grant, signature), "InvalidSignature(")

    assert_nothing_recorded(consents, consents.consent_id(grant))


def test_refuses_a_forged_signature_and_an_altered_message(consents: Consents) -> None:
    grant = consents.grant()
    signature = consents.sign(grant)
    flipped = signature[:10] + bytes([signature[10] ^ 1]) + signature[11:]
    wider = dataclasses.replace(grant, kinds=grant.kinds | DataKind.BILL)  # the member did not sign this one

    refused(lambda: consents.raw_record(grant, flipped), "InvalidSignature(")
    refused(lambda: consents.raw_record(grant, b"\x01" * 64), "InvalidSignature(")
    refused(lambda: consents.raw_record(wider, signature), "InvalidSignature(")
    refused(lambda: consents.registry.record_grant(wider, signature), "is not signed by meter 0x")

    assert_nothing_recorded(consents, consents.consent_id(grant))


def test_refuses_a_replayed_grant(consents: Consents) -> None:
    grant = consents.grant()
    signature = consents.sign(grant)
    consent_id = consents.registry.record_grant(grant, signature)

    message = refused(
        lambda: consents.raw_record(grant, signature), f"ConsentAlreadyRecorded(consentId=0x{consent_id.hex()})"
    )
    refused(lambda: consents.registry.record_grant(grant, signature), "is recorded already")

    assert "see `daisee consent list`" in message
    assert len(consents.registry.consents()) == 1
    again = dataclasses.replace(grant, nonce=2)  # the same consent given twice is two consents
    assert consents.registry.record_grant(again, consents.sign(again)) != consent_id


def test_refuses_a_grant_on_a_meter_not_in_the_loop(consents: Consents) -> None:
    grant = consents.grant(meter_id=keccak(text="nobody"))
    signature = consents.sign(grant)

    refused(lambda: consents.raw_record(grant, signature), f"UnknownMeter(meterId=0x{grant.meter_id.hex()})")
    refused(lambda: consents.registry.record_grant(grant, signature), "no meter 0x")

    assert_nothing_recorded(consents, consents.consent_id(grant))


def test_refuses_an_expired_message_and_one_lasting_too_long(consents: Consents) -> None:
    t = now(consents.chain)
    over = consents.grant(valid_from=t - 30 * DAY, valid_until=t - DAY)
    empty = consents.grant(valid_from=t + DAY, valid_until=t + DAY)
    too_long = consents.grant(valid_from=t, valid_until=t + MAX_DURATION_SECONDS + 1)
    longest = consents.grant(valid_from=t, valid_until=t + MAX_DURATION_SECONDS)

    refused(lambda: consents.raw_record(over, consents.sign(over)), f"ConsentExpired(validUntil={t - DAY}")
    refused(
        lambda: consents.raw_record(empty, consents.sign(empty)),
        f"ConsentExpired(validUntil={t + DAY}, notAfter={t + DAY})",
    )
    refused(
        lambda: consents.raw_record(too_long, consents.sign(too_long)),
        f"ConsentTooLong(duration={MAX_DURATION_SECONDS + 1}, maxDuration={MAX_DURATION_SECONDS})",
    )
    refused(lambda: consents.registry.record_grant(over, consents.sign(over)), "over before it starts")
    refused(lambda: consents.registry.record_grant(too_long, consents.sign(too_long)), "at most 1096 days")

    assert consents.registry.consents() == []
    assert consents.registry.record_grant(longest, consents.sign(longest)) == consents.consent_id(longest)


@pytest.mark.parametrize(
    ("audience", "grantee"),
    [(Audience.ACCOUNT, ZERO_ADDRESS), (Audience.MEMBERS, RESEARCHER), (Audience.EVERYONE, RESEARCHER)],
)
def test_refuses_a_grantee_that_does_not_match_the_audience(
    consents: Consents, audience: Audience, grantee: str
) -> None:
    grant = consents.grant(audience=audience, grantee=grantee)

    refused(lambda: consents.raw_record(grant, consents.sign(grant)), f"GranteeMismatch(audience={int(audience)},")
    refused(lambda: consents.registry.record_grant(grant, consents.sign(grant)), "name a grantee account")

    assert_nothing_recorded(consents, consents.consent_id(grant))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        (1, 3, "InvalidAudience(audience=3)"),
        (3, 6, "InvalidPurpose(purpose=6)"),
        (4, 0, "InvalidKinds(kinds=0)"),
        (4, 0b10001, "InvalidKinds(kinds=17)"),
        (5, 4, "InvalidGranularity(granularity=4)"),
    ],
)
def test_refuses_codes_out_of_range(consents: Consents, field: int, value: int, error: str) -> None:
    """Codes the Python model cannot even hold, signed by hand as a wallet would sign any message."""
    grant = consents.grant(audience=Audience.EVERYONE, grantee=ZERO_ADDRESS)
    arg = list(grant_arg(grant))
    arg[field] = value
    typed = grant.typed_data(consents.chain.chain_id, consents.registry.address)
    names = [name for name in typed["message"]]
    typed["message"][names[field]] = value
    signature = bytes(consents.member.sign_message(encode_typed_data(full_message=typed)).signature)

    refused(lambda: consents.raw_record(tuple(arg), signature), error)

    assert consents.registry.status(typed_digest(typed)) is None
    assert consents.registry.consents() == []


def test_the_client_refuses_an_unknown_kind_flag_before_sending(consents: Consents) -> None:
    grant = consents.grant(kinds=DataKind(0b10001))
    nonce = consents.chain.w3.eth.get_transaction_count(consents.registry.sender.address)

    refused(lambda: consents.registry.record_grant(grant, consents.sign(grant)), "at least one data kind")

    assert consents.chain.w3.eth.get_transaction_count(consents.registry.sender.address) == nonce


# ---------------------------------------------------------------- status over time


def test_a_consent_is_pending_then_active_then_expired(consents: Consents) -> None:
    t = now(consents.chain)
    grant = consents.grant(valid_from=t + DAY, valid_until=t + 3 * DAY)
    consent_id = consents.registry.record_grant(grant, consents.sign(grant))
    assert consents.registry.status(consent_id) is Status.PENDING

    travel_to(consents.chain, t + DAY)
    assert consents.registry.status(consent_id) is Status.ACTIVE
    travel_to(consents.chain, t + 3 * DAY - 10)
    assert consents.registry.status(consent_id) is Status.ACTIVE

    travel_to(consents.chain, t + 3 * DAY)
    assert consents.registry.status(consent_id) is Status.EXPIRED
    (recorded,) = consents.registry.consents()
    assert recorded.status(now(consents.chain)) is Status.EXPIRED


def test_an_unknown_consent_has_no_status(consents: Consents) -> None:
    assert consents.registry.status(b"\x42" * 32) is None
    assert consents.registry.contract.functions.status(b"\x42" * 32).call() == 0


# ---------------------------------------------------------------- revocations


def test_a_revocation_signed_by_the_grantor_is_recorded_by_anyone(consents: Consents) -> None:
    grant = consents.grant()
    consent_id = consents.registry.record_grant(grant, consents.sign(grant))
    signature = sign_revocation(consent_id, consents.member, consents.chain.chain_id, consents.registry.address)

    receipt = consents.registry.record_revocation(consent_id, signature)

    (event,) = consents.registry.contract.events.ConsentRevoked().process_receipt(receipt)
    assert dict(event["args"]) == {"consentId": consent_id, "meterId": consents.meter_id, "by": consents.member.address}
    assert consents.registry.status(consent_id) is Status.REVOKED
    assert consents.registry.contract.functions.consent(consent_id).call()[4] is True
    assert [c.revoked for c in consents.registry.consents()] == [True]
    call = consents.registry.contract.functions.recordRevocation(consent_id, signature)
    message = refused(lambda: consents.registry.sender.transact(call, "revoking"), "ConsentAlreadyRevoked(")
    assert f"consentId=0x{consent_id.hex()}" in message
    refused(lambda: consents.registry.record_revocation(consent_id, signature), "revoked already")


def test_the_grantor_revokes_directly_a_pending_or_expired_consent(consents: Consents) -> None:
    t = now(consents.chain)
    pending = consents.grant(valid_from=t + 10 * DAY, valid_until=t + 20 * DAY)
    short = consents.grant(valid_from=t, valid_until=t + DAY, nonce=2)
    member = consents.member_registry()
    pending_id, short_id = member.grant(pending), member.grant(short)
    travel_to(consents.chain, t + 2 * DAY)
    assert (member.status(pending_id), member.status(short_id)) == (Status.PENDING, Status.EXPIRED)

    member.revoke(pending_id)
    member.revoke(short_id)

    assert (member.status(pending_id), member.status(short_id)) == (Status.REVOKED, Status.REVOKED)
    call = member.contract.functions.revoke(pending_id)
    refused(lambda: member.sender.transact(call, "revoking"), "ConsentAlreadyRevoked(")


def test_nobody_but_the_grantor_revokes(consents: Consents) -> None:
    grant = consents.grant()
    consent_id = consents.registry.record_grant(grant, consents.sign(grant))
    functions = consents.registry.contract.functions
    forged = sign_revocation(consent_id, consents.gateway, consents.chain.chain_id, consents.registry.address)
    elsewhere = sign_revocation(consent_id, consents.member, consents.chain.chain_id, "0x" + "12" * 20)
    sender = consents.registry.sender

    refused(
        lambda: sender.transact(functions.revoke(consent_id), "revoking"), f"NotGrantor(consentId=0x{consent_id.hex()}"
    )
    refused(lambda: sender.transact(functions.recordRevocation(consent_id, forged), "revoking"), "InvalidSignature(")
    refused(lambda: sender.transact(functions.recordRevocation(consent_id, elsewhere), "revoking"), "InvalidSignature(")
    refused(lambda: consents.registry.revoke(consent_id), "only consent 0x")
    refused(lambda: consents.registry.record_revocation(consent_id, forged), "is not signed by consent 0x")

    assert consents.registry.status(consent_id) is Status.ACTIVE
    assert list(consents.registry.contract.events.ConsentRevoked().get_logs(from_block=0)) == []


def test_refuses_to_revoke_an_unknown_consent(consents: Consents) -> None:
    unknown = b"\x42" * 32
    call = consents.registry.contract.functions.revoke(unknown)

    refused(lambda: consents.registry.sender.transact(call, "revoking"), f"UnknownConsent(consentId=0x{'42' * 32})")
    refused(lambda: consents.registry.revoke(unknown), "no consent 0x")


# ---------------------------------------------------------------- a smart wallet as payout account


def test_a_smart_wallet_payout_grants_and_revokes_by_erc1271(any_chain: Chain) -> None:
    consents = deploy_consents(any_chain)
    owner = Account.create()
    wallet, _ = Sender.dev(any_chain, 0).deploy("TestWallet", owner.address)
    meter_id = keccak(text="house-with-a-safe")
    consents.loop.add_meter(meter_id, consents.gateway.address, wallet, MeterKind.CONSUMER)
    grant = consents.grant(meter_id=meter_id)

    refused(
        lambda: consents.raw_record(grant, consents.sign(grant, Account.create())), f"InvalidSignature(signer={wallet})"
    )
    consent_id = consents.registry.record_grant(grant, consents.sign(grant, owner))

    assert consents.registry.grantor(consent_id) == wallet
    assert consents.registry.status(consent_id) is Status.ACTIVE
    revocation = sign_revocation(consent_id, owner, any_chain.chain_id, consents.registry.address)
    consents.registry.record_revocation(consent_id, revocation)
    assert consents.registry.status(consent_id) is Status.REVOKED
    # and directly, the wallet calling the registry itself
    direct = dataclasses.replace(grant, nonce=7)
    calldata = consents.registry.contract.encode_abi("grant", args=[grant_arg(direct)])
    driver = funded(any_chain, owner)
    contract = any_chain.w3.eth.contract(address=wallet, abi=load_artifact("TestWallet")["abi"])
    driver.transact(contract.functions.execute(consents.registry.address, calldata), "granting through the wallet")
    assert consents.registry.status(consents.consent_id(direct)) is Status.ACTIVE


# ---------------------------------------------------------------- access log


def test_anyone_anchors_an_access_log_under_its_own_account(consents: Consents) -> None:
    head = keccak(text="entry 41")

    receipt = consents.registry.anchor_access_log(head, 42)

    (event,) = consents.registry.contract.events.AccessLogAnchored().process_receipt(receipt)
    assert dict(event["args"]) == {"regie": consents.registry.sender.address, "head": head, "entries": 42}


# ---------------------------------------------------------------- gas


def test_recording_a_grant_and_a_revocation_costs_two_slots_and_a_log(consents: Consents) -> None:
    grant = consents.grant()
    consent_id = consents.registry.record_grant(grant, consents.sign(grant))
    (granted_log,) = consents.registry.contract.events.ConsentGranted().get_logs(from_block=0)
    signature = sign_revocation(consent_id, consents.member, consents.chain.chain_id, consents.registry.address)
    revoked = consents.registry.record_revocation(consent_id, signature)

    grant_gas = consents.chain.w3.eth.get_transaction_receipt(granted_log["transactionHash"])["gasUsed"]
    # 21k + calldata + the loop's meter() + ecrecover + two fresh slots (44k) + a 4-topic log of 9 words
    assert 80_000 < grant_gas <= 100_000, grant_gas
    assert 30_000 < revoked["gasUsed"] <= 45_000, revoked["gasUsed"]


# ---------------------------------------------------------------- the Python id is the contract's


EMBEDDED = connect("embedded")
_PROPERTY_REGISTRY: list[ConsentRegistry] = []


def _registry_on_py_evm() -> ConsentRegistry:
    if not _PROPERTY_REGISTRY:
        _PROPERTY_REGISTRY.append(deploy_consents(EMBEDDED).registry)
    return _PROPERTY_REGISTRY[0]


grants = st.builds(
    Grant,
    meter_id=st.binary(min_size=32, max_size=32),
    audience=st.sampled_from(list(Audience)),
    grantee=st.binary(min_size=20, max_size=20).map(lambda raw: EMBEDDED.w3.to_checksum_address(raw)),
    purpose=st.sampled_from(list(Purpose)),
    kinds=st.integers(1, 15).map(DataKind),
    granularity=st.sampled_from(GRANULARITIES),
    history_days=st.integers(0, 2**16 - 1),
    valid_from=st.integers(0, 2**64 - 1),
    valid_until=st.integers(0, 2**64 - 1),
    nonce=st.integers(0, 2**256 - 1),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grants)
def test_the_python_consent_id_is_the_contracts(grant: Grant) -> None:
    registry = _registry_on_py_evm()

    on_chain = registry.contract.functions.consentIdOf(grant_arg(grant)).call()

    assert bytes(on_chain) == grant.consent_id(EMBEDDED.chain_id, registry.address)
    revocation = revocation_typed_data(bytes(on_chain), EMBEDDED.chain_id, registry.address)
    assert typed_digest(revocation) != bytes(on_chain)


def test_the_artifact_is_the_registry_with_its_events_as_the_indexer_decodes_them() -> None:
    abi = {item["name"]: item for item in load_artifact(CONSENT_CONTRACT)["abi"] if item["type"] == "event"}

    def signature(name: str) -> list[tuple[str, str, bool]]:
        return [(i["name"], i["type"], i["indexed"]) for i in abi[name]["inputs"]]

    assert signature("ConsentGranted") == [
        ("consentId", "bytes32", True), ("meterId", "bytes32", True), ("grantee", "address", True),
        ("grantor", "address", False), ("audience", "uint8", False), ("purpose", "uint8", False),
        ("kinds", "uint8", False), ("granularity", "uint8", False), ("historyDays", "uint16", False),
        ("validFrom", "uint64", False), ("validUntil", "uint64", False), ("nonce", "uint256", False),
    ]  # fmt: skip
    assert signature("ConsentRevoked") == [
        ("consentId", "bytes32", True),
        ("meterId", "bytes32", True),
        ("by", "address", True),
    ]
    assert signature("AccessLogAnchored") == [
        ("regie", "address", True),
        ("head", "bytes32", False),
        ("entries", "uint64", False),
    ]
