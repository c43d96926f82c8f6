"""The tutorial's steps: one small function each, acting for real on the chain and saying what changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from eth_typing import ChecksumAddress
from eth_utils import keccak
from rich.console import Console
from rich.progress import Progress
from web3.types import Wei

from daisee.chain.accounts import create_account, keystore_dir, unlock
from daisee.chain.clock import advance_to
from daisee.chain.connect import Chain
from daisee.chain.deploy import LoopParameters, deploy_loop, save_deployment
from daisee.chain.transact import Sender
from daisee.demo import demo_genesis
from daisee.domain import MeterKind
from daisee.errors import DaiseeError
from daisee.gateways import MeterSample
from daisee.gateways.tic import decode_stream, frame_sample
from daisee.loop import Loop, MeterSpec, tx_hash
from daisee.oracle.outbox import Outbox
from daisee.oracle.runner import Oracle
from daisee.oracle.sampler import Sampler
from daisee.oracle.senders import DirectSender
from daisee.readings import LoopDomain, Reading
from daisee.report import build_report
from daisee.report.html import render_html
from daisee.report.terminal import print_report
from daisee.simulation import MeterTrace, simulate

PASSWORD = "daisee-tutorial"  # printed on purpose: these keystores are for this tutorial only
INTERVALS = 8
INTERVAL_SECONDS = 900
SEED = 7
LATE_MORNING = 11 * 3600
PMO = "tutorial-pmo"
HOUSEHOLDS = {"producer": MeterKind.PRODUCER, "consumer": MeterKind.CONSUMER, "prosumer": MeterKind.PROSUMER}
CAPTURE = "linky_standard.txt"
FUNDS = {PMO: 10**19} | {name: 10**18 for name in HOUSEHOLDS}  # wei a dev account gives each tutorial account


@dataclass
class Context:
    """What the steps share: the chain, the working folder, the saved progress and where to print."""

    chain: Chain
    workdir: Path
    out: Console
    state: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, LocalAccount] = field(default_factory=dict)

    @property
    def pmo(self) -> Sender:
        return Sender(self.chain, self.keys[PMO].address)

    @property
    def loop(self) -> Loop:
        return Loop(self.pmo, self.state["loop"])

    @property
    def domain(self) -> LoopDomain:
        return LoopDomain(self.chain.chain_id, self.state["loop"])

    def meter_id(self, name: str) -> bytes:
        return keccak(text=f"daisee-tutorial/meter/{name}")

    def show_tx(self, what: str, receipt: Any) -> None:
        self.out.print(f"  {what}: tx {tx_hash(receipt)}, gas {int(receipt['gasUsed']):,}")


@dataclass(frozen=True)
class Step:
    """One step: its title, why it matters, the `daisee` command that does the same, and the action."""

    title: str
    why: str
    command: str
    run: Callable[[Context], None]


def capture_bytes() -> bytes:
    """Three standard-mode frames captured from a real Linky, shipped with the package."""
    return resources.files("daisee.tutorial").joinpath(CAPTURE).read_bytes()


def capture_base() -> int:
    """The import index (Wh) of the captured Linky's first frame: the consumer's meter starts there."""
    sample = frame_sample(decode_stream(capture_bytes())[0], 0)
    assert sample.import_wh is not None
    return sample.import_wh


def traces(ctx: Context) -> dict[str, MeterTrace]:
    """The simulated indices of the three households (the same for the same genesis)."""
    found = simulate(list(HOUSEHOLDS.values()), ctx.state["genesis"], INTERVAL_SECONDS, INTERVALS, SEED)
    base = capture_base()
    consumer = found[1]
    found[1] = MeterTrace([base + i for i in consumer.imports], consumer.exports)
    return dict(zip(HOUSEHOLDS, found, strict=True))


def attach(ctx: Context) -> None:
    block = ctx.chain.w3.eth.get_block("latest")
    ctx.out.print(f"  connected to {ctx.chain.label}, block {block['number']}, timestamp {block['timestamp']}")


def account_name(name: str) -> str:
    return name if name == PMO else f"tutorial-{name}"


def unlock_keys(ctx: Context) -> None:
    """Unlock the tutorial's keystores and let the chain sign locally with them."""
    for name in (PMO, *HOUSEHOLDS):
        ctx.keys[name] = unlock(account_name(name), PASSWORD)
        Sender.local(ctx.chain, ctx.keys[name])


def _can_sign(chain: Chain, address: ChecksumAddress) -> bool:
    """True when the node signs transactions for `address` (it is unlocked), checked without sending one."""
    tx = {"from": address, "to": address, "value": "0x0", "gas": hex(21_000), "nonce": "0x0"}
    answer = chain.w3.provider.make_request("eth_signTransaction", [tx | {"gasPrice": hex(chain.w3.eth.gas_price)}])  # type: ignore[arg-type]
    return "result" in answer


def funder(chain: Chain) -> ChecksumAddress:
    """The node's first unlocked account that can fund the tutorial's accounts.

    Raises DaiseeError, naming the fix, on a node that is not a development one: any other kind of
    node, or one whose accounts are missing, locked or too poor.
    """
    w3 = chain.w3
    needed = sum(FUNDS.values()) + len(FUNDS) * 21_000 * int(w3.eth.gas_price)
    if not chain.is_dev:
        cause = f"{chain.label} is not a development node: the tutorial spends test ether from its unlocked accounts"
    else:
        for account in chain.dev_accounts():
            address = w3.to_checksum_address(account)
            if int(w3.eth.get_balance(address)) >= needed and (chain.kind == "embedded" or _can_sign(chain, address)):
                return address
        cause = f"{chain.label} has no unlocked account holding the {needed / 1e18:.2f} ETH the tutorial gives its own"
    raise DaiseeError(
        f"{cause}: run it with --chain embedded or --chain anvil, or the URL of an anvil or ganache node "
        "started with its default, funded accounts"
    )


def accounts(ctx: Context) -> None:
    ctx.out.print(f"  keystores in {keystore_dir()}, password [bold]{PASSWORD}[/] (tutorial only: never reuse it)")
    source = funder(ctx.chain)
    for name in (PMO, *HOUSEHOLDS):
        if not (keystore_dir() / f"{account_name(name)}.json").exists():
            create_account(account_name(name), PASSWORD)
    unlock_keys(ctx)
    for name, key in ctx.keys.items():
        ctx.out.print(f"  {account_name(name)}: {key.address}")
    ctx.state["accounts"] = {name: account_name(name) for name in ctx.keys}
    for name, key in ctx.keys.items():
        tx = ctx.chain.w3.eth.send_transaction({"from": source, "to": key.address, "value": Wei(FUNDS[name])})
        ctx.chain.w3.eth.wait_for_transaction_receipt(tx)
        ctx.out.print(f"  funded {name} with {FUNDS[name] / 1e18:g} ETH from dev account {source}")


def deploy(ctx: Context) -> None:
    now = int(ctx.chain.w3.eth.get_block("latest")["timestamp"])
    genesis = demo_genesis(now) + LATE_MORNING  # a sunny stretch of tomorrow: meters are admitted before it
    deployment = deploy_loop(ctx.pmo, LoopParameters(INTERVAL_SECONDS, genesis=genesis))
    path = save_deployment(deployment, ctx.workdir / "deployments")
    ctx.state |= {"loop": deployment.address, "block": deployment.block, "genesis": genesis}
    ctx.out.print(f"  loop {deployment.address} (tx {deployment.tx_hash}, gas {deployment.parameters['gas_used']:,})")
    ctx.out.print(
        f"  genesis {genesis}: {INTERVALS} intervals of {INTERVAL_SECONDS} s from tomorrow late morning; "
        "this development chain's clock is moved forward to each interval's end as the tutorial goes"
    )
    ctx.out.print(f"  record written to {path}")


def register(ctx: Context) -> None:
    specs = [
        MeterSpec(
            ctx.meter_id(name),
            ctx.keys[name].address,
            ctx.keys[name].address,
            kind,
            0 if kind is MeterKind.PRODUCER else 5_000,
            1,
            trace.imports[0],
            trace.exports[0],
        )
        for (name, kind), trace in zip(HOUSEHOLDS.items(), traces(ctx).values(), strict=True)
    ]
    known = set(ctx.loop.meter_ids())  # a resumed run on a kept chain may have admitted them already
    new = [spec for spec in specs if spec.meter_id not in known]
    for receipt in ctx.loop.add_meters(new) if new else []:
        ctx.show_tx(f"admitted {len(new)} meters", receipt)
    for meter in ctx.loop.meters():
        ctx.out.print(f"  {meter.kind.name.lower():9} 0x{meter.meter_id.hex()[:12]}… signer {meter.signer}")


def read_linky(ctx: Context) -> None:
    frames = decode_stream(capture_bytes())
    for i, frame in enumerate(frames):
        sample = frame_sample(frame, 0)
        rejected = f", groups failing their checksum: {', '.join(sample.rejected)}" if sample.rejected else ""
        ctx.out.print(f"  frame {i + 1}: ADSC {sample.meter}, EAST {sample.import_wh} Wh{rejected}")
    ctx.out.print(f"  the consumer's meter index starts at {capture_base()} Wh, as read from this Linky")


def _first_reading(ctx: Context) -> Reading:
    trace = traces(ctx)["consumer"]
    return Reading(ctx.meter_id("consumer"), 0, trace.imports[1], trace.exports[1])


def sign(ctx: Context) -> None:
    reading = _first_reading(ctx)
    signed = reading.sign(ctx.keys["consumer"].key, ctx.domain)
    ctx.out.print_json(json.dumps(reading.typed_data(ctx.domain)))
    ctx.out.print(f"  digest 0x{reading.digest(ctx.domain).hex()}")
    ctx.out.print(f"  signature 0x{signed.signature().hex()}")
    ctx.out.print(f"  recovered signer {signed.recover(ctx.domain)} (consumer {ctx.keys['consumer'].address})")


def _reach_end_of(ctx: Context, interval: int) -> None:
    """Move the development chain's clock just past the end of `interval`, so its readings are due."""
    advance_to(ctx.chain, ctx.state["genesis"] + (interval + 1) * INTERVAL_SECONDS + 1)


def submit(ctx: Context) -> None:
    _reach_end_of(ctx, 0)
    signed = _first_reading(ctx).sign(ctx.keys["consumer"].key, ctx.domain)
    result = ctx.loop.as_sender(Sender(ctx.chain, ctx.keys["consumer"].address)).submit([signed])
    ctx.show_tx(f"accepted {len(result.accepted)}, rejected {len(result.rejected)}", result.receipt)
    ctx.out.print(
        f"  the consumer's meter now expects interval {ctx.loop.meter(ctx.meter_id('consumer')).next_interval}"
    )


def attacks(ctx: Context) -> None:
    meter = ctx.meter_id("consumer")
    trace = traces(ctx)["consumer"]
    honest = _first_reading(ctx).sign(ctx.keys["consumer"].key, ctx.domain)
    later = Reading(meter, 1, trace.imports[2], trace.exports[2])
    tries = {
        "forged (signed by the producer's key)": later.sign(ctx.keys["producer"].key, ctx.domain),
        "replayed (interval 0 sent again)": honest,
        "wrong chain (signed for chain id + 1)": later.sign(
            ctx.keys["consumer"].key, LoopDomain(ctx.chain.chain_id + 1, ctx.state["loop"])
        ),
    }
    for label, signed in tries.items():
        result = ctx.loop.submit([signed])
        reasons = ", ".join(reason.name for _, _, reason in result.rejected) or "accepted?!"
        ctx.out.print(f"  {label}: rejected, {reasons} (tx {tx_hash(result.receipt)})")


def close(loop: Loop, interval: int) -> list[tuple[str, Any]]:
    """Finalize and settle `interval` unless a resumed run on a kept chain already did."""
    done: list[tuple[str, Any]] = []
    if loop.next_to_finalize() == interval:
        done.append((f"finalized interval {interval}", loop.finalize(interval)))
    if loop.next_to_settle() == interval:
        done += [(f"settled interval {interval}", receipt) for receipt in loop.settle().receipts]
    return done


def oracles(ctx: Context) -> None:
    outboxes = ctx.workdir / "outbox"
    for old in outboxes.glob("*.sqlite*"):
        old.unlink()  # a fresh run of the oracles for this chain
    genesis = ctx.state["genesis"]
    runs: list[tuple[Oracle, MeterTrace]] = []
    for name, trace in traces(ctx).items():
        meter = ctx.meter_id(name)
        floor = _first_reading(ctx) if name == "consumer" else None
        sender = DirectSender(ctx.loop.as_sender(Sender(ctx.chain, ctx.keys[name].address)))
        sampler = Sampler(meter, genesis, INTERVAL_SECONDS, floor)
        key = PrivateKey(bytes(ctx.keys[name].key))
        runs.append((Oracle(sampler, key, ctx.domain, Outbox(outboxes / f"{name}.sqlite"), sender), trace))
    confirmed = 0
    with Progress(console=ctx.out, transient=True) as progress:
        task = progress.add_task("oracles signing and sending", total=INTERVALS - 1)
        for t in range(INTERVALS - 1):
            at = genesis + (t + 1) * INTERVAL_SECONDS + 1
            _reach_end_of(ctx, t)
            for oracle, trace in runs:
                oracle.handle(MeterSample(at, trace.imports[t + 1], trace.exports[t + 1], None, ()))
                confirmed += oracle.flush()
            close(ctx.loop, t)
            progress.advance(task)
    for oracle, _ in runs:
        oracle.outbox.close()
    ctx.out.print(f"  {confirmed} readings confirmed, intervals 0 to {INTERVALS - 2} finalized and settled")
    ctx.out.print(f"  outboxes in {outboxes}")


def settle(ctx: Context) -> None:
    last = INTERVALS - 1
    genesis = ctx.state["genesis"]
    _reach_end_of(ctx, last)
    readings = [
        Reading(ctx.meter_id(name), last, trace.imports[last + 1], trace.exports[last + 1]).sign(
            ctx.keys[name].key, ctx.domain
        )
        for name, trace in traces(ctx).items()
    ]
    ctx.show_tx(
        f"last readings of interval {last} (ended at {genesis + INTERVALS * INTERVAL_SECONDS})",
        ctx.loop.submit(readings).receipt,
    )
    for what, receipt in close(ctx.loop, last):
        ctx.show_tx(what, receipt)


def balances(ctx: Context) -> None:
    loop = ctx.loop
    treasury = loop.config().treasury
    total = 0
    for name in HOUSEHOLDS:
        address = ctx.keys[name].address
        produced, consumed, self_consumed = loop.tokens(address)
        balance = loop.ledger_balance(address)
        total += balance
        ctx.out.print(
            f"  {name:9} tokens: produced {produced} Wh, consumed {consumed} Wh, self-consumed {self_consumed} Wh;"
            f" ledger {balance / 1e6:+.2f} €"
        )
    treasury_balance = loop.ledger_balance(treasury)
    total += treasury_balance
    ctx.out.print(f"  treasury (PMO) ledger {treasury_balance / 1e6:+.2f} €")
    ctx.out.print(f"  ledger sum (treasury included): {total}")


def report(ctx: Context) -> None:
    names = {ctx.meter_id(name): name for name in HOUSEHOLDS}
    built = build_report(ctx.loop, ctx.state["block"], names)
    path = ctx.workdir / "report.html"
    path.write_text(render_html(built))
    print_report(built, ctx.out)
    ctx.out.print(f"  wrote {path}")


STEPS: tuple[Step, ...] = (
    Step(
        "Start or attach to a chain",
        "Everything below happens on a real EVM chain.",
        "daisee chain start (or --chain embedded / anvil / URL on any command)",
        attach,
    ),
    Step(
        "Create the PMO and three households",
        "The PMO organises the loop; each household has a key its gateway signs readings with. "
        "Keys are stored encrypted; on development chains a dev account pays them some gas money.",
        "daisee account new tutorial-pmo (and one per household)",
        accounts,
    ),
    Step(
        "Deploy the loop",
        "The PMO deploys the loop contract (and a test euro). Its calendar starts a few intervals in the past "
        "so that readings can be reported right now.",
        "daisee deploy --account tutorial-pmo --genesis ...",
        deploy,
    ),
    Step(
        "Register the meters",
        "Only admitted meters count: the PMO records each meter's signer, payout wallet, kind and starting indices.",
        "daisee member add METER --signer ADDRESS --kind consumer --account tutorial-pmo",
        register,
    ),
    Step(
        "Read a real Linky",
        "A gateway reads the meter's TIC serial output; here, three frames captured from a real Linky.",
        "daisee meter parse --format tic linky_standard.txt",
        read_linky,
    ),
    Step(
        "Build and sign a reading",
        "The gateway signs the meter's indices as EIP-712 typed data, bound to this loop and this chain.",
        "(no single command: `daisee oracle run` signs readings; in Python, Reading(...).sign(key, domain))",
        sign,
    ),
    Step(
        "Submit it",
        "Anyone may send signed readings; the contract checks the signature.",
        "(no single command: `daisee oracle run` submits what it signs)",
        submit,
    ),
    Step(
        "Try to cheat",
        "A forged, a replayed and a wrong-chain reading: the loop skips each and says why in an event.",
        "(no single command: the contract rejects these whoever sends them)",
        attacks,
    ),
    Step(
        "Run the oracles",
        "Each household's oracle turns samples into signed readings, keeps them in an outbox and sends them; "
        "each interval is then finalized and settled.",
        "daisee oracle run --config oracle.toml (one per household)",
        oracles,
    ),
    Step(
        "Finalize and settle",
        "Once every meter reported, anyone closes the interval; settlement allocates local production and bills it.",
        "daisee keeper run (or --watch to keep doing it; the relay does it too)",
        settle,
    ),
    Step(
        "Who owes whom",
        "Energy tokens record what each produced and consumed; the ledger what each owes or is owed.",
        "daisee member list; daisee report",
        balances,
    ),
    Step(
        "The report",
        "A standalone HTML page with the loop's curves, bars and ledger.",
        "daisee report --out report.html",
        report,
    ),
)
