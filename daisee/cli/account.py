"""`daisee account`: encrypted keystores for the PMO and the households' gateways."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import click
from eth_typing import HexStr
from rich.table import Table

from daisee.chain.accounts import create_account, import_account, keystore_dir, list_accounts
from daisee.cli.options import json_option, password_for
from daisee.cli.output import console, print_json
from daisee.errors import DaiseeError

_password_file = click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File whose first line is the password (else $DAISEE_PASSWORD, else a prompt).",
)


@click.group()
def account() -> None:
    """Create, import and list encrypted keystores (in $DAISEE_HOME/keystores, default ~/.daisee)."""


@account.command("new")
@click.argument("name")
@_password_file
@json_option
def new(name: str, password_file: Path | None, as_json: bool) -> None:
    """Create a new random key stored as NAME."""
    entry = create_account(name, password_for(name, password_file, confirm=True))
    if as_json:
        print_json({"name": entry.name, "address": entry.address, "path": str(entry.path)})
    else:
        console.print(f"account [bold]{entry.name}[/] {entry.address} saved in {entry.path}")


@account.command("import")
@click.argument("name")
@click.option(
    "--key-file",
    type=click.File("r"),
    help="File holding the private key in hex ('-' for stdin); otherwise it is prompted, hidden.",
)
@_password_file
@json_option
def import_(name: str, key_file: TextIO | None, password_file: Path | None, as_json: bool) -> None:
    """Encrypt an existing private key as NAME (the key is never echoed or stored in plaintext)."""
    if key_file is not None:
        private_key = key_file.read().strip()
    elif sys.stdin.isatty():
        private_key = click.prompt("Private key (hex)", hide_input=True, err=True)
    else:
        raise DaiseeError("no private key given: pass --key-file FILE (or '-' to read it from stdin)")
    entry = import_account(name, HexStr(private_key), password_for(name, password_file, confirm=True))
    if as_json:
        print_json({"name": entry.name, "address": entry.address, "path": str(entry.path)})
    else:
        console.print(f"account [bold]{entry.name}[/] {entry.address} saved in {entry.path}")


@account.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List the stored accounts and their addresses."""
    entries = list_accounts()
    if as_json:
        print_json([{"name": e.name, "address": e.address, "path": str(e.path)} for e in entries])
        return
    if not entries:
        console.print(f"no accounts in {keystore_dir()}: create one with `daisee account new NAME`")
        return
    table = Table("name", "address", "keystore")
    for e in entries:
        table.add_row(e.name, e.address, str(e.path))
    console.print(table)
