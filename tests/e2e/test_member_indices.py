"""`daisee member add --import-wh/--export-wh`: the first interval counts only the energy since registration."""

from __future__ import annotations

import pytest

from daisee.chain.nodes import LocalNode
from daisee.domain import meter_id
from tests.e2e.conftest import Daisee
from tests.e2e.loops import add_household, deploy

LINKY_EAST = 21_849_106  # the sample Linky's lifetime import index, Wh


def test_the_first_reading_counts_only_energy_since_registration(daisee: Daisee, anvil_node: LocalNode) -> None:
    cli_loop = deploy(daisee, anvil_node.url)
    signer = "0x" + "cd" * 20
    added = daisee(
        "member", "add", "house-0", "--signer", signer, "--kind", "prosumer", "--chain", anvil_node.url,
        "--import-wh", str(LINKY_EAST), "--export-wh", "1_250", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert (added.json()["import_wh"], added.json()["export_wh"]) == (LINKY_EAST, 1250)
    info = cli_loop.loop.meter(meter_id("house-0"))
    assert (info.import_wh, info.export_wh, info.next_interval) == (LINKY_EAST, 1250, 0)

    consumer = add_household(daisee, cli_loop, "house-1", "consumer", "--import-wh", str(LINKY_EAST))
    producer = add_household(daisee, cli_loop, "house-2", "producer", "--export-wh", "5000000")
    cli_loop.advance(2)
    cli_loop.submit(consumer, "house-1", 0, LINKY_EAST + 350)
    cli_loop.submit(producer, "house-2", 0, 0, 5_000_120)

    settled = daisee("keeper", "run", "--chain", anvil_node.url, "--json")

    assert settled.exit_code == 0, settled.stderr
    assert [s["interval"] for s in settled.json()["settled"]] == [0, 1]
    produced, consumed, self_consumed = cli_loop.loop.tokens(consumer.address)
    assert (produced, consumed, self_consumed) == (0, 350, 120)  # not 21,849,456 Wh
    assert cli_loop.loop.tokens(producer.address)[0] == 120
    assert cli_loop.loop.ledger_balance(consumer.address) == -120 * cli_loop.price_per_wh
    assert cli_loop.loop.ledger_balance(producer.address) == 120 * cli_loop.price_per_wh


def test_the_indices_default_to_zero_and_are_shown(daisee: Daisee, anvil_node: LocalNode) -> None:
    deploy(daisee, anvil_node.url)
    added = daisee(
        "member", "add", "house-0", "--signer", "0x" + "ab" * 20, "--kind", "consumer", "--chain", anvil_node.url
    )
    assert added.exit_code == 0, added.stderr
    said = " ".join(added.stdout.split())
    assert said.startswith(f"meter 0x{meter_id('house-0').hex()} (consumer) admitted, signer 0xABaBaBaB")
    assert ", import 12 kVA, indices 0 Wh imported, 0 Wh exported, reports from interval 0; gas " in said


@pytest.mark.parametrize(
    ("option", "value"),
    [("--import-wh", "-5"), ("--import-wh", "21849.1"), ("--export-wh", "12kWh"), ("--export-wh", str(2**64))],
)
def test_a_bad_index_is_named_before_anything_is_sent(daisee: Daisee, option: str, value: str) -> None:
    outcome = daisee("member", "add", "house-0", "--signer", "0x" + "ab" * 20, "--kind", "consumer", option, value)
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: {option} {value!r} is not a meter index: give the meter's cumulative index in Wh as a whole number "
        "(e.g. the Linky's EAST, or the sum of its tariff indices, as `daisee meter parse` shows it)\n"
    )
