"""Encrypted keystores (Web3 Secret Storage, scrypt) for the PMO's and households' keys.

Keys never sit in plaintext on disk: a keystore file is unlocked with a password taken from
`--password-file`, the `DAISEE_PASSWORD` environment variable, or an interactive prompt.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils import to_checksum_address

from daisee.errors import DaiseeError

PASSWORD_ENV = "DAISEE_PASSWORD"
HOME_ENV = "DAISEE_HOME"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def daisee_home() -> Path:
    """Where daisee keeps per-user state: `$DAISEE_HOME`, or `~/.daisee`."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".daisee")


def keystore_dir() -> Path:
    return daisee_home() / "keystores"


@dataclass(frozen=True)
class KeystoreEntry:
    """A keystore on disk: its name, the address it holds, and its file."""

    name: str
    address: str
    path: Path


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise DaiseeError(f"invalid account name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return keystore_dir() / f"{name}.json"


def _write_new(path: Path, keystore: dict[str, object]) -> None:
    """Create `path` readable by its owner only; never overwrite an existing keystore."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DaiseeError(f"an account named {path.stem!r} already exists ({path}): choose another name") from None
    with os.fdopen(fd, "w") as out:
        json.dump(keystore, out)


def _store(name: str, private_key: bytes | HexStr, password: str) -> KeystoreEntry:
    if not password:
        raise DaiseeError("empty password: a keystore needs a password (set DAISEE_PASSWORD or answer the prompt)")
    path = _path(name)
    if path.exists():  # checked again atomically on write; this spares a slow scrypt
        raise DaiseeError(f"an account named {name!r} already exists ({path}): choose another name")
    keystore = Account.encrypt(private_key, password)
    _write_new(path, keystore)
    return KeystoreEntry(name, Account.from_key(private_key).address, path)


def create_account(name: str, password: str) -> KeystoreEntry:
    """A new random key, stored encrypted under `name`."""
    return _store(name, Account.create().key, password)


def import_account(name: str, private_key: HexStr, password: str) -> KeystoreEntry:
    """Store an existing private key (hex) encrypted under `name`."""
    try:
        Account.from_key(private_key)
    except (ValueError, TypeError):
        raise DaiseeError("that is not a private key: give 64 hex digits, with or without 0x") from None
    return _store(name, private_key, password)


def list_accounts() -> list[KeystoreEntry]:
    """Every keystore in the keystore folder, by name."""
    entries = []
    for path in sorted(keystore_dir().glob("*.json")):
        try:
            address = to_checksum_address(json.loads(path.read_text())["address"])
        except (ValueError, KeyError, TypeError, OSError):
            continue  # not a keystore
        entries.append(KeystoreEntry(path.stem, address, path))
    return entries


def unlock(name: str, password: str) -> LocalAccount:
    """The account stored under `name`, decrypted with `password`."""
    path = _path(name)
    try:
        keystore = json.loads(path.read_text())
    except FileNotFoundError:
        raise DaiseeError(f"no account named {name!r} in {keystore_dir()}: see `daisee account list`") from None
    except ValueError:
        raise DaiseeError(f"{path} is not a keystore (invalid JSON): restore it from your backup") from None
    try:
        key = Account.decrypt(keystore, password)
    except ValueError:
        raise DaiseeError(f"wrong password for account {name!r}: try again or check {PASSWORD_ENV}") from None
    account: LocalAccount = Account.from_key(key)
    return account


def read_password(password_file: Path | None) -> str | None:
    """The password from `password_file` (first line) or `$DAISEE_PASSWORD`; None if neither is set."""
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DaiseeError(f"cannot read the password file {password_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise DaiseeError(f"the password file {password_file} is not UTF-8 text: save it as UTF-8") from None
        return lines[0] if lines else ""
    return os.environ.get(PASSWORD_ENV)
