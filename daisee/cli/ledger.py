"""`daisee ledger`: a member's money in the loop: balance, debt and receivable; deposits and withdrawals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daisee.cli.options import account_address, chain_options, json_option, open_loop, open_reader, read_chain_options
from daisee.cli.output import console, print_json, sent
from daisee.cli.values import amount_units, money
from daisee.domain import address
from daisee.errors import DaiseeError
from daisee.loop import RECEIVABLE_CLAIMS, AccountBalance, Loop


@click.group()
def ledger() -> None:
    """Members' money: balance (withdrawable), debt, receivable; deposit, withdraw, pay receivables."""


def _position(loop: Loop, account: str) -> dict[str, Any]:
    return {"account": account, **loop.account(account).as_json()}


def _said(account: str, position: AccountBalance) -> str:
    return (
        f"{account}: balance {money(position.balance)} (withdrawable), debt {money(position.debt)}, "
        f"receivable {money(position.receivable)}, net {money(position.net)}"
    )


@ledger.command("balance")
@click.argument("account_or_address", metavar="[ADDRESS]", required=False)
@click.option("--account", help="Keystore account whose position to show (no password needed).")
@read_chain_options
@json_option
def balance(
    account_or_address: str | None,
    account: str | None,
    chain_target: str,
    chain_id: int | None,
    deployments_dir: Path,
    as_json: bool,
) -> None:
    """ADDRESS's position in the loop (default: --account, else a dev chain's first account). Needs no key.

    Balance is what it may withdraw; debt what it owes for energy its balance did not cover (repaid first
    from anything it receives); receivable what the loop owes it from other members' debts (paid as they
    repay, oldest first); net = balance + receivable - debt.
    """
    if account_or_address and account:
        raise DaiseeError("give an ADDRESS or --account, not both")
    whose = address(account_or_address, "ADDRESS") if account_or_address else None
    loop, _ = open_reader(chain_target, chain_id, deployments_dir)
    whose = whose or account_address(loop.sender.chain, account)
    if as_json:
        print_json(_position(loop, whose))
        return
    console.print(_said(whose, loop.account(whose)))


@ledger.command("deposit")
@click.argument("amount")
@click.option("--for", "beneficiary", help="Credit this account instead of the signing one (prepaying a household).")
@chain_options
@json_option
def deposit(amount: str, beneficiary: str | None, as_json: bool, **chain_args: Any) -> None:
    """Move AMOUNT of the settlement token (currency units, e.g. 25 or 12.50) into the loop.

    It repays the credited account's debt first; the rest is its balance, withdrawable at any time.
    """
    units = amount_units(amount, "AMOUNT")
    credited = address(beneficiary, "--for") if beneficiary else None
    loop = open_loop(**chain_args)
    token = loop.settlement_token()
    if token is None:
        raise DaiseeError("this loop has no settlement token (a credits-only ledger): nothing to deposit")
    held = int(token.functions.balanceOf(loop.sender.address).call())
    if held < units:
        raise DaiseeError(
            f"{loop.sender.address} holds {money(held)} of the settlement token {token.address}, "
            f"not the {money(units)} to deposit: fund it first"
        )
    receipt = loop.deposit(units, credited)
    credited = credited or loop.sender.address
    received = sum(int(e["args"]["received"]) for e in loop.events("Deposited", receipt))
    if as_json:
        print_json({**_position(loop, credited), "deposited": received, **sent(receipt)})
        return
    console.print(f"deposited {money(received)}; {_said(credited, loop.account(credited))}")


@ledger.command("withdraw")
@click.argument("amount")
@chain_options
@json_option
def withdraw(amount: str, as_json: bool, **chain_args: Any) -> None:
    """Take AMOUNT (currency units, or `all`) of the signing account's balance out, paused or not."""
    units = None if amount.strip().lower() == "all" else amount_units(amount, "AMOUNT")
    loop = open_loop(**chain_args)
    me = loop.sender.address
    available = loop.account(me).balance
    if units is None and available == 0:
        raise DaiseeError(f"{me} has nothing to withdraw: its balance is {money(0)}")
    if units is not None and units > available:
        raise DaiseeError(
            f"{me} may withdraw at most its balance of {money(available)}, not {money(units)}: "
            "see `daisee ledger balance`"
        )
    receipt = loop.withdraw(available if units is None else units)
    withdrawn = sum(int(e["args"]["amount"]) for e in loop.events("Withdrawn", receipt))
    if as_json:
        print_json({**_position(loop, me), "withdrawn": withdrawn, **sent(receipt)})
        return
    console.print(f"withdrew {money(withdrawn)}; {_said(me, loop.account(me))}")


@ledger.command("pay-receivables")
@click.option(
    "--max-claims",
    type=click.IntRange(min=1),
    default=RECEIVABLE_CLAIMS,
    show_default=True,
    help="Receivables paid at most in this transaction.",
)
@chain_options
@json_option
def pay_receivables(max_claims: int, as_json: bool, **chain_args: Any) -> None:
    """Pay producers' receivables, oldest first, from the debts members repaid (anyone may; a keeper does)."""
    loop = open_loop(**chain_args)
    recovered, claims = loop.receivables_queue()
    receipt = loop.pay_receivables(max_claims) if recovered and claims else None
    events = loop.events("ReceivablePaid", receipt) if receipt else ()
    paid = [(e["args"]["account"], int(e["args"]["amount"])) for e in events]
    recovered_after, claims_after = loop.receivables_queue()
    if as_json:
        print_json(
            {
                "paid": [{"account": a, "amount": amount} for a, amount in paid],
                "recovered": recovered_after,
                "claims": claims_after,
                **(sent(receipt) if receipt else {"tx_hash": None, "gas_used": 0}),
            }
        )
        return
    if receipt is None:
        console.print(f"nothing to pay: {money(recovered)} of repaid debts waits for {claims} receivables outstanding")
        return
    for account, amount in paid:
        console.print(f"paid {money(amount)} to {account}")
    console.print(
        f"{claims_after} receivables outstanding, {money(recovered_after)} of repaid debts waiting; "
        f"gas {receipt['gasUsed']:,}"
    )
