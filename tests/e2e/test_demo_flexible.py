"""`daisee demo --compare-flexible` end to end on the embedded chain: one day played with and without the signal,
on the same seed and weather, every figure read back from the chain's settlement events."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from daisee.cli import cli
from daisee.demo import flexible_households, run_flexible_demo, simulated_households
from daisee.domain import AllocationKey, MeterKind
from daisee.errors import DaiseeError
from tests.e2e.conftest import Daisee

HOUSEHOLDS = 12
DAY = "2026-12-06"  # a fixed day: the sun, and so the figures, change with the season
# Measured on that day, sunny: self-consumption 15.1 % rigid, 21.7 % following the signal (1.43 times).
SUNNY_GAIN = 1.3


@pytest.fixture(scope="module", params=["sunny", "cloudy"])
def compared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("flexible")
    out, page = folder / f"{request.param}.json", folder / f"{request.param}.html"
    args = ["demo", "--compare-flexible", "--flexible", "0.5", "--weather", request.param, "--date", DAY]
    args += ["--households", str(HOUSEHOLDS), "--seed", "3", "--interval-seconds", "1800", "--json", str(out)]
    outcome = CliRunner().invoke(cli, [*args, "--report", str(page)], catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.stderr
    assert "self-consumption: rigid" in outcome.stdout
    return dict(json.loads(out.read_text())) | {"page": page.read_text()}


def test_the_report_page_shows_both_runs_rates_and_every_bill(compared: dict[str, Any]) -> None:
    page = compared["page"]
    for label in ("rigid", "flexible"):
        for rate in ("self_consumption", "self_sufficiency"):
            assert f'<td class="n" data-rate="{rate}">{compared[label][rate]:.1%}</td>' in page
    for name, bill in compared["flexible"]["bills"].items():
        assert f'<tr data-member="{name}">' in page
        assert f"{bill:.2f}" in page
    assert "<script" not in page


def test_both_runs_report_the_day_from_the_chain(compared: dict[str, Any]) -> None:
    names = [f"house-{i:02d}" for i in range(1, HOUSEHOLDS + 1)]

    assert compared["weather"] in ("sunny", "cloudy")
    assert compared["flexible_share"] == 0.5
    assert len(compared["flexible_households"]) == 4  # half the 8 households that consume
    assert compared["day"] == f"{DAY}T07:00:00+01:00"
    for run in ("rigid", "flexible"):
        assert 0 <= compared[run]["self_consumption"] <= 1
        assert 0 <= compared[run]["self_sufficiency"] <= 1
        assert list(compared[run]["bills"]) == names
    assert compared["rigid"]["loop"] != compared["flexible"]["loop"]


def test_both_runs_play_the_same_day_and_households(compared: dict[str, Any]) -> None:
    """Same weather, same loads: producers make the same energy, and a consumer's day holds the same Wh
    wherever its appliances run in it."""
    rigid, flexible = compared["rigid"]["members"], compared["flexible"]["members"]

    for name, member in rigid.items():
        if member["kind"] == "producer":
            assert flexible[name]["production"] == member["production"] > 0
        if member["kind"] == "consumer":
            assert flexible[name]["consumption"] == member["consumption"] > 0
        assert not member["follows_signal"]
        assert flexible[name]["follows_signal"] == (name in compared["flexible_households"])


def test_the_households_that_follow_the_signal_move_their_appliances_into_the_sun(compared: dict[str, Any]) -> None:
    moved = [
        use
        for name in compared["flexible_households"]
        for use in compared["flexible"]["uses"].get(name, [])
        if use["runs"][0][0] != use["usual_start"]
    ]

    assert moved
    assert all(_clock(use["runs"][0][0]) >= "09:00" and _clock(use["runs"][-1][1]) <= "16:00" for use in moved)
    assert all(use["runs"][0][0] == use["usual_start"] for uses in compared["rigid"]["uses"].values() for use in uses)


def _clock(iso: str) -> str:
    return iso[11:16]


def test_the_signal_raises_the_loops_self_consumption_and_self_sufficiency(compared: dict[str, Any]) -> None:
    rigid, flexible = compared["rigid"], compared["flexible"]
    gain = SUNNY_GAIN if compared["weather"] == "sunny" else 1.2

    assert flexible["self_consumption"] >= gain * rigid["self_consumption"]
    assert flexible["self_sufficiency"] > rigid["self_sufficiency"]


@pytest.mark.xfail(
    strict=True,
    reason="issue 14's target of 1.5x is out of reach of seed 3's appliances: its four followers move 8.4 kWh "
    "into 100 kWh of sun, all of it met by spare sun, 2.3 kWh of it behind two prosumers' own meters",
)
def test_on_a_sunny_day_self_consumption_is_half_as_high_again(compared: dict[str, Any]) -> None:
    if compared["weather"] != "sunny":
        pytest.skip("the target is for a sunny day")
    assert compared["flexible"]["self_consumption"] >= 1.5 * compared["rigid"]["self_consumption"]


def test_on_a_sunny_day_all_a_follower_moves_into_the_sun_is_met_by_spare_sun(compared: dict[str, Any]) -> None:
    """Moved loads take only sun the loop would have exported, or the prosumer's own behind its meter (which
    the loop's rate, AUTOPROD / PROD, does not count): the ceiling a share of followers can reach."""
    if compared["weather"] != "sunny":
        pytest.skip("a cloudy day's forecast misses some clouds")
    rigid, flexible = compared["rigid"]["members"], compared["flexible"]["members"]
    moved = sum(
        use["energy_wh"]
        for uses in compared["flexible"]["uses"].values()
        for use in uses
        if use["runs"][0][0] != use["usual_start"]
    )
    from_loop = sum(flexible[n]["allocated"] - rigid[n]["allocated"] for n in compared["flexible_households"])
    from_own_roof = sum(rigid[n]["production"] - flexible[n]["production"] for n in compared["flexible_households"])

    assert from_loop + from_own_roof >= 0.99 * moved
    neighbours = [n for n in rigid if n not in compared["flexible_households"]]
    assert [flexible[n]["allocated"] for n in neighbours] == [rigid[n]["allocated"] for n in neighbours]


def test_following_the_signal_lowers_the_followers_bills_and_raises_the_producers_earnings(
    compared: dict[str, Any],
) -> None:
    rigid, flexible = compared["rigid"]["bills"], compared["flexible"]["bills"]

    for name in compared["flexible_households"]:
        assert flexible[name] < rigid[name]
    for name, member in compared["rigid"]["members"].items():
        if member["kind"] == "producer":
            assert flexible[name] < rigid[name] < 0


def test_no_household_pays_more_when_its_neighbours_follow_the_signal(compared: dict[str, Any]) -> None:
    rigid, flexible = compared["rigid"]["bills"], compared["flexible"]["bills"]
    assert [name for name in rigid if flexible[name] > rigid[name]] == []


def test_the_followers_are_a_seeded_share_of_the_households_that_consume() -> None:
    crowd = simulated_households(HOUSEHOLDS, 3)

    half = flexible_households(crowd, 0.5, 3)

    assert half == flexible_households(crowd, 0.5, 3) != flexible_households(crowd, 0.5, 4)
    assert len(half) == 4
    assert all(crowd[i].kind is not MeterKind.PRODUCER for i in half)
    assert flexible_households(crowd, 0, 3) == ()
    assert sorted(flexible_households(crowd, 1, 3)) == [i for i in range(HOUSEHOLDS) if i % 3]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--flexible", "1.5"), "--flexible 1.5: give a share from 0 to 1, e.g. 0.5"),
        (("--compare-flexible",), "--compare-flexible goes with --flexible SHARE: give the share too"),
        (("--flexible", "0.5", "--intervals", "4"), "leave out --intervals"),
        (("--flexible", "0.5", "--regie"), "--regie serves a plain demo's loop: leave it out with --flexible"),
        (("--flexible", "0.5", "--interval-seconds", "1000"), "does not divide a day: give one that does"),
    ],
)
def test_a_flexible_demo_refuses_in_one_line_what_it_cannot_play(
    daisee: Daisee, args: tuple[str, ...], said: str
) -> None:
    assert said in daisee("demo", *args).error()


def test_a_flexible_demo_needs_a_clock_it_can_move() -> None:
    real_network = SimpleNamespace(chain=SimpleNamespace(is_dev=False, label="volta (chain id 73799)"))
    crowd = simulated_households(3, 1)

    with pytest.raises(DaiseeError, match=r"volta .* keeps in real time: run it on a development chain"):
        run_flexible_demo(real_network, crowd, AllocationKey.PRORATA, 1, (1,))


def test_the_weather_alone_forces_a_plain_demos_sky(daisee: Daisee, tmp_path: Path) -> None:
    produced = {}
    for weather in ("sunny", "cloudy"):
        demo = ("demo", "--households", "3", "--intervals", "24", "--interval-seconds", "3600", "--seed", "2")
        assert daisee(*demo, "--weather", weather, "--json", f"{weather}.json").exit_code == 0
        result = json.loads((tmp_path / f"{weather}.json").read_text())
        produced[weather] = sum(r["production"] for i in result["intervals"] for r in i["members"].values())
    assert produced["sunny"] > produced["cloudy"]
