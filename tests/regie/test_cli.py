"""`daisee regie serve` as an operator runs it: indexes the loop of the deployment record, serves on
loopback, stops on SIGTERM; bad options get one line and no store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_typing import HexStr

from daisee.chain.accounts import import_account
from daisee.chain.deploy import save_deployment
from daisee.chain.nodes import LocalNode, free_port
from daisee.cli import cli
from daisee.demo import DemoRun
from daisee.loop import Loop
from daisee.regie.service import Regie
from tests.regie.test_web import call, payout_key

WAIT_SECONDS = 120.0  # a busy machine included


def test_serve_indexes_the_deployed_loop_and_stops_on_sigterm(
    played: tuple[Loop, DemoRun], regie_node: LocalNode, isolated_home: Path, tmp_path: Path
) -> None:
    loop, run = played
    save_deployment(run.deployment, tmp_path / "deployments")
    port = free_port()
    command = [str(Path(sys.executable).with_name("daisee")), "regie", "serve", "--chain", regie_node.url]
    command += ["--deployments", str(tmp_path / "deployments"), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        status = None
        while status is None:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the régie did not answer"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as answer:
                    status = json.loads(answer.read())
            except OSError:
                time.sleep(0.2)
        assert status["loop"] == loop.address
        assert status["indexer"]["next_block"] > run.deployment.block
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert f"is at http://127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr
    assert (isolated_home / f"regie-{loop.sender.chain.chain_id}.sqlite").is_file()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--loop", "0x" + "11" * 20], "--loop needs --from-block: the block the loop was deployed in"),
        (
            ["--loop", "0x" + "11" * 20, "--from-block", "0"],
            "no contract at 0x1111111111111111111111111111111111111111",
        ),
        (["--db", "mysql://regie@localhost/regie"], "the store URL is not sqlite:///PATH or postgresql://USER@HOST/DB"),
        (["--zone", "Mars/Olympus"], "time zone 'Mars/Olympus' is unknown: give an IANA name such as Europe/Paris"),
        (["--grid-price", "cheap"], "cheap"),
        (["--site", "north"], "site 'north': give LAT,LON in degrees"),
        (["--site", "95,2"], "latitude within ±90°"),
        (["--mqtt", "broker:port"], "MQTT broker 'broker:port': give HOST or HOST:PORT"),
        (["--sky-forecast", "pyproject.toml"], "sky forecast pyproject.toml: give a header with `time`"),
    ],
)
def test_a_bad_option_is_one_line_and_no_store(
    played: tuple[Loop, DemoRun],
    regie_node: LocalNode,
    isolated_home: Path,
    tmp_path: Path,
    options: list[str],
    error: str,
) -> None:
    _, run = played
    save_deployment(run.deployment, tmp_path / "deployments")
    args = ["regie", "serve", "--chain", regie_node.url, "--deployments", str(tmp_path / "deployments"), *options]
    result = CliRunner().invoke(cli, args)  # from the project's folder: pyproject.toml is no CSV of the sky
    assert result.exit_code != 0
    assert error in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not list(isolated_home.glob("regie-*.sqlite"))


def test_login_signs_with_the_keystore_and_prints_a_one_time_link(served: Regie, tmp_path: Path) -> None:
    import_account("house", HexStr("0x" + payout_key(2).hex()), "secret")
    (tmp_path / "password").write_text("secret\n")
    args = ["regie", "login", "--url", served.url, "--account", "house", "--password-file", str(tmp_path / "password")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert link.startswith(served.url + "/session/")

    status, headers, _ = call(served, "GET", link.removeprefix(served.url))
    assert status == 303
    assert headers["location"] == "/member"
    token = headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert call(served, "GET", "/api/member", cookie=token)[0] == 200
    again, _, refused = call(served, "GET", link.removeprefix(served.url))
    assert again == 401
    assert "was used already or has expired: run `daisee regie login` again" in refused  # a page, for a browser


def test_login_says_in_one_line_why_it_could_not_sign_in(served: Regie, tmp_path: Path) -> None:
    import_account("stranger", HexStr("0x" + "42" * 32), "secret")
    (tmp_path / "wrong").write_text("wrong\n")
    (tmp_path / "right").write_text("secret\n")
    for url, password, error in (
        (served.url, "wrong", "wrong password for account 'stranger'"),
        ("http://127.0.0.1:9", "right", "cannot reach the régie at http://127.0.0.1:9"),
    ):
        args = ["regie", "login", "--url", url, "--account", "stranger", "--password-file", str(tmp_path / password)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code != 0
        assert error in result.output
        assert len(result.output.strip().splitlines()) == 1
