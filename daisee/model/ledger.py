"""Pure-Python reference of the loop's ledger (`Ledger.sol`): balances, debts and receivables.

A consumer pays from its balance and owes the rest; producers share what was paid and are owed the
rest, queued oldest first for the debts repaid later. What members may withdraw never exceeds what the
loop holds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from daisee.model.errors import ModelRevert

UINT96_MAX = 2**96 - 1


@dataclass
class _Claim:
    holder: str
    amount: int


@dataclass(frozen=True)
class Account:
    """A member's money: what it may withdraw, what it owes, what it is owed."""

    balance: int = 0
    debt: int = 0
    receivable: int = 0

    @property
    def net(self) -> int:
        return self.balance + self.receivable - self.debt


class LedgerModel:
    """The ledger as the contract keeps it; `with_token` is false for a credits-only loop."""

    def __init__(self, *, with_token: bool) -> None:
        self.with_token = with_token
        self.held = 0  # tokens deposited and not withdrawn
        self.recovered = 0  # repaid debts not yet paid out
        self._balances: dict[str, int] = {}
        self._debts: dict[str, int] = {}
        self._receivables: dict[str, int] = {}
        self._claims: deque[_Claim] = deque()  # oldest first

    def account(self, address: str) -> Account:
        return Account(self._balances.get(address, 0), self._debts.get(address, 0), self._receivables.get(address, 0))

    def accounts(self) -> dict[str, Account]:
        """Every account the ledger ever touched."""
        seen = dict.fromkeys([*self._balances, *self._debts, *self._receivables])
        return {address: self.account(address) for address in seen}

    def claims(self) -> list[tuple[str, int]]:
        """The receivables waiting for repaid debts, oldest first."""
        return [(claim.holder, claim.amount) for claim in self._claims]

    # --- members' calls

    def deposit(self, address: str, amount: int) -> None:
        """`address` brings `amount` tokens: its debt first, then its balance."""
        if amount == 0:
            raise ModelRevert("ZeroAmount")
        if not self.with_token:
            raise ModelRevert("NoSettlementToken")
        self.held += amount
        self._credit(address, amount)

    def withdraw(self, address: str, amount: int) -> None:
        """`address` takes `amount` of its balance out."""
        if amount == 0:
            raise ModelRevert("ZeroAmount")
        if not self.with_token:
            raise ModelRevert("NoSettlementToken")
        balance = self._balances.get(address, 0)
        if balance < amount:
            raise ModelRevert("InsufficientBalance", address, balance, amount)
        self._balances[address] = balance - amount
        self.held -= amount

    def pay_receivables(self, max_claims: int) -> int:
        """Settle up to `max_claims` receivables, oldest first: a holder's own debt is netted against its
        claim, the rest paid from repaid debts; how much was settled."""
        settled = 0
        for _ in range(max_claims):
            if not self._claims:
                break
            claim = self._claims[0]
            netted = min(claim.amount, self._debts.get(claim.holder, 0))
            paid = min(claim.amount - netted, self.recovered)
            if netted + paid == 0:
                break
            self._debts[claim.holder] = self._debts.get(claim.holder, 0) - netted
            self.recovered -= paid
            if netted + paid == claim.amount:
                self._claims.popleft()
            else:
                claim.amount -= netted + paid
            self._receivables[claim.holder] -= netted + paid
            settled += netted + paid
            if paid:
                self._credit(claim.holder, paid)
        return settled

    def due(self) -> int:
        """How much of the oldest claim `pay_receivables` would settle now (`Ledger.due`)."""
        if not self._claims:
            return 0
        claim = self._claims[0]
        netted = min(claim.amount, self._debts.get(claim.holder, 0))
        return netted + min(claim.amount - netted, self.recovered)

    # --- settlement

    def charge(self, address: str, cost: int) -> int:
        """Charge `cost`: from the balance as far as it goes, the rest as debt; returns what was paid."""
        balance = self._balances.get(address, 0)
        paid = min(cost, balance)
        self._balances[address] = balance - paid
        self._debts[address] = self._debts.get(address, 0) + cost - paid
        return paid

    def earn(self, address: str, revenue: int, paid: int) -> None:
        """Pay a producer `paid` of its `revenue`; the rest is its receivable (queued with a token)."""
        if paid:
            self._credit(address, paid)
        owed = revenue - paid
        if owed == 0:
            return
        self._receivables[address] = self._receivables.get(address, 0) + owed
        if not self.with_token:
            return
        last = self._claims[-1] if self._claims else None
        if last is not None and last.holder == address and last.amount + owed <= UINT96_MAX:
            last.amount += owed
        else:
            self._claims.append(_Claim(address, owed))

    def _credit(self, address: str, amount: int) -> None:
        debt = self._debts.get(address, 0)
        repaid = min(amount, debt)
        if repaid:
            self._debts[address] = debt - repaid
            self.recovered += repaid
        self._balances[address] = self._balances.get(address, 0) + amount - repaid
