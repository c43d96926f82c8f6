"""docs/raspberry-pi.md stays true to the code: its configuration and every `[gateway]` table it shows load
and fit their gateway, and the units it names are the ones the gateways read."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest

from daisee.gateways.factory import GATEWAYS, gateway_class
from daisee.oracle.config import load_config

GUIDE = Path(__file__).parents[2] / "docs" / "raspberry-pi.md"
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", GUIDE.read_text(), re.DOTALL)
GATEWAY_TABLES = [tomllib.loads(block)["gateway"] for block in TOML_BLOCKS if block.startswith("[gateway]")]


def test_the_guide_shows_a_gateway_table_for_every_kind() -> None:
    assert {table["kind"] for table in GATEWAY_TABLES} == set(GATEWAYS)


@pytest.mark.parametrize("table", GATEWAY_TABLES, ids=lambda table: table["kind"])
def test_each_gateway_table_fits_its_gateway(table: dict[str, object]) -> None:
    cls, options = gateway_class(table)
    inspect.signature(cls).bind(**options)  # TypeError on an option the gateway does not take


def test_the_common_configuration_loads_with_each_gateway(tmp_path: Path) -> None:
    [common] = [block for block in TOML_BLOCKS if block.startswith("[loop]")]
    for table in GATEWAY_TABLES:
        lines = [f"{key} = {value!r}".replace("True", "true").replace("False", "false") for key, value in table.items()]
        path = tmp_path / f"{table['kind']}.toml"
        path.write_text(common.replace("# one of the tables of section 7", "\n".join(lines)))
        config = load_config(path)
        assert config.gateway == table
        assert config.mode == "relay"
        assert config.password_file is None  # the password is never in the configuration


def test_the_documented_options_are_the_gateways_own() -> None:
    """Every option named in a table of the guide's gateway sections is a parameter of that gateway."""
    text = GUIDE.read_text()
    sections = re.split(r"\n### 7\.\d ", text)[1:]
    checked = 0
    for section in sections:
        kinds = {
            table["kind"]
            for block in re.findall(r"```toml\n(.*?)```", section, re.DOTALL)
            for table in [tomllib.loads(block).get("gateway", {})]
            if table
        }
        rows = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", section, re.MULTILINE)
        for kind in kinds:
            cls, _ = gateway_class({"kind": kind})
            parameters = set(inspect.signature(cls).parameters)
            for names in rows:
                for name in filter(None, names):
                    assert name in parameters, f"{kind}: {name}"
                    checked += 1
    assert checked >= 15
