"""The committed gas snapshot equals what each contract function costs today (`python -m daisee.gas_snapshot`)."""

from __future__ import annotations

import json

from daisee.gas_snapshot import SNAPSHOT, compare, measure


def test_gas_of_every_function_matches_the_committed_snapshot() -> None:
    changes = compare(measure(), json.loads(SNAPSHOT.read_text()))
    assert not changes, "gas changed; review, then run `python -m daisee.gas_snapshot --write`:\n" + "\n".join(changes)


def test_compare_names_each_change() -> None:
    assert compare({"a": 10, "b": 5}, {"a": 12, "c": 1}) == ["a: 12 -> 10 (-2)", "b: - -> 5", "c: 1 -> -"]
