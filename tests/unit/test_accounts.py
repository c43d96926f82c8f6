"""Encrypted keystores: create, import, unlock, list, and where the password comes from.

Scrypt makes every keystore cost about a second to write and another to unlock, so most tests
copy one keystore made once per module instead of encrypting their own.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from daisee.chain.accounts import (
    PASSWORD_ENV,
    create_account,
    import_account,
    keystore_dir,
    list_accounts,
    read_password,
    unlock,
)
from daisee.errors import DaiseeError

KNOWN_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KNOWN_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
PASSWORD = "correct horse battery staple"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def known_keystore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keystore of KNOWN_KEY under PASSWORD, written once by import_account in a private home."""
    home = tmp_path_factory.mktemp("keystore-source")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAISEE_HOME", str(home))
        return import_account("source", KNOWN_KEY, PASSWORD).path


def install(keystore: Path, name: str) -> Path:
    """Copy `keystore` into the test's keystore folder under `name`."""
    keystore_dir().mkdir(parents=True, exist_ok=True)
    target = keystore_dir() / f"{name}.json"
    shutil.copyfile(keystore, target)
    return target


# --- create / import / unlock --------------------------------------------------------------------


def test_create_then_unlock_round_trips_the_same_address(isolated_home: Path) -> None:
    entry = create_account("pmo", PASSWORD)

    account = unlock("pmo", PASSWORD)

    assert account.address == entry.address
    assert entry.name == "pmo"
    assert entry.path == isolated_home / "keystores" / "pmo.json"
    assert json.loads(entry.path.read_text())["address"].lower() == entry.address[2:].lower()


def test_import_account_of_a_known_key_gives_its_known_address() -> None:
    entry = import_account("house-12", KNOWN_KEY, PASSWORD)

    assert entry.address == KNOWN_ADDRESS
    assert entry.path.name == "house-12.json"
    assert json.loads(entry.path.read_text())["address"].lower() == KNOWN_ADDRESS[2:].lower()


def test_keystore_file_is_owner_only_in_an_owner_only_folder(known_keystore: Path) -> None:
    # the module fixture wrote this file with import_account, in a folder that did not exist
    assert mode(known_keystore) == 0o600
    assert mode(known_keystore.parent) == 0o700


def test_keystore_file_holds_no_plaintext_private_key(known_keystore: Path) -> None:
    text = known_keystore.read_text()
    key_hex = KNOWN_KEY[2:]

    assert key_hex not in text.lower()
    assert json.loads(text)["crypto"]["kdf"] == "scrypt"


def test_unlock_an_imported_keystore_returns_the_original_key(known_keystore: Path) -> None:
    install(known_keystore, "pmo")

    account = unlock("pmo", PASSWORD)

    assert account.address == KNOWN_ADDRESS
    assert account.key.to_0x_hex() == KNOWN_KEY


def test_unlock_rejects_a_wrong_password(known_keystore: Path) -> None:
    install(known_keystore, "x")

    with pytest.raises(DaiseeError) as excinfo:
        unlock("x", "not the password")

    message = str(excinfo.value)
    assert message.startswith("wrong password for account 'x'")
    assert PASSWORD_ENV in message


def test_unlock_rejects_an_unknown_name_pointing_to_account_list() -> None:
    with pytest.raises(DaiseeError) as excinfo:
        unlock("nobody", PASSWORD)

    message = str(excinfo.value)
    assert "no account named 'nobody'" in message
    assert "`daisee account list`" in message


def test_unlock_rejects_a_keystore_file_that_is_not_json() -> None:
    keystore_dir().mkdir(parents=True)
    (keystore_dir() / "broken.json").write_text("{not json")

    with pytest.raises(DaiseeError, match="is not a keystore"):
        unlock("broken", PASSWORD)


def test_import_refuses_an_existing_name_and_leaves_the_original_untouched(known_keystore: Path) -> None:
    original = install(known_keystore, "pmo")
    before = original.read_bytes()
    other_key = "0x" + "11" * 32

    with pytest.raises(DaiseeError) as excinfo:
        import_account("pmo", other_key, "another password")

    assert "an account named 'pmo' already exists" in str(excinfo.value)
    assert original.read_bytes() == before
    assert sorted(p.name for p in keystore_dir().iterdir()) == ["pmo.json"]


@pytest.mark.parametrize("name", ["../evil", "", "a/b", ".hidden", "-dash", "x" * 65, "white space"])
def test_rejects_an_invalid_account_name(name: str, isolated_home: Path) -> None:
    with pytest.raises(DaiseeError, match="invalid account name"):
        import_account(name, KNOWN_KEY, PASSWORD)

    assert not (isolated_home / "evil.json").exists()
    assert not keystore_dir().exists() or list(keystore_dir().iterdir()) == []


def test_unlock_rejects_an_invalid_account_name_before_touching_the_disk() -> None:
    with pytest.raises(DaiseeError, match=r"invalid account name '\.\./evil'"):
        unlock("../evil", PASSWORD)


@pytest.mark.parametrize("key", ["hello", "0x1234", "0x" + "00" * 32, "0x" + "zz" * 32, ""])
def test_import_refuses_something_that_is_not_a_private_key(key: str) -> None:
    with pytest.raises(DaiseeError, match="not a private key"):
        import_account("pmo", key, PASSWORD)

    assert not (keystore_dir() / "pmo.json").exists()


def test_import_accepts_a_key_without_0x_prefix() -> None:
    entry = import_account("bare", KNOWN_KEY[2:], PASSWORD)

    assert entry.address == KNOWN_ADDRESS


def test_refuses_an_empty_password() -> None:
    with pytest.raises(DaiseeError, match="empty password"):
        import_account("pmo", KNOWN_KEY, "")
    with pytest.raises(DaiseeError, match="empty password"):
        create_account("pmo", "")

    assert not (keystore_dir() / "pmo.json").exists()


# --- list_accounts -------------------------------------------------------------------------------


def test_list_accounts_is_empty_without_a_keystore_folder() -> None:
    assert list_accounts() == []


def test_list_accounts_is_sorted_and_skips_a_json_file_that_is_not_a_keystore(known_keystore: Path) -> None:
    for name in ("zeta", "alpha", "mid"):
        install(known_keystore, name)
    (keystore_dir() / "notes.json").write_text(json.dumps({"hello": "world"}))
    (keystore_dir() / "garbage.json").write_text("not json at all")
    (keystore_dir() / "readme.txt").write_text("not a .json file")

    entries = list_accounts()

    assert [entry.name for entry in entries] == ["alpha", "mid", "zeta"]
    assert {entry.address for entry in entries} == {KNOWN_ADDRESS}
    assert [entry.path for entry in entries] == [keystore_dir() / f"{n}.json" for n in ("alpha", "mid", "zeta")]


@pytest.mark.parametrize("content", ["[1, 2]", '"a string"', '{"address": "zz"}'])
def test_list_accounts_skips_json_that_is_not_a_keystore_object(content: str, known_keystore: Path) -> None:
    install(known_keystore, "pmo")
    (keystore_dir() / "odd.json").write_text(content)

    assert [entry.name for entry in list_accounts()] == ["pmo"]


# --- read_password -------------------------------------------------------------------------------


def test_read_password_file_first_line_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    password_file = tmp_path / "password"
    password_file.write_text("from-file\nsecond line\n")

    assert read_password(password_file) == "from-file"


def test_read_password_uses_the_environment_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "from-env")

    assert read_password(None) == "from-env"


def test_read_password_is_none_when_neither_file_nor_environment_is_set() -> None:
    assert read_password(None) is None


def test_read_password_of_an_empty_file_is_empty(tmp_path: Path) -> None:
    password_file = tmp_path / "empty"
    password_file.write_text("")

    assert read_password(password_file) == ""


@pytest.mark.parametrize("which", ["missing", "directory"])
def test_read_password_rejects_an_unreadable_file(which: str, tmp_path: Path) -> None:
    password_file = tmp_path / which
    if which == "directory":
        password_file.mkdir()

    with pytest.raises(DaiseeError) as excinfo:
        read_password(password_file)

    assert str(excinfo.value).startswith(f"cannot read the password file {password_file}")


def test_read_password_rejects_a_file_that_is_not_utf8_text(tmp_path: Path) -> None:
    password_file = tmp_path / "latin1"
    password_file.write_bytes("mot de passe é\n".encode("latin-1"))

    with pytest.raises(DaiseeError, match="password file"):
        read_password(password_file)
