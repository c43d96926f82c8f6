from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given
from hypothesis import strategies as st

from daisee.regie.siwe import Expected, SignInError, SiweMessage, verify

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
MEMBER = Account.from_key(b"\x01" * 32)
EXPECTED = Expected("regie.example:8443", "https://regie.example:8443", 31337)
MESSAGE = SiweMessage(
    domain="regie.example:8443",
    address=MEMBER.address,
    uri="https://regie.example:8443/login",
    chain_id=31337,
    nonce="k3Jd92mXq0",
    issued_at=NOW - timedelta(seconds=30),
    statement="Sign in to the régie of your loop.",
    expiration_time=NOW + timedelta(hours=8),
)

# EIP-4361's own example
EIP_EXAMPLE = """example.com wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ExampleOrg Terms of Service: https://example.com/tos

URI: https://example.com/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json"""


def sign(text: str, account: object = MEMBER) -> str:
    return "0x" + Account.sign_message(encode_defunct(text=text), account.key).signature.hex()  # type: ignore[attr-defined]


def test_a_member_signs_in_with_a_message_its_wallet_signed() -> None:
    text = MESSAGE.text()
    assert verify(text, sign(text), EXPECTED, NOW) == MESSAGE
    assert text.splitlines()[:4] == [
        "regie.example:8443 wants you to sign in with your Ethereum account:",
        MEMBER.address,
        "",
        "Sign in to the régie of your loop.",
    ]


def test_the_standard_s_own_example_reads_back_to_the_same_text() -> None:
    message = SiweMessage.parse(EIP_EXAMPLE)
    assert (message.domain, message.chain_id, message.nonce) == ("example.com", 1, "32891756")
    assert message.issued_at == datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)
    assert len(message.resources) == 2
    assert message.text() == EIP_EXAMPLE


@pytest.mark.parametrize(
    ("changed", "said"),
    [
        ({"domain": "evil.example"}, "the message is for evil.example, not regie.example:8443"),
        ({"uri": "https://regie.example:8443.evil/login"}, "is not on https://regie.example:8443"),
        ({"chain_id": 1}, "the message is for chain 1, not 31337: switch networks"),
        ({"issued_at": NOW + timedelta(minutes=5)}, "issued in the future"),
        ({"issued_at": NOW - timedelta(minutes=11)}, "issued more than 10 minutes ago"),
        ({"expiration_time": NOW}, "the message has expired"),
        ({"not_before": NOW + timedelta(minutes=1)}, "not valid yet"),
    ],
)
def test_a_message_for_another_site_chain_or_time_is_refused(changed: dict[str, object], said: str) -> None:
    text = replace(MESSAGE, **changed).text()  # type: ignore[arg-type]
    with pytest.raises(SignInError, match=said):
        verify(text, sign(text), EXPECTED, NOW)


def test_a_signature_by_anyone_else_or_malformed_is_refused() -> None:
    text = MESSAGE.text()
    with pytest.raises(SignInError, match=f"not signed by {MEMBER.address}: sign it with that account"):
        verify(text, sign(text, Account.create()), EXPECTED, NOW)
    with pytest.raises(SignInError, match=f"not signed by {MEMBER.address}"):
        verify(text.replace("Nonce: k3Jd92mXq0", "Nonce: k3Jd92mXq1"), sign(text), EXPECTED, NOW)  # altered
    for garbage in ("0x", "0x" + "00" * 65, "nonsense"):
        with pytest.raises(SignInError, match=r"not a 65-byte Ethereum signature|not signed by"):
            verify(text, garbage, EXPECTED, NOW)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "not a Sign-In with Ethereum message"),
        (MESSAGE.text().replace(MEMBER.address, MEMBER.address.lower()), "is not an EIP-55 checksummed address"),
        (MESSAGE.text().replace("Nonce: k3Jd92mXq0\n", ""), "has no 'Nonce' line"),
        (MESSAGE.text().replace("Nonce: k3Jd92mXq0", "Nonce: short"), "nonce must be 8 or more"),
        (MESSAGE.text().replace("Version: 1", "Version: 2"), "version is '2'"),
        (MESSAGE.text().replace("Chain ID: 31337", "Chain ID: 0x7a69"), "chain id '0x7a69' is not a number"),
        (MESSAGE.text() + "\nWhatever: 1", "unexpected line 'Whatever: 1'"),
        (MESSAGE.text().replace("Issued At: 2026-12-03T11:59:30Z", "Issued At: yesterday"), "not an RFC 3339"),
        (MESSAGE.text().replace("2026-12-03T11:59:30Z", "2026-12-03T11:59:30"), "has no time zone"),
    ],
)
def test_a_malformed_message_is_refused_naming_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(SignInError, match=said):
        SiweMessage.parse(text)


@given(
    st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1)),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=32),
    st.integers(1, 2**63),
    st.lists(st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9]{0,10}", fullmatch=True), max_size=3),
)
def test_every_message_reads_back_as_written(
    statement: str | None, nonce: str, chain_id: int, resources: list[str]
) -> None:
    message = replace(MESSAGE, statement=statement, nonce=nonce, chain_id=chain_id, resources=tuple(resources))
    assert SiweMessage.parse(message.text()) == message
