"""Every power of the PMO and of the members from the command line, against anvil: the notice and the price cap
at deployment, meters' limits, re-keying and repairing meters (announced, confirmed, applied, cancelled),
terms, pausing readings, handing the PMO role over, and the ledger (balance, debt, receivable; deposit,
withdraw, pay receivables). Each with `--json`, and each refusal in one line, before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import connect
from daisee.chain.deploy import load_deployment
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.domain import RejectReason, meter_id
from daisee.errors import DaiseeError
from daisee.loop import Loop
from daisee.readings import Reading
from tests.e2e.conftest import Daisee
from tests.e2e.loops import INTERVAL, CliLoop, add_household, deploy

PASSWORD = {"DAISEE_PASSWORD": "correct horse battery staple"}
NOTICE_ZERO = "notice period is 0: the PMO's new meters, key changes and terms take effect at once"


def _account(daisee: Daisee, url: str, name: str) -> str:
    """A new keystore account `name`, funded with 1 ETH for its gas, as a member would have one."""
    created = daisee("account", "new", name, "--json", env=PASSWORD)
    assert created.exit_code == 0, created.stderr
    address: str = created.json()["address"]
    funder = Sender.dev(connect(url), 3)
    funder.chain.w3.eth.send_transaction({"from": funder.address, "to": address, "value": 10**18})
    return address


def _nonce(url: str) -> int:
    chain = connect(url)
    return int(chain.w3.eth.get_transaction_count(chain.w3.eth.accounts[0]))


def _said(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- deploy: notice, price cap, grace


def test_deploy_takes_a_notice_and_a_price_cap(daisee: Daisee, anvil_node: LocalNode) -> None:
    url = anvil_node.url
    out = daisee("deploy", "--chain", url, "--notice", "7d", "--price", "0.10", "--price-cap", "0.15", "--json")

    assert out.exit_code == 0, out.stderr
    assert (out.json()["parameters"]["notice_seconds"], out.json()["parameters"]["price_cap_per_wh"]) == (604_800, 150)
    assert out.json()["unprotected"] == []
    config = Loop(Sender.dev(connect(url)), out.json()["address"]).config()
    assert (config.notice_seconds, config.price_cap_per_wh, config.price_per_wh) == (604_800, 150, 100)
    text = daisee("deploy", "--chain", url, "--notice", "1d12h", "--force")
    assert "notice 36 h; price cap 0.2 per kWh" in _said(text.stdout)
    assert "warning" not in text.stdout


def test_a_development_loop_without_notice_says_so(daisee: Daisee, anvil_node: LocalNode) -> None:
    out = daisee("deploy", "--chain", anvil_node.url, "--json")
    assert out.exit_code == 0, out.stderr
    assert out.json()["parameters"]["notice_seconds"] == 0
    assert out.json()["unprotected"] == [NOTICE_ZERO]
    text = daisee("deploy", "--chain", anvil_node.url, "--force")
    assert f"notice 0 s; price cap 0.2 per kWh warning: {NOTICE_ZERO}" in _said(text.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--grace-seconds", "59"],
            "a grace period of 59 s is too short for readings to land after an interval ends (anyone could finalize "
            "it first): give --grace-seconds 60 or more",
        ),
        (["--grace-seconds", "0"], "a grace period of 0 s is too short"),
        (["--notice", "a week"], "--notice 'a week' is not a duration: give e.g. 7d, 12h, 30m, 0, or seconds"),
        (["--notice", "200000d"], "--notice '200000d' is longer than a loop accepts (4,294,967,295 s): give less"),
        (
            ["--price", "0.10", "--price-cap", "0.05"],
            "the price (0.1 per kWh) is above the cap (0.05 per kWh): raise --price-cap or lower --price",
        ),
        (["--price-cap", "cheap"], "--price-cap: price 'cheap' is not a plain number"),
    ],
    ids=["grace-59", "grace-0", "notice-words", "notice-too-long", "cap-below-price", "cap-words"],
)
def test_deploy_refuses_before_sending_anything(
    daisee: Daisee, anvil_node: LocalNode, args: list[str], message: str
) -> None:
    before = _nonce(anvil_node.url)
    out = daisee("deploy", "--chain", anvil_node.url, *args)
    assert out.error().startswith(message)
    assert _nonce(anvil_node.url) == before
    assert not Path("deployments").exists()


# ---------------------------------------------------------------- meters: limits, list


def test_member_add_takes_the_limits_the_meter_shows(daisee: Daisee, anvil_node: LocalNode) -> None:
    cli_loop = deploy(daisee, anvil_node.url)
    chain = ("--chain", anvil_node.url)
    signer = "0x" + "ab" * 20
    consumer = daisee("member", "add", "c", "--signer", signer, "--kind", "consumer", "--import-kva", "6", *chain)
    prosumer = daisee(
        "member", "add", "p", "--signer", signer, "--kind", "prosumer", "--import-kva", "9", "--export-kwc", "4.5",
        *chain, "--json",
    )  # fmt: skip
    producer = daisee("member", "add", "s", "--signer", signer, "--kind", "producer", *chain, "--json")

    assert "(consumer) admitted, signer 0xABaB" in _said(consumer.stdout)
    assert ", import 6 kVA, indices 0 Wh imported" in _said(consumer.stdout)
    assert (prosumer.json()["import_limit_w"], prosumer.json()["export_limit_w"]) == (9000, 4500)
    assert (producer.json()["import_limit_w"], producer.json()["export_limit_w"]) == (0, 9000)  # a household's PV
    on_chain = [(m.kind.name.lower(), m.import_limit_w, m.export_limit_w) for m in cli_loop.loop.meters()]
    assert on_chain == [("consumer", 6000, 0), ("prosumer", 9000, 4500), ("producer", 0, 9000)]


_BOTH_WAYS = "or admit the meter as a prosumer"


@pytest.mark.parametrize(
    ("kind", "limits", "message"),
    [
        ("consumer", ["--export-kwc", "3"], f"a consumer exports nothing: drop --export-kwc, {_BOTH_WAYS}"),
        ("producer", ["--import-kva", "6"], f"a producer imports nothing: drop --import-kva, {_BOTH_WAYS}"),
        (
            "consumer",
            ["--import-kva", "0"],
            "a consumer imports: give its subscribed power above 0, e.g. --import-kva 6",
        ),
        ("prosumer", ["--export-kwc", "0"], "a prosumer exports: give its installed peak above 0, e.g. --export-kwc 3"),
        (
            "consumer",
            ["--import-kva", "6kVA"],
            "--import-kva '6kVA' is not a power: give kVA as the meter shows it, e.g. 6 or 9",
        ),
        (
            "prosumer",
            ["--export-kwc", "3.0005"],
            "--export-kwc 3.0005 is not a whole number of W: give kWc with at most 3 decimals",
        ),
        (
            "consumer",
            ["--import-kva", "17000"],
            "--import-kva 17000 kVA is beyond what a loop accepts (16777.215 kVA at most)",
        ),
    ],
    ids=["consumer-exports", "producer-imports", "no-import", "no-export", "words", "milliwatts", "too-large"],
)
def test_limits_a_kind_cannot_have_are_named_before_anything_is_sent(
    daisee: Daisee, kind: str, limits: list[str], message: str
) -> None:
    out = daisee("member", "add", "house-1", "--signer", "0x" + "ab" * 20, "--kind", kind, *limits)
    assert out.error() == message


def test_member_list_shows_limits_active_from_changes_and_the_notice(daisee: Daisee, anvil_node: LocalNode) -> None:
    chain = ("--chain", anvil_node.url)
    cli_loop = deploy(daisee, anvil_node.url, "--notice", "1h")
    add_household(daisee, cli_loop, "house-1", "consumer", "--import-kva", "6")
    add_household(daisee, cli_loop, "house-2", "producer", "--export-kwc", "3")
    first_noticed = cli_loop.loop.config().first_noticed_interval(chain_time(cli_loop.loop.sender.chain))
    new_signer = "0x" + "cd" * 20
    assert daisee("member", "rotate", "house-1", "--signer", new_signer, *chain).exit_code == 0

    listed = daisee("member", "list", *chain, "--json")

    assert listed.exit_code == 0, listed.stderr
    data = listed.json()
    assert (data["loop"], data["notice_seconds"], data["unprotected"]) == (cli_loop.loop.address, 3600, [])
    one, two = data["meters"]
    assert (one["import_limit_w"], one["export_limit_w"], two["import_limit_w"], two["export_limit_w"]) == (
        6000, 0, 0, 3000,
    )  # fmt: skip
    assert one["active_from"] == two["active_from"] == first_noticed  # the first interval after the notice
    change = one["change"]
    assert change["signer"].lower() == new_signer
    assert change["effective_at"] >= chain_time(cli_loop.loop.sender.chain) + 3600 - 5
    assert (change["reset"], two["change"]) == (False, None)
    text = _said(daisee("member", "list", *chain).stdout)
    assert f"meter {one['meter_id']}: change announced: signer {change['signer']}, effective " in text
    assert "notice period: 1 h" in text
    assert "warning" not in text

    assert daisee("deploy", *chain, "--force").exit_code == 0  # a development loop: notice 0
    plain = daisee("member", "list", *chain, "--json").json()
    assert (plain["notice_seconds"], plain["unprotected"], plain["meters"]) == (0, [NOTICE_ZERO], [])
    assert f"warning: {NOTICE_ZERO}" in _said(daisee("member", "list", *chain).stdout)


# ---------------------------------------------------------------- meter changes


def test_a_rotation_waits_for_its_notice_or_its_member(daisee: Daisee, anvil_node: LocalNode) -> None:
    url = anvil_node.url
    chain = ("--chain", url)
    cli_loop = deploy(daisee, url, "--notice", "1h")
    payout = _account(daisee, url, "member")
    _account(daisee, url, "stranger")
    mid = "0x" + meter_id("house-1").hex()
    old, new = "0x" + "ab" * 20, Account.create().address
    added = daisee("member", "add", "house-1", "--signer", old, "--payout", payout, "--kind", "consumer", *chain)
    assert added.exit_code == 0, added.stderr

    not_pmo = daisee("member", "rotate", "house-1", "--signer", new, *chain, "--account", "stranger", env=PASSWORD)
    assert not_pmo.error().startswith(f"only the loop's PMO {load_deployment(connect(url)).deployer} may do this")

    rotated = daisee("member", "rotate", "house-1", "--signer", new, *chain, "--json")
    assert rotated.exit_code == 0, rotated.stderr
    assert rotated.json()["applied"] is False
    assert rotated.json()["signer"] == cli_loop.loop.meter(meter_id("house-1")).signer != new
    assert rotated.json()["change"]["signer"] == new
    effective_at = rotated.json()["change"]["effective_at"]

    early = daisee("member", "change", "apply", "house-1", *chain, "--account", "stranger", env=PASSWORD)
    assert early.error().startswith(f"the change of meter {mid} takes effect at ")
    by_pmo = daisee("member", "change", "confirm", "house-1", *chain)
    assert by_pmo.error().startswith(f"only meter {mid}'s payout account {payout} may confirm its change")

    confirmed = daisee("member", "change", "confirm", "house-1", *chain, "--account", "member", "--json", env=PASSWORD)
    assert confirmed.exit_code == 0, confirmed.stderr
    assert (confirmed.json()["signer"], confirmed.json()["change"]) == (new, None)
    assert cli_loop.loop.meter(meter_id("house-1")).signer == new
    assert cli_loop.loop.meter_change(meter_id("house-1")) is None

    newer = Account.create().address
    assert daisee("member", "rotate", "house-1", "--signer", newer, *chain).exit_code == 0
    advance_to(cli_loop.loop.sender.chain, effective_at + 3600)
    applied = daisee("member", "change", "apply", "house-1", *chain, "--account", "stranger", "--json", env=PASSWORD)
    assert applied.exit_code == 0, applied.stderr  # anyone, once due
    assert (applied.json()["signer"], applied.json()["change"]) == (newer, None)

    assert daisee("member", "rotate", "house-1", "--signer", old, *chain).exit_code == 0
    cancelled = daisee("member", "change", "cancel", "house-1", *chain)
    assert _said(cancelled.stdout).startswith(f"meter {mid}: announced change cancelled, signer {newer}; gas ")
    assert cli_loop.loop.meter(meter_id("house-1")).signer == newer
    again = daisee("member", "change", "cancel", "house-1", *chain)
    assert again.error() == f"no change is announced for meter {mid}: see `daisee member list`"


def test_a_repaired_meter_reports_again_from_its_new_indices(daisee: Daisee, anvil_node: LocalNode) -> None:
    chain = ("--chain", anvil_node.url)
    cli_loop = deploy(daisee, anvil_node.url)  # notice 0: a repair takes effect at once
    gateway = add_household(daisee, cli_loop, "house-1", "consumer", "--import-wh", "5000")
    cli_loop.advance(1)
    cli_loop.submit(gateway, "house-1", 0, 5_400)
    swapped = Account.create()

    repaired = daisee(
        "member", "repair", "house-1", "--signer", swapped.address, "--import-wh", "12", *chain, "--json"
    )  # the Linky was swapped: the new one counts from 12 Wh

    assert repaired.exit_code == 0, repaired.stderr
    assert (repaired.json()["applied"], repaired.json()["signer"], repaired.json()["import_wh"]) == (
        True, swapped.address, 12,
    )  # fmt: skip
    cli_loop.advance(2)
    cli_loop.submit(swapped, "house-1", 1, 212)  # 200 Wh since the swap, not an index that went down
    assert daisee("keeper", "run", *chain).exit_code == 0
    assert cli_loop.loop.tokens(gateway.address)[1] == 400 + 200

    same_key = daisee("member", "repair", "house-1", "--import-wh", "0", *chain)
    assert f"signer is now {swapped.address}, at once (the loop's notice period is 0)" in _said(same_key.stdout)
    unknown = daisee("member", "repair", "house-9", "--import-wh", "0", *chain)
    assert unknown.error().startswith(f"no meter 0x{meter_id('house-9').hex()} in the loop ")


# ---------------------------------------------------------------- terms


def test_terms_are_scheduled_a_notice_ahead_and_under_the_cap(daisee: Daisee, anvil_node: LocalNode) -> None:
    url = anvil_node.url
    chain = ("--chain", url)
    cli_loop = deploy(daisee, url, "--notice", "1h", "--price", "0.10", "--price-cap", "0.20")
    add_household(daisee, cli_loop, "house-1", "consumer")
    add_household(daisee, cli_loop, "house-2", "consumer")
    loop = cli_loop.loop
    earliest = loop.config().first_noticed_interval(chain_time(loop.sender.chain))
    before = _nonce(url)

    above = daisee("terms", "schedule", "--price", "0.25", *chain)
    assert above.error() == (
        "price 0.25 per kWh is above the loop's cap of 0.2 per kWh, fixed at deployment: give --price at most the cap"
    )
    soon = daisee("terms", "schedule", "--price", "0.15", "--from", str(earliest - 1), *chain)
    assert soon.error() == (
        f"terms scheduled now may start at interval {earliest} at the earliest (the loop's notice is 1 h), "
        f"not {earliest - 1}: give --from {earliest} or later"
    )
    wrong_key = daisee("terms", "schedule", "--key", "static", "--weight", "house-1=2", *chain)
    assert wrong_key.error() == "--weight sets the weighted key's weights, and these terms use the static key"
    too_much = daisee("terms", "schedule", "--key", "static", "--share", "house-1=60", "--share", "house-2=50", *chain)
    assert too_much.error() == "the shares add up to 110%: at most 100% of production can be shared"
    assert _nonce(url) == before

    scheduled = daisee(
        "terms", "schedule", "--key", "static", "--price", "0.15", "--share", "house-1=40", "--share", "house-2=60%",
        *chain, "--json",
    )  # fmt: skip

    assert scheduled.exit_code == 0, scheduled.stderr
    data = scheduled.json()
    assert {k: data["scheduled"][k] for k in ("key", "price_per_wh", "from_interval", "epoch")} == {
        "key": "static", "price_per_wh": 150, "from_interval": earliest, "epoch": 1,
    }  # fmt: skip
    assert data["coefficients"] == {
        "0x" + meter_id("house-1").hex(): {"share_bp": 4000, "weight": 1},
        "0x" + meter_id("house-2").hex(): {"share_bp": 6000, "weight": 1},
    }
    assert len(data["transactions"]) == 2
    terms = loop.terms_at(earliest)
    assert (terms.key.name, terms.price_per_wh, terms.from_interval) == ("STATIC", 150, earliest)
    assert loop.terms_at(earliest - 1).price_per_wh == 100
    next_shares = [loop.contract.functions.meter(meter_id(h)).call()[9] for h in ("house-1", "house-2")]
    assert next_shares == [4000, 6000]

    shown = daisee("terms", "show", *chain, "--json").json()
    assert (shown["in_force"]["key"], shown["in_force"]["price_per_wh"]) == ("prorata", 100)
    assert (shown["scheduled"]["key"], shown["scheduled"]["from_interval"]) == ("static", earliest)
    assert (shown["price_cap_per_wh"], shown["notice_seconds"], shown["unprotected"]) == (200, 3600, [])
    text = _said(daisee("terms", "show", *chain).stdout)
    assert text.startswith("in force: key prorata, price 0.1 per kWh, from interval 0 (")
    assert f"announced: key static, price 0.15 per kWh, from interval {earliest} (" in text


# ---------------------------------------------------------------- readings, PMO role


def test_paused_readings_are_refused_until_resumed(daisee: Daisee, anvil_node: LocalNode) -> None:
    chain = ("--chain", anvil_node.url)
    cli_loop = deploy(daisee, anvil_node.url)
    gateway = add_household(daisee, cli_loop, "house-1", "consumer")
    cli_loop.advance(1)

    paused = daisee("readings", "pause", *chain, "--json")

    assert paused.exit_code == 0, paused.stderr
    assert paused.json()["paused"] is True
    signed = Reading(meter_id("house-1"), 0, 300, 0).sign(gateway.key, cli_loop.loop.domain)
    with pytest.raises(DaiseeError, match=r"rejected by the contract: EnforcedPause\(\)"):
        cli_loop.loop.submit([signed])
    assert daisee("readings", "pause", *chain).error() == "the loop's readings are paused already: nothing to do"

    resumed = daisee("readings", "resume", *chain, "--json")
    assert resumed.json()["paused"] is False
    cli_loop.submit(gateway, "house-1", 0, 300)
    assert daisee("readings", "resume", *chain).error() == "the loop's readings are not paused: nothing to do"


def test_the_pmo_role_moves_when_the_new_pmo_accepts_it(daisee: Daisee, anvil_node: LocalNode) -> None:
    url = anvil_node.url
    chain = ("--chain", url)
    cli_loop = deploy(daisee, url)
    old = load_deployment(connect(url)).deployer
    new = _account(daisee, url, "next-pmo")
    as_new = ("--account", "next-pmo")

    nothing = daisee("pmo", "accept", *chain, *as_new, env=PASSWORD)
    assert nothing.error() == "the PMO role is offered to no one: the PMO offers it first with `daisee pmo transfer`"
    offered = daisee("pmo", "transfer", new, *chain, "--json")
    assert offered.exit_code == 0, offered.stderr
    assert (offered.json()["pmo"], offered.json()["pending_pmo"]) == (old, new)
    assert daisee("pmo", "show", *chain, "--json").json() == {"pmo": old, "pending_pmo": new, "treasury": old}
    not_offered = daisee("pmo", "accept", *chain)
    assert not_offered.error() == (
        f"the PMO role is offered to {new}, not to {old}: pass --account with that account's key"
    )

    accepted = daisee("pmo", "accept", *chain, *as_new, "--json", env=PASSWORD)

    assert accepted.exit_code == 0, accepted.stderr
    assert (accepted.json()["pmo"], accepted.json()["pending_pmo"]) == (new, None)
    assert cli_loop.loop.pmo() == new
    assert daisee("readings", "pause", *chain).error() == (
        f"only the loop's PMO {new} may do this, not {old}: pass --account with the PMO's key"
    )
    assert daisee("readings", "pause", *chain, *as_new, env=PASSWORD).exit_code == 0
    assert cli_loop.loop.paused()


# ---------------------------------------------------------------- ledger


def _mint(cli_loop: CliLoop, to: str, units: int) -> None:
    token = cli_loop.loop.settlement_token()
    assert token is not None
    cli_loop.loop.sender.transact(token.functions.mint(to, units), "minting test euros")


def test_the_ledger_shows_balances_debts_and_receivables_and_moves_money(daisee: Daisee, anvil_node: LocalNode) -> None:
    url = anvil_node.url
    chain = ("--chain", url)
    cli_loop = deploy(daisee, url, "--price", "0.10")  # 100 units per Wh
    prepaid, late, solar = (_account(daisee, url, name) for name in ("prepaid", "late", "solar"))
    keys = {label: Account.create() for label in "abp"}  # the gateways
    for label, kind, payout in (("a", "consumer", prepaid), ("b", "consumer", late), ("p", "producer", solar)):
        signer = keys[label].address
        added = daisee("member", "add", label, "--signer", signer, "--payout", payout, "--kind", kind, *chain)
        assert added.exit_code == 0, added.stderr
    _mint(cli_loop, prepaid, 5_000_000)

    deposited = daisee("ledger", "deposit", "5", *chain, "--account", "prepaid", "--json", env=PASSWORD)

    assert deposited.exit_code == 0, deposited.stderr
    assert {k: deposited.json()[k] for k in ("account", "deposited", "balance", "debt")} == {
        "account": prepaid, "deposited": 5_000_000, "balance": 5_000_000, "debt": 0,
    }  # fmt: skip
    cli_loop.advance(1)
    cli_loop.submit(keys["a"], "a", 0, 1000)
    cli_loop.submit(keys["b"], "b", 0, 1000)
    cli_loop.submit(keys["p"], "p", 0, 0, 2000)
    assert daisee("keeper", "run", *chain).exit_code == 0

    # a paid 0.10 from its deposit; b had nothing, so it owes 0.10; p was paid what a paid, and is owed b's part
    positions = {
        name: daisee("ledger", "balance", address, *chain, "--json").json()
        for name, address in (("a", prepaid), ("b", late), ("p", solar))
    }
    assert positions == {
        "a": {"account": prepaid, "balance": 4_900_000, "debt": 0, "receivable": 0, "net": 4_900_000},
        "b": {"account": late, "balance": 0, "debt": 100_000, "receivable": 0, "net": -100_000},
        "p": {"account": solar, "balance": 100_000, "debt": 0, "receivable": 100_000, "net": 200_000},
    }
    by_name = daisee("ledger", "balance", *chain, "--account", "solar")
    assert _said(by_name.stdout) == (f"{solar}: balance 0.10 (withdrawable), debt 0.00, receivable 0.10, net 0.20")
    nothing = daisee("ledger", "pay-receivables", *chain, "--json").json()
    assert nothing == {"paid": [], "recovered": 0, "claims": 1, "tx_hash": None, "gas_used": 0}
    too_much = daisee("ledger", "withdraw", "0.20", *chain, "--account", "solar", env=PASSWORD)
    assert too_much.error() == (
        f"{solar} may withdraw at most its balance of 0.10, not 0.20: see `daisee ledger balance`"
    )
    broke = daisee("ledger", "deposit", "1", *chain, "--account", "late", env=PASSWORD)
    assert broke.error().startswith(f"{late} holds 0.00 of the settlement token ")

    pmo = load_deployment(connect(url)).deployer
    _mint(cli_loop, pmo, 1_000_000)
    prepays = daisee("ledger", "deposit", "1", "--for", late, *chain, "--json")  # the PMO prepays b's energy
    assert prepays.exit_code == 0, prepays.stderr
    assert {k: prepays.json()[k] for k in ("account", "balance", "debt")} == {
        "account": late, "balance": 900_000, "debt": 0,
    }  # fmt: skip
    assert cli_loop.loop.receivables_queue() == (100_000, 1)

    paid = daisee("ledger", "pay-receivables", *chain, "--json")
    assert paid.exit_code == 0, paid.stderr
    assert (paid.json()["paid"], paid.json()["recovered"], paid.json()["claims"]) == (
        [{"account": solar, "amount": 100_000}], 0, 0,
    )  # fmt: skip

    assert daisee("readings", "pause", *chain).exit_code == 0  # members withdraw, paused or not
    withdrawn = daisee("ledger", "withdraw", "all", *chain, "--account", "solar", "--json", env=PASSWORD)
    assert withdrawn.exit_code == 0, withdrawn.stderr
    assert (withdrawn.json()["withdrawn"], withdrawn.json()["balance"], withdrawn.json()["net"]) == (200_000, 0, 0)
    token = cli_loop.loop.settlement_token()
    assert token is not None
    assert token.functions.balanceOf(solar).call() == 200_000
    empty = daisee("ledger", "withdraw", "all", *chain, "--account", "solar", env=PASSWORD)
    assert empty.error() == f"{solar} has nothing to withdraw: its balance is 0.00"


def test_a_credits_only_loop_takes_no_deposit(daisee: Daisee, anvil_node: LocalNode) -> None:
    assert daisee("deploy", "--chain", anvil_node.url, "--token", "none").exit_code == 0
    out = daisee("ledger", "deposit", "5", "--chain", anvil_node.url)
    assert out.error() == "this loop has no settlement token (a credits-only ledger): nothing to deposit"


_NOT_AN_ADDRESS = "is not an Ethereum address: give 0x + 40 hex digits"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ledger", "deposit", "0"], "AMOUNT '0' is not an amount: give currency units above 0, e.g. 25 or 12.50"),
        (
            ["ledger", "withdraw", "1.0000001"],
            "AMOUNT 1.0000001 has more than 6 decimals: the ledger counts millionths",
        ),
        (["ledger", "balance", "0x12"], f"ADDRESS '0x12' {_NOT_AN_ADDRESS}"),
        (["pmo", "transfer", "pmo-2"], f"NEW_PMO 'pmo-2' {_NOT_AN_ADDRESS}"),
        (
            ["terms", "schedule", "--share", "house-1"],
            "--share 'house-1' is not METER=VALUE: give e.g. --share house-12=25",
        ),
        (["member", "rotate", "house-1", "--signer", "nobody"], f"--signer 'nobody' {_NOT_AN_ADDRESS}"),
    ],
    ids=["zero", "decimals", "address", "new-pmo", "share", "signer"],
)
def test_bad_values_are_one_line(daisee: Daisee, anvil_node: LocalNode, args: list[str], message: str) -> None:
    if args[:2] == ["terms", "schedule"]:
        deploy(daisee, anvil_node.url, "--key", "static")
    out = daisee(*args, "--chain", anvil_node.url)
    assert out.error() == message


def test_a_reading_signed_before_the_notice_is_not_yet_active(daisee: Daisee, anvil_node: LocalNode) -> None:
    """With a notice, a new meter reports only from the first interval after it: `member list` says which."""
    chain = ("--chain", anvil_node.url)
    cli_loop = deploy(daisee, anvil_node.url, "--notice", str(2 * INTERVAL))
    gateway = add_household(daisee, cli_loop, "house-1", "consumer")
    active_from = daisee("member", "list", *chain, "--json").json()["meters"][0]["active_from"]
    assert active_from in (1, 2)  # admitted before interval 0: at least interval 0 falls within the notice
    cli_loop.advance(active_from + 1, past_grace=False)
    early = Reading(meter_id("house-1"), active_from - 1, 100, 0).sign(gateway.key, cli_loop.loop.domain)
    refused = cli_loop.loop.submit([early]).rejected
    assert refused == [(meter_id("house-1"), active_from - 1, RejectReason.NOT_YET_ACTIVE)]
    assert daisee("keeper", "run", *chain).exit_code == 0  # the intervals before it close without it
    cli_loop.submit(gateway, "house-1", active_from, 100)
