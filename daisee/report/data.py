"""A loop's report, read from the chain only: members, settled intervals, energy tokens and ledger.

Everything is read at one block, so the settlement events, tokens and balances agree with each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from daisee.chain.logs import event_logs
from daisee.domain import LEDGER_DECIMALS, AllocationKey, MeterKind
from daisee.loop import AccountBalance, Loop, MemberResult, settled_sides, tally


@dataclass(frozen=True)
class Member:
    """A meter of the loop and the account that pays or earns for it."""

    meter_id: bytes
    kind: MeterKind
    payout: str
    active: bool = True
    name: str = ""  # a label known off-chain (the demo's household name); the chain only knows the id

    @property
    def id_hex(self) -> str:
        return "0x" + self.meter_id.hex()

    @property
    def label(self) -> str:
        """The name if known, else a short form of the id."""
        return self.name or f"{self.id_hex[:10]}…"


@dataclass(frozen=True)
class Tokens:
    """An account's energy tokens (Wh)."""

    produced: int = 0
    consumed: int = 0
    self_consumed: int = 0


@dataclass(frozen=True)
class LoopReport:
    """What the chain says about a loop at block `block`.

    `settlements[t][meter_id]` is that meter's settled interval t; `ledger` and `tokens` are keyed by
    account (every payout account and the treasury), since several meters may share one payout.
    """

    chain_id: int
    address: str
    from_block: int
    block: int
    treasury: str
    key: AllocationKey
    price_per_wh: int
    genesis: int
    interval_seconds: int
    members: list[Member]
    settlements: dict[int, dict[bytes, MemberResult]] = field(default_factory=dict)
    ledger: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, Tokens] = field(default_factory=dict)
    accounts: dict[str, AccountBalance] = field(default_factory=dict)
    carried: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # late readings' grid energy (Wh)
    notice_seconds: int = 0
    price_cap_per_wh: int = 0
    held: int = 0  # settlement tokens the loop holds for its members

    @property
    def warnings(self) -> list[str]:
        """What the loop's configuration leaves unprotected, in words."""
        if self.notice_seconds == 0:
            return ["notice period is 0: the PMO's new meters, key changes and terms take effect at once"]
        return []

    @property
    def intervals(self) -> list[int]:
        """The settled intervals, in order."""
        return sorted(self.settlements)

    def totals(self, meter_id: bytes) -> MemberResult:
        """One meter's settled energy and money, summed over the intervals."""
        return _sum(r.get(meter_id, MemberResult()) for r in self.settlements.values())

    def interval_totals(self, interval: int) -> MemberResult:
        """The whole loop's settled energy and money for one interval."""
        return _sum(self.settlements.get(interval, {}).values())

    def roles(self, account: str) -> list[str]:
        """What `account` is in the loop: the treasury, and the payout of which meters."""
        return (["treasury"] if account == self.treasury else []) + [
            m.label for m in self.members if m.payout == account
        ]

    def loop_totals(self) -> MemberResult:
        return _sum(self.interval_totals(t) for t in self.settlements)

    @property
    def self_consumption(self) -> float | None:
        """Share of local production used in the loop (Σ sold / Σ produced); None without production."""
        total = self.loop_totals()
        return total.sold / total.produced if total.produced else None

    @property
    def self_sufficiency(self) -> float | None:
        """Share of consumption that came from the loop (Σ allocated / Σ consumed); None without consumption."""
        total = self.loop_totals()
        return total.allocated / total.consumed if total.consumed else None

    BILLING_FIELDS = (
        "meter_id",
        "kind",
        "payout",
        "consumed_wh",
        "allocated_wh",
        "grid_wh",
        "produced_wh",
        "sold_wh",
        "exported_wh",
        "cost",
        "revenue",
        "balance",
        "debt",
        "receivable",
    )

    def billing(self) -> list[dict[str, str | int]]:
        """One row per member for the PMO's billing (energy in Wh, money in ledger units), keyed by BILLING_FIELDS."""
        rows = []
        for m in self.members:
            t = self.totals(m.meter_id)
            carried_consumed, carried_produced = self.carried.get(m.meter_id, (0, 0))
            consumed, produced = t.consumed + carried_consumed, t.produced + carried_produced
            account = self.accounts.get(m.payout, AccountBalance(0, 0, 0))
            values: tuple[str | int, ...] = (
                m.id_hex,
                m.kind.name.lower(),
                m.payout,
                consumed,
                t.allocated,
                consumed - t.allocated,
                produced,
                t.sold,
                produced - t.sold,
                t.cost,
                t.revenue,
                self.ledger.get(m.payout, 0),
                account.debt,
                account.receivable,
            )
            rows.append(dict(zip(self.BILLING_FIELDS, values, strict=True)))
        return rows

    def as_json(self) -> dict[str, object]:
        """The report for scripts: billing rows, per-interval settlements, ledger, tokens and rates."""
        return {
            "chain_id": self.chain_id,
            "loop": self.address,
            "from_block": self.from_block,
            "block": self.block,
            "key": self.key.name.lower(),
            "price_per_wh": self.price_per_wh,
            "genesis": self.genesis,
            "interval_seconds": self.interval_seconds,
            "treasury": self.treasury,
            "members": [
                row | {"name": m.name, "active": m.active} for m, row in zip(self.members, self.billing(), strict=True)
            ],
            "intervals": [
                {"t": t, "members": {"0x" + mid.hex(): vars(r) for mid, r in self.settlements[t].items()}}
                for t in self.intervals
            ],
            "ledger": self.ledger,
            "accounts": {a: account.as_json() for a, account in self.accounts.items()},
            "held": self.held,
            "notice_seconds": self.notice_seconds,
            "price_cap_per_wh": self.price_cap_per_wh,
            "warnings": self.warnings,
            "tokens": {a: vars(tokens) for a, tokens in self.tokens.items()},
            "self_consumption": self.self_consumption,
            "self_sufficiency": self.self_sufficiency,
        }


def money(units: int) -> str:
    """Ledger units as signed currency with cents: 1_234_567 -> '+1.23'."""
    return f"{units / 10**LEDGER_DECIMALS:+.2f}"


def percent(rate: float | None) -> str:
    """A rate as a whole percentage, 'n/a' when undefined."""
    return "n/a" if rate is None else f"{rate:.0%}"


def _sum(results: Iterable[MemberResult]) -> MemberResult:
    total = MemberResult()
    for r in results:
        total.consumed += r.consumed
        total.allocated += r.allocated
        total.cost += r.cost
        total.paid_cost += r.paid_cost
        total.produced += r.produced
        total.sold += r.sold
        total.revenue += r.revenue
        total.paid_revenue += r.paid_revenue
    return total


def build_report(loop: Loop, from_block: int, names: Mapping[bytes, str] | None = None) -> LoopReport:
    """Read `loop`'s report from the chain: settlement events since `from_block` (its deployment block).

    `names` optionally labels meters (e.g. the demo's households); the report holds nothing else off-chain.
    """
    w3 = loop.sender.chain.w3
    block = int(w3.eth.block_number)
    f = loop.contract.functions
    members = [
        Member(m.meter_id, m.kind, m.payout, m.active, (names or {}).get(m.meter_id, ""))
        for m in loop.meters(include_removed=True)
    ]
    events = loop.contract.events
    settlements = tally(
        side
        for e in event_logs(events.MetersSettled, from_block, block)
        for side in settled_sides(e["args"], loop.meter_id_at)
    )
    carried: dict[bytes, tuple[int, int]] = {}
    for e in event_logs(events.EnergyCarried, from_block, block):
        consumed, produced = carried.get(e["args"]["meterId"], (0, 0))
        carried[e["args"]["meterId"]] = (consumed + e["args"]["consumedWh"], produced + e["args"]["producedWh"])

    treasury = f.treasury().call(block_identifier=block)
    accounts = list(dict.fromkeys([*(m.payout for m in members), treasury]))
    ledger = {a: int(f.ledgerBalance(a).call(block_identifier=block)) for a in accounts}
    balances = {
        a: AccountBalance(*(int(x) for x in f.accountBalance(a).call(block_identifier=block))) for a in accounts
    }
    token = loop.settlement_token()
    held = int(token.functions.balanceOf(loop.address).call(block_identifier=block)) if token else 0
    tokens = {
        a: Tokens(*(int(x) for x in f.balanceOfBatch([a] * 3, [0, 1, 2]).call(block_identifier=block)))
        for a in accounts
    }
    terms = f.termsAt(f.nextIntervalToSettle().call(block_identifier=block)).call(block_identifier=block)
    return LoopReport(
        chain_id=loop.sender.chain.chain_id,
        address=loop.address,
        from_block=from_block,
        block=block,
        treasury=treasury,
        key=AllocationKey(terms[0]),
        price_per_wh=int(terms[1]),
        genesis=int(f.genesis().call(block_identifier=block)),
        interval_seconds=int(f.intervalSeconds().call(block_identifier=block)),
        members=members,
        settlements=settlements,
        ledger=ledger,
        tokens=tokens,
        accounts=balances,
        carried=carried,
        notice_seconds=int(f.noticeSeconds().call(block_identifier=block)),
        price_cap_per_wh=int(f.priceCapPerWh().call(block_identifier=block)),
        held=held,
    )
