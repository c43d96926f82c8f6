"""Errors print exactly what they say: bracketed words such as `[loop]` are text, never rich markup."""

from __future__ import annotations

from pathlib import Path

import pytest

from daisee.cli import values
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


# --- values the commands read and print ---


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("604800", 604_800), ("7d", 604_800), ("12h", 43_200), ("30m", 1_800), ("1d12h", 129_600), ("45s", 45)],
)
def test_a_notice_reads_as_a_duration(text: str, seconds: int) -> None:
    assert values.duration(text, "--notice") == seconds


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (45, "45 s"), (1_800, "30 min"), (43_200, "12 h"), (86_400, "1 day"), (604_800, "7 days")],
)
def test_a_duration_is_said_in_its_largest_whole_unit(seconds: int, said: str) -> None:
    assert values.describe_duration(seconds) == said


@pytest.mark.parametrize(
    ("units", "said"),
    [(0, "0.00"), (12_000_000, "12.00"), (1_234_567, "1.234567"), (100_000, "0.10"), (-2_500, "-0.0025")],
)
def test_money_is_exact_with_at_least_cents(units: int, said: str) -> None:
    assert values.money(units) == said


def test_amounts_powers_and_shares_read_as_the_contract_counts_them() -> None:
    assert values.amount_units("12.50", "AMOUNT") == 12_500_000
    assert values.power_w("4.5", "--export-kwc", "kWc") == 4_500
    assert values.kilo(4_500) == "4.5"
    assert values.share_bp("12.5%", "--share") == 1_250
    assert values.percent_of_bp(1_250) == "12.5%"
