"""The example configurations in oracles/ are valid: a household can start from any of them."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from daisee.gateways.factory import GATEWAYS, gateway_class
from daisee.oracle.config import load_config

EXAMPLES = sorted((Path(__file__).parents[2] / "oracles").glob("*.toml"))


def test_there_is_an_example_for_every_gateway_kind() -> None:
    assert {load_config(path).gateway["kind"] for path in EXAMPLES} == set(GATEWAYS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_options_fit_their_gateway(path: Path) -> None:
    config = load_config(path)
    cls, options = gateway_class(config.gateway)
    inspect.signature(cls).bind(**options)  # raises TypeError on an unknown or missing option
    assert config.password_file is None  # secrets never in the TOML
