"""Options shared by the commands that talk to a chain, and what they resolve to."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from eth_utils import to_checksum_address
from web3.exceptions import ContractLogicError

from daisee.chain.accounts import PASSWORD_ENV, keystore_dir, list_accounts, read_password, unlock
from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import DEPLOYMENTS_DIR, TEST_EURO, ZERO_ADDRESS, load_deployment
from daisee.chain.networks import gwei_setting
from daisee.chain.transact import Sender
from daisee.domain import address
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterInfo

CHAIN_ENV = "DAISEE_CHAIN"


def _apply(command: Callable[..., Any], decorators: list[Callable[..., Any]]) -> Callable[..., Any]:
    return functools.reduce(lambda f, decorate: decorate(f), reversed(decorators), command)


_CHAIN = click.option(
    "--chain",
    "chain_target",
    default=lambda: os.environ.get(CHAIN_ENV, "embedded"),
    show_default="embedded, or $DAISEE_CHAIN",
    help="embedded, anvil, ganache (at 127.0.0.1:8545), an http(s):// RPC URL or a network profile "
    "(see `daisee chain networks`).",
)
_CHAIN_ID = click.option("--chain-id", type=int, help="Refuse to act unless the node reports this chain id.")
_DEPLOYMENTS = click.option(
    "--deployments",
    "deployments_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEPLOYMENTS_DIR,
    show_default=True,
    help="Folder of deployment records.",
)
_TX_SETTINGS = "daisee.tx_settings"  # click context key: the transaction options, read by open_chain


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:
        ctx.meta.setdefault(_TX_SETTINGS, {})[param.name] = value


_CONFIRMATIONS = click.option(
    "--confirmations",
    type=click.IntRange(0, 64),
    expose_value=False,
    callback=_remember,
    help="Blocks to wait on top of each transaction's (default: the network profile's; 0 on dev chains).",
)
_MAX_FEE = click.option(
    "--max-fee-gwei",
    expose_value=False,
    callback=_remember,
    help="Never offer more than this per gas (default: the network profile's cap, else none).",
)
_ACCOUNT = click.option(
    "--account",
    help="Keystore account that signs (see `daisee account`); dev chains default to their first account.",
)
_PASSWORD_FILE = click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"File whose first line unlocks --account (else ${PASSWORD_ENV}, else a prompt).",
)


def read_chain_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--chain`, `--chain-id` and `--deployments`: for commands that only read."""
    return _apply(command, [_CHAIN, _CHAIN_ID, _DEPLOYMENTS])


def chain_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--chain`, `--chain-id`, `--account`, `--password-file`, `--deployments` and the transaction options."""
    return _apply(command, [_CHAIN, _CHAIN_ID, _ACCOUNT, _PASSWORD_FILE, _DEPLOYMENTS, _CONFIRMATIONS, _MAX_FEE])


def read_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--chain`, `--chain-id`, `--deployments` and `--confirmations`: for commands that only read the chain."""
    return _apply(command, [_CHAIN, _CHAIN_ID, _DEPLOYMENTS, _CONFIRMATIONS])


def _settlement_token(ctx: click.Context, param: click.Parameter, value: str) -> str | None:
    return None if value == "none" else value if value == TEST_EURO else address(value, "--token")


def token_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--token`: the loop's settlement ERC-20, given to the command as `token` (an address, TEST_EURO or None)."""
    return click.option(
        "--token",
        default=TEST_EURO,
        show_default=True,
        callback=_settlement_token,
        help="Settlement ERC-20 address for deposits and withdrawals, `test-euro` (dev chains) or `none`.",
    )(command)


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables.")(command)


def password_for(name: str, password_file: Path | None, *, confirm: bool = False) -> str:
    """The password for keystore `name`: file, environment, or an interactive prompt."""
    password = read_password(password_file)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise DaiseeError(f"no password for account {name!r}: set {PASSWORD_ENV} or pass --password-file")
    prompted: str = click.prompt(
        f"Password for account {name!r}", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return prompted


def open_chain(chain_target: str, chain_id: int | None) -> Chain:
    """Connect, applying `--confirmations` and `--max-fee-gwei` when the command has them."""
    context = click.get_current_context(silent=True)
    settings = context.meta.get(_TX_SETTINGS, {}) if context else {}
    chain = connect(chain_target, expected_chain_id=chain_id, confirmations=settings.get("confirmations"))
    if "max_fee_gwei" in settings:
        cap = gwei_setting(settings["max_fee_gwei"], "--max-fee-gwei")
        chain.policy = dataclasses.replace(chain.policy, max_fee_gwei=cap)
    return chain


def open_sender(chain: Chain, account: str | None, password_file: Path | None) -> Sender:
    """The signing account: a keystore if named, else the dev chain's first unlocked account."""
    if account:
        return Sender.local(chain, unlock(account, password_for(account, password_file)))
    if not chain.is_dev:
        raise DaiseeError(f"{chain.label} needs a signing account: pass --account NAME (see `daisee account new`)")
    return Sender.dev(chain)


def open_loop(
    chain_target: str, chain_id: int | None, account: str | None, password_file: Path | None, deployments_dir: Path
) -> Loop:
    """The recorded loop of the chain, driven by the signing account (the arguments of `chain_options`)."""
    chain = open_chain(chain_target, chain_id)
    deployment = load_deployment(chain, deployments_dir)
    return Loop(open_sender(chain, account, password_file), deployment.address)


def open_reader(chain_target: str, chain_id: int | None, deployments_dir: Path) -> tuple[Loop, int]:
    """The recorded loop, for reads only (nothing is signed or sent), and the block it was deployed in."""
    chain = open_chain(chain_target, chain_id)
    deployment = load_deployment(chain, deployments_dir)
    return Loop(Sender(chain, to_checksum_address(ZERO_ADDRESS)), deployment.address), deployment.block


def account_address(chain: Chain, account: str | None) -> str:
    """The address of keystore `account` (no password needed), else a dev chain's first account."""
    if account is None:
        if not chain.is_dev:
            raise DaiseeError(f"whose? on {chain.label} give an address or --account NAME (see `daisee account list`)")
        return str(chain.dev_accounts()[0])
    for entry in list_accounts():
        if entry.name == account:
            return str(entry.address)
    raise DaiseeError(f"no account named {account!r} in {keystore_dir()}: see `daisee account list`")


def require_pmo(loop: Loop) -> None:
    """Refuse, before spending gas, a PMO power asked by another account."""
    pmo = loop.pmo()
    if loop.sender.address != pmo:
        raise DaiseeError(
            f"only the loop's PMO {pmo} may do this, not {loop.sender.address}: pass --account with the PMO's key"
        )


def known_meter(loop: Loop, mid: bytes, *, active: bool = True) -> MeterInfo:
    """The meter registered under `mid`, or a one-line error; with `active`, a removed one is refused too."""
    try:
        info = loop.meter(mid)
    except ContractLogicError:
        raise DaiseeError(f"no meter 0x{mid.hex()} in the loop {loop.address}: see `daisee member list`") from None
    if active and not info.active:
        raise DaiseeError(f"meter 0x{mid.hex()} was removed: admit the household again under a new id")
    return info
