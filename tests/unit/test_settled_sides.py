"""Decoding the records of a `MetersSettled` event: one word a meter-side (IEnergyLoop.sol)."""

from __future__ import annotations

from daisee.loop import MemberResult, SettledSide, settled_sides, tally

IDS = [bytes([i + 1]) * 32 for i in range(3)]


def word(index: int, side: int, energy: int, local: int, paid: int) -> int:
    return index | side << 16 | energy << 24 | local << 72 | paid << 120


def test_each_word_is_one_side_in_settlement_order() -> None:
    event = {
        "interval": 7,
        "pricePerWh": 150,
        "records": [word(2, 0, 500, 300, 45_000), word(0, 1, 800, 300, 30_000), word(2, 1, 2**48 - 1, 1, 2**93)],
    }

    assert settled_sides(event, IDS.__getitem__) == [
        SettledSide(7, IDS[2], production=False, energy_wh=500, local_wh=300, value=45_000, paid=45_000),
        SettledSide(7, IDS[0], production=True, energy_wh=800, local_wh=300, value=45_000, paid=30_000),
        SettledSide(7, IDS[2], production=True, energy_wh=2**48 - 1, local_wh=1, value=150, paid=2**93),
    ]


def test_a_meters_two_sides_make_one_result() -> None:
    event = {"interval": 3, "pricePerWh": 2, "records": [word(1, 0, 150, 100, 120), word(1, 1, 300, 250, 500)]}

    assert tally(settled_sides(event, IDS.__getitem__)) == {
        3: {IDS[1]: MemberResult(consumed=150, allocated=100, cost=200, paid_cost=120,
                                 produced=300, sold=250, revenue=500, paid_revenue=500)}
    }  # fmt: skip
