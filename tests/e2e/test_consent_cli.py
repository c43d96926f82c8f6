"""`daisee consent` end to end on anvil: a member grants, lists and revokes with its keystore account, or signs for
the régie to submit; every bad input is one line, exit code 1, and nothing recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import load_deployment
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.consent.model import Status
from daisee.consent.registry import ConsentRegistry
from tests.e2e.conftest import Daisee

PASSWORD = {"DAISEE_PASSWORD": "correct horse battery staple"}
RESEARCHER = "0x5e5E5e5e5E5e5E5E5e5E5E5e5e5E5E5E5e5E5E5e"
GRANT = ("--to", RESEARCHER, "--purpose", "research", "--kinds", "consumption,allocation", "--granularity", "hour")


@dataclass
class Member:
    url: str
    chain: Chain
    key: LocalAccount  # the meter's payout account, as keystore account `member`
    registry: ConsentRegistry

    @property
    def on(self) -> tuple[str, str]:
        return ("--chain", self.url)


def _import(daisee: Daisee, tmp_path: Path, name: str, key: LocalAccount) -> None:
    key_file = tmp_path / f"{name}.key"
    key_file.write_text(key.key.hex())
    assert daisee("account", "import", name, "--key-file", str(key_file), env=PASSWORD).exit_code == 0


@pytest.fixture
def member(daisee: Daisee, anvil_node: LocalNode, tmp_path: Path) -> Member:
    """A loop deployed with `daisee deploy`, meter house-1 paid to keystore account `member` (funded)."""
    chain = connect(anvil_node.url)
    assert daisee("deploy", "--chain", anvil_node.url, "--token", "none").exit_code == 0
    key = Account.create()
    _import(daisee, tmp_path, "member", key)
    chain.w3.eth.send_transaction({"from": chain.dev_accounts()[4], "to": key.address, "value": 10**18})
    gateway = Account.create().address
    added = daisee(
        "member", "add", "house-1", "--signer", gateway, "--payout", key.address, "--kind", "consumer",
        "--chain", anvil_node.url,
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    registry = load_deployment(chain).consent_registry
    assert registry is not None
    return Member(anvil_node.url, chain, key, ConsentRegistry(Sender.dev(chain), registry))


def test_a_member_grants_lists_and_revokes_with_its_keystore_account(daisee: Daisee, member: Member) -> None:
    granted = daisee(
        "consent", "grant", "--meter", "house-1", *GRANT, "--history-days", "365", "--days", "30",
        "--account", "member", *member.on, "--json", env=PASSWORD,
    )  # fmt: skip

    assert granted.exit_code == 0, granted.stderr
    consent_id = granted.json()["consent_id"]
    assert granted.json()["status"] == "active"
    assert member.registry.status(bytes.fromhex(consent_id[2:])) is Status.ACTIVE
    (listed,) = daisee("consent", "list", *member.on, "--json").json()["consents"]
    assert listed | {"valid_from": 0, "valid_until": 0, "block": 0, "meter_id": ""} == {
        "consent_id": consent_id,
        "meter_id": "",
        "status": "active",
        "grantor": member.key.address,
        "audience": "account",
        "grantee": RESEARCHER,
        "purpose": "research",
        "kinds": ["consumption", "allocation"],
        "granularity": "hour",
        "history_days": 365,
        "valid_from": 0,
        "valid_until": 0,
        "block": 0,
        "revoked": False,
    }
    assert listed["valid_until"] - listed["valid_from"] in (30 * 86_400, 30 * 86_400 + 3_600, 30 * 86_400 - 3_600)
    table = daisee("consent", "list", *member.on)
    assert table.exit_code == 0
    assert "research" in table.stdout
    assert "active" in table.stdout

    revoked = daisee("consent", "revoke", consent_id, "--account", "member", *member.on, env=PASSWORD)

    assert revoked.exit_code == 0, revoked.stderr
    assert f"consent {consent_id} revoked; status revoked" in " ".join(revoked.stdout.split())
    assert daisee("consent", "list", *member.on, "--json").json()["consents"][0]["status"] == "revoked"
    again = daisee("consent", "revoke", consent_id, "--account", "member", *member.on, env=PASSWORD)
    assert "is revoked already" in again.error()


def test_a_member_signs_and_the_regie_submits_so_the_member_pays_no_gas(
    daisee: Daisee, member: Member, tmp_path: Path
) -> None:
    nonce = member.chain.w3.eth.get_transaction_count(member.key.address)
    signed = daisee(
        "consent", "grant", "--meter", "house-1", "--to", "members", "--purpose", "neighbour_comparison",
        "--kinds", "consumption", "--granularity", "month", "--until", "2099-01-01", "--from", "2098-01-01",
        "--account", "member", "--signed-out", "grant.json", *member.on, "--json", env=PASSWORD,
    )  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    consent_id = signed.json()["consent_id"]
    assert set(json.loads((tmp_path / "grant.json").read_text())) == {"typed_data", "signature"}
    assert member.registry.status(bytes.fromhex(consent_id[2:])) is None  # nothing sent yet

    submitted = daisee("consent", "submit", "grant.json", *member.on, "--json")

    assert submitted.exit_code == 0, submitted.stderr
    assert submitted.json() == {"consent_id": consent_id, "status": "pending"}
    replayed = daisee("consent", "submit", "grant.json", *member.on)
    assert "is recorded already" in replayed.error()
    revocation = ("consent", "revoke", consent_id, "--signed-out", "revoke.json", "--account", "member", *member.on)
    assert daisee(*revocation, env=PASSWORD).exit_code == 0
    assert daisee("consent", "submit", "revoke.json", *member.on, "--json").json()["status"] == "revoked"
    assert member.chain.w3.eth.get_transaction_count(member.key.address) == nonce


def test_on_a_dev_chain_the_first_account_grants_directly_when_it_is_the_payout(daisee: Daisee, member: Member) -> None:
    dev = member.chain.dev_accounts()[0]
    add = ("member", "add", "house-dev", "--signer", RESEARCHER, "--payout", dev, "--kind", "consumer", *member.on)
    assert daisee(*add).exit_code == 0

    granted = daisee(
        "consent", "grant", "--meter", "house-dev", *GRANT, "--days", "10", *member.on, "--json"
    )  # fmt: skip

    assert granted.exit_code == 0, granted.stderr
    assert granted.json()["status"] == "active"
    listed = daisee("consent", "list", "--meter", "house-dev", *member.on, "--json").json()["consents"]
    assert [c["grantor"] for c in listed] == [dev]
    assert daisee("consent", "list", "--meter", "house-1", *member.on, "--json").json()["consents"] == []


# --- bad input: one line, exit code 1, nothing recorded ---


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--purpose", "marketing"), "unknown purpose 'marketing': use one of loop_dashboard"),
        (("--kinds", "gas"), "unknown data kind 'gas'"),
        (("--granularity", "week"), "unknown granularity 'week'"),
        (("--to", "0x1234"), "--to '0x1234' is not an account, `members` or `everyone`"),
        (("--from", "2025-13-01"), "--from '2025-13-01' is not a date: give it as YYYY-MM-DD"),
        (("--days", "1200"), "a consent lasts at most 1096 days: choose an earlier expiry"),
        (("--days", "10", "--until", "2099-01-01"), "give --until YYYY-MM-DD or --days N (one of them)"),
        (("--from", "2020-01-01", "--until", "2020-02-01"), "over before it starts"),
    ],
    ids=["purpose", "kinds", "granularity", "grantee", "date", "beyond-three-years", "both-ends", "past"],
)
def test_bad_grants_are_named(daisee: Daisee, member: Member, change: tuple[str, ...], message: str) -> None:
    options = dict(zip(GRANT[::2], GRANT[1::2], strict=True)) | {"--days": "30"}
    given = dict(zip(change[::2], change[1::2], strict=True))
    if "--until" in given and "--days" not in given:
        del options["--days"]
    args = [item for pair in (options | given).items() for item in pair]

    outcome = daisee("consent", "grant", "--meter", "house-1", *args, "--account", "member", *member.on, env=PASSWORD)

    assert message in outcome.error()
    assert member.registry.consents() == []


def test_only_the_payout_account_grants(daisee: Daisee, member: Member, tmp_path: Path) -> None:
    _import(daisee, tmp_path, "neighbour", Account.create())

    outcome = daisee(
        "consent", "grant", "--meter", "house-1", *GRANT, "--days", "30", "--account", "neighbour", *member.on,
        env=PASSWORD,
    )  # fmt: skip

    assert "only meter 0x" in outcome.error()
    assert f"payout account {member.key.address} may grant a consent on it" in outcome.error()
    assert member.registry.consents() == []


def test_an_unknown_meter_is_named(daisee: Daisee, member: Member) -> None:
    outcome = daisee(
        "consent", "grant", "--meter", "house-404", *GRANT, "--days", "30", "--account", "member", *member.on,
        env=PASSWORD,
    )  # fmt: skip

    assert "no meter 0x" in outcome.error()
    assert "check the id with `daisee member list`" in outcome.error()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not a signed consent message"),
        ('{"typed_data": [], "signature": "0x00"}', "is not a signed consent message"),
        ('{"typed_data": {"message": {}}, "signature": "zz"}', "the signature is not hex"),
        (
            '{"typed_data": {"domain": {"chainId": 1, "verifyingContract": "0x' + "12" * 20 + '"}, "message": {}},'
            ' "signature": "0x00"}',
            "was signed for registry 0x" + "12" * 20 + " on chain 1, not this loop's",
        ),
    ],
    ids=["not-json", "wrong-shape", "signature", "other-registry"],
)
def test_a_malformed_signed_file_is_named(
    daisee: Daisee, member: Member, tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "signed.json").write_text(content)

    outcome = daisee("consent", "submit", "signed.json", *member.on)

    assert message in outcome.error()
    assert member.registry.consents() == []


def test_a_signed_file_whose_message_was_altered_is_refused_before_sending(
    daisee: Daisee, member: Member, tmp_path: Path
) -> None:
    signed = (*GRANT, "--days", "30", "--account", "member", "--signed-out", "grant.json", *member.on)
    assert daisee("consent", "grant", "--meter", "house-1", *signed, env=PASSWORD).exit_code == 0
    data = json.loads((tmp_path / "grant.json").read_text())
    data["typed_data"]["message"]["granularity"] = 0  # every interval, not the hours the member signed
    (tmp_path / "grant.json").write_text(json.dumps(data))
    nonce = member.chain.w3.eth.get_transaction_count(member.chain.dev_accounts()[0])

    outcome = daisee("consent", "submit", "grant.json", *member.on)

    assert "is not signed by meter 0x" in outcome.error()
    assert member.chain.w3.eth.get_transaction_count(member.chain.dev_accounts()[0]) == nonce
    assert member.registry.consents() == []


def test_revoking_an_unknown_or_malformed_consent_id_is_named(daisee: Daisee, member: Member) -> None:
    unknown = daisee("consent", "revoke", "0x" + "42" * 32, "--account", "member", *member.on, env=PASSWORD)
    malformed = daisee("consent", "revoke", "0x42", "--account", "member", *member.on, env=PASSWORD)

    assert "no consent 0x" + "42" * 32 in unknown.error()
    assert "consent id '0x42' is not a consent id: give 0x + 64 hex digits" in malformed.error()
