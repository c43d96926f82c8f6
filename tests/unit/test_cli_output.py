"""Errors print exactly what they say: bracketed words such as `[loop]` are text, never rich markup."""

from __future__ import annotations

from pathlib import Path

import pytest

from daisee.cli.output import print_error
from tests.e2e.conftest import Daisee, daisee  # noqa: F401  (the in-process CLI runner fixture)


@pytest.mark.parametrize(
    "message",
    [
        "oracle.toml [loop]: direct sending needs `rpc` (or $DAISEE_RPC_URL)",
        "[gateway] kind 'linky' is unknown: use one of tic, dsmr",
        "[send] relay is missing",
        "a stray closing tag [/] and [bold]not bold[/bold]",
    ],
)
def test_print_error_keeps_brackets(capsys: pytest.CaptureFixture[str], message: str) -> None:
    print_error(message)
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_config_error_naming_its_section_prints_the_section(daisee: Daisee, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "oracle.toml"
    config.write_text(
        '[loop]\nchain_id = 31337\naddress = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\n\n'
        '[meter]\nid = "house-1"\nsigner = "gateway"\n\n[send]\nmode = "direct"\n\n[gateway]\nkind = "sim"\n'
    )
    outcome = daisee("oracle", "status", "--config", str(config))
    assert outcome.exit_code == 1
    assert outcome.stderr == f"error: {config} [loop]: direct sending needs `rpc` (or $DAISEE_RPC_URL)\n"
