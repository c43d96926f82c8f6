"""Sign-In with Ethereum (EIP-4361): the message a member's wallet signs to open a session on the régie,
written and read exactly as the standard's grammar has it, and checked against what the régie expects.

A message proves that the holder of `address` asked, at `issued_at`, for a session on this `domain` and
this chain, with a `nonce` the régie handed out. The régie refuses a message for another domain, URI or
chain, one whose nonce it did not issue or already took (the caller's nonce store decides), one issued in
the future or too long ago, expired or not valid yet, and a signature (EIP-191) that is not the address's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address

VERSION = "1"
CLOCK_SKEW = timedelta(minutes=1)  # a message issued this far in the future is still taken
MAX_AGE = timedelta(minutes=10)  # a message older than this is refused: sign a fresh one
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_HEADER = " wants you to sign in with your Ethereum account:"
_FIELDS = ("URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time", "Not Before", "Request ID")
_OPTIONAL = frozenset({"Expiration Time", "Not Before", "Request ID"})


class SignInError(Exception):
    """A sign-in refused: the message says why and what to do."""


@dataclass(frozen=True)
class SiweMessage:
    """An EIP-4361 message; times are aware datetimes."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    statement: str | None = None
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default=())

    def text(self) -> str:
        """The message as the wallet shows and signs it."""
        lines = [self.domain + _HEADER, self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += ["", f"URI: {self.uri}", f"Version: {VERSION}", f"Chain ID: {self.chain_id}", f"Nonce: {self.nonce}"]
        lines.append(f"Issued At: {_timestamp(self.issued_at)}")
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {_timestamp(self.expiration_time)}")
        if self.not_before is not None:
            lines.append(f"Not Before: {_timestamp(self.not_before)}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines += ["Resources:", *(f"- {resource}" for resource in self.resources)]
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> SiweMessage:
        """The message in `text`, read by the standard's grammar (SignInError naming the first wrong line)."""
        lines = text.split("\n")
        if len(lines) < 8 or not lines[0].endswith(_HEADER):
            raise SignInError(f"not a Sign-In with Ethereum message: its first line must end with {_HEADER!r}")
        domain, address = lines[0].removesuffix(_HEADER), lines[1]
        if not domain or any(c.isspace() for c in domain):
            raise SignInError(f"the message's domain {domain!r} is not a host")
        if not is_checksum_address(address):
            raise SignInError(f"the message's address {address!r} is not an EIP-55 checksummed address")
        if lines[2] != "":
            raise SignInError("the message's third line must be empty")
        statement, rest = (None, lines[4:]) if lines[3] == "" else (lines[3], lines[5:])
        if statement is not None and lines[4] != "":
            raise SignInError("the message's statement must be one line followed by an empty line")
        values, resources = _fields(rest)
        if values["Version"] != VERSION:
            raise SignInError(f"the message's version is {values['Version']!r}, not {VERSION!r}")
        if not values["Chain ID"].isdigit():
            raise SignInError(f"the message's chain id {values['Chain ID']!r} is not a number")
        if not _NONCE.fullmatch(values["Nonce"]):
            raise SignInError("the message's nonce must be 8 or more letters and digits")
        return cls(
            domain=domain,
            address=address,
            uri=values["URI"],
            chain_id=int(values["Chain ID"]),
            nonce=values["Nonce"],
            issued_at=_parse_time("Issued At", values["Issued At"]),
            statement=statement,
            expiration_time=_optional_time("Expiration Time", values),
            not_before=_optional_time("Not Before", values),
            request_id=values.get("Request ID"),
            resources=resources,
        )


@dataclass(frozen=True)
class Expected:
    """What the régie takes: its domain (host[:port]), its URI's origin, the loop's chain."""

    domain: str
    origin: str
    chain_id: int


def verify(text: str, signature: str, expected: Expected, now: datetime) -> SiweMessage:
    """The message, once `signature` (0x-hex, 65 bytes) is its address's and it is for `expected` at `now`;
    SignInError otherwise. The caller checks the nonce against its store and takes it."""
    message = SiweMessage.parse(text)
    if message.domain != expected.domain:
        raise SignInError(f"the message is for {message.domain}, not {expected.domain}: sign in from this site")
    if not (message.uri == expected.origin or message.uri.startswith(expected.origin + "/")):
        raise SignInError(f"the message's URI {message.uri} is not on {expected.origin}: sign in from this site")
    if message.chain_id != expected.chain_id:
        raise SignInError(f"the message is for chain {message.chain_id}, not {expected.chain_id}: switch networks")
    if message.issued_at > now + CLOCK_SKEW:
        raise SignInError("the message was issued in the future: check your device's clock")
    if message.issued_at < now - MAX_AGE:
        raise SignInError(f"the message was issued more than {MAX_AGE.seconds // 60} minutes ago: sign in again")
    if message.expiration_time is not None and message.expiration_time <= now:
        raise SignInError("the message has expired: sign in again")
    if message.not_before is not None and message.not_before > now:
        raise SignInError("the message is not valid yet: check your device's clock")
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception:  # eth-account raises several types for a malformed signature
        raise SignInError("the signature is not a 65-byte Ethereum signature: sign the message again") from None
    if signer != message.address:
        raise SignInError(f"the message is not signed by {message.address}: sign it with that account")
    return message


def _fields(lines: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The `Name: value` lines in the standard's order, then the resources."""
    values: dict[str, str] = {}
    position = 0
    for name in _FIELDS:
        if position < len(lines) and lines[position].startswith(name + ": "):
            values[name] = lines[position].removeprefix(name + ": ")
            position += 1
        elif name not in _OPTIONAL:
            raise SignInError(f"the message has no {name!r} line where the standard puts it")
    resources: list[str] = []
    if position < len(lines) and lines[position] == "Resources:":
        resources = [line.removeprefix("- ") for line in lines[position + 1 :] if line.startswith("- ")]
        position += 1 + len(resources)
    if position != len(lines):
        raise SignInError(f"the message has an unexpected line {lines[position][:60]!r}")
    return values, tuple(resources)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SignInError(f"the message's {name} {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise SignInError(f"the message's {name} {value!r} has no time zone: give Z or an offset")
    return moment


def _optional_time(name: str, values: dict[str, str]) -> datetime | None:
    return _parse_time(name, values[name]) if name in values else None
