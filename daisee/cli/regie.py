"""`daisee regie`: the loop's data service — its curves for everyone, each member's own, exports."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path
from typing import Any

import click
from eth_account.messages import encode_defunct

from daisee.chain.accounts import daisee_home, unlock
from daisee.chain.deploy import ZERO_ADDRESS, load_deployment
from daisee.chain.transact import Sender
from daisee.cli.options import open_chain, open_sender, password_for, read_options
from daisee.cli.output import log_to_stderr
from daisee.cli.signals import stop_on_signals, wait_for
from daisee.domain import address, price_per_wh
from daisee.errors import DaiseeError
from daisee.flex.forecast import DEFAULT_SITE, Site, SkyForecast
from daisee.flex.mqtt import Broker
from daisee.http_service import settle_heap
from daisee.loop import Loop
from daisee.loopback import LOOPBACK
from daisee.regie.bench import bench_regie
from daisee.regie.calendar import DEFAULT_ZONE
from daisee.regie.publish import DEFAULT_MIN_METERS, PublicationRule
from daisee.regie.service import DEFAULT_PORT, Regie, RegieSettings
from daisee.untrusted_json import UntrustedJSONError, parse_untrusted

MAX_ANSWER_BYTES = 64 * 1024  # a sign-in message, a link, a plan or a refusal
MQTT_PASSWORD_VARIABLE = "DAISEE_MQTT_PASSWORD"


@click.group()
def regie() -> None:
    """The régie de données: the loop's data service, on its members' terms."""


@regie.command("serve")
@read_options
@click.option("--loop", "loop_address", help="Loop contract address (default: the deployment record's).")
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    help="First block to index (default: the deployment record's; needed with --loop).",
)
@click.option(
    "--db",
    "db_url",
    help="Store URL: sqlite:///PATH or postgresql://USER@HOST/DB (default: a SQLite file regie-<chain id>.sqlite "
    "in $DAISEE_HOME or ~/.daisee).",
)
@click.option("--host", default=LOOPBACK, show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--zone", default=DEFAULT_ZONE, show_default=True, help="The civil time zone of the curves (IANA).")
@click.option(
    "--min-meters",
    type=click.IntRange(min=1),
    default=DEFAULT_MIN_METERS,
    show_default=True,
    help="Meters an aggregate needs before everyone may see it (and none may make over half of it).",
)
@click.option(
    "--grid-price",
    default="0.25",
    show_default=True,
    help="The grid's price per kWh the bills compare with (in the ledger's currency).",
)
@click.option(
    "--public-url", help="The URL members reach the régie at, behind a proxy (https://…): they sign in to it."
)
@click.option(
    "--consents",
    "registry_address",
    help="The loop's consent registry (default: the deployment record's; with --loop, none unless given).",
)
@click.option(
    "--account",
    help="Keystore account that pays for recording the members' signed consents (default: none is recorded "
    "here; on a dev chain, its first account).",
)
@click.option("--password-file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--site",
    default=str(DEFAULT_SITE),
    show_default=True,
    help="Where the loop's roofs are, LAT,LON[,ALTITUDE], for the flexibility signal's clear-sky model.",
)
@click.option(
    "--sky-forecast",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A CSV of the sky by hour (time, and clearness 0-1.2 or ghi in W/m²) the signal follows where it covers.",
)
@click.option(
    "--mqtt",
    "mqtt_broker",
    help="Publish the signal, retained, on this MQTT broker (HOST[:PORT]) under daisee/<loop>/signal.",
)
@click.option("--mqtt-username", help="The broker's user name (its password in $DAISEE_MQTT_PASSWORD).")
@click.option(
    "--anchor-every",
    type=click.FloatRange(min=60),
    help="Publish the access log's running hash on chain this often, in seconds (with --account).",
)
def serve(
    chain_target: str,
    chain_id: int | None,
    deployments_dir: Path,
    loop_address: str | None,
    from_block: int | None,
    db_url: str | None,
    host: str,
    port: int,
    zone: str,
    min_meters: int,
    grid_price: str,
    public_url: str | None,
    registry_address: str | None,
    account: str | None,
    password_file: Path | None,
    anchor_every: float | None,
    site: str,
    sky_forecast: Path | None,
    mqtt_broker: str | None,
    mqtt_username: str | None,
) -> None:
    """Index the loop into the store and serve its pages and API until Ctrl-C (or SIGTERM).

    Everyone sees the loop's curves as the publication rule allows; a member signs in with its payout
    account (Sign-In with Ethereum) and sees its own curves against the loop's and its bills, grants and
    revokes consents, and reads who accessed its data; a grantee sees what its live consents allow. The
    API is described at /openapi.json.
    """
    chain = open_chain(chain_target, chain_id)
    registry = address(registry_address, "--consents") if registry_address else None
    if loop_address:
        if from_block is None:
            raise DaiseeError("--loop needs --from-block: the block the loop was deployed in (or an earlier one)")
        loop_at, first = address(loop_address, "--loop"), from_block
    else:
        deployment = load_deployment(chain, deployments_dir)
        loop_at, first = deployment.address, deployment.block if from_block is None else from_block
        registry = registry or deployment.consent_registry
    located = Site.parse(site)
    if sky_forecast:
        SkyForecast.read(sky_forecast, located)  # before any store is opened
    loop_at = chain.w3.to_checksum_address(loop_at)
    if not chain.w3.eth.get_code(loop_at):
        raise DaiseeError(f"no contract at {loop_at} on {chain.label}: check --loop")
    loop = Loop(Sender(chain, chain.w3.to_checksum_address(ZERO_ADDRESS)), loop_at)  # the régie only reads
    settings = RegieSettings(
        db_url or f"sqlite:///{daisee_home() / f'regie-{chain.chain_id}.sqlite'}",
        host=host,
        port=port,
        zone=zone,
        rule=PublicationRule(min_meters),
        grid_price_per_wh=price_per_wh(grid_price),
        public_url=public_url,
        anchor_seconds=anchor_every,
        site=located,
        sky_file=sky_forecast,
        mqtt=Broker.parse(mqtt_broker, mqtt_username, os.environ.get(MQTT_PASSWORD_VARIABLE)) if mqtt_broker else None,
    )
    if registry is not None and not chain.w3.eth.get_code(chain.w3.to_checksum_address(registry)):
        raise DaiseeError(f"no contract at {registry} on {chain.label}: check --consents")
    submitter = open_sender(chain, account, password_file) if registry and (account or chain.is_dev) else None
    with log_to_stderr("daisee.regie"):
        serve_until_stopped(Regie(settings, loop, first, registry, submitter))


def serve_until_stopped(service: Regie) -> None:
    """Start `service`, say where it is, and stop it on Ctrl-C or SIGTERM."""
    stop = stop_on_signals()
    service.start()
    settle_heap()
    click.echo(f"the régie of loop {service.loop.address} is at {service.url} (Ctrl-C stops it)", err=True)
    try:
        wait_for(stop)
    finally:
        service.stop()


@regie.command("bench")
@click.option("--meters", "meters_count", type=click.IntRange(10, 5000), default=1000, show_default=True)
@click.option("--days", type=click.IntRange(1, 366), default=365, show_default=True, help="Days of the loaded store.")
@click.option("--index-meters", type=click.IntRange(1, 500), default=100, show_default=True)
@click.option("--index-days", type=click.IntRange(1, 31), default=7, show_default=True)
@click.option(
    "--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the figures here."
)
def bench(meters_count: int, days: int, index_meters: int, index_days: int, json_out: Path | None) -> None:
    """Measure the régie on SQLite and PostgreSQL: the indexing rate from a loop played on anvil, and the
    year pages of a member and of the loop on a store of METERS meters over DAYS days (see
    daisee.regie.bench)."""
    found = bench_regie(meters_count, days, index_meters, index_days, lambda line: click.echo(line, err=True))
    text = json.dumps({"meters": meters_count, "days": days, **found}, indent=1)
    click.echo(text)
    if json_out:
        json_out.write_text(text + "\n")


@regie.command("login")
@click.option("--url", default=f"http://{LOOPBACK}:{DEFAULT_PORT}", show_default=True, help="The régie's URL.")
@click.option("--account", required=True, help="The keystore account to sign in with: a meter's payout account.")
@click.option("--password-file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--open", "open_browser", is_flag=True, help="Open the link in the browser instead of printing it.")
def login(url: str, account: str, password_file: Path | None, open_browser: bool) -> None:
    """Sign in to a régie with a keystore account (Sign-In with Ethereum, signed here) and print, or open,
    the one-time link (valid 2 minutes) that opens the session in a browser."""
    signer = unlock(account, password_for(account, password_file))
    base = url.rstrip("/")
    message = ask_regie(base, "/api/sign-in/message", {"address": signer.address})["message"]
    signature = signer.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    link = ask_regie(base, "/api/sign-in/link", {"message": message, "signature": signature})["link"]
    if open_browser and webbrowser.open(link):
        click.echo(f"signed in as {signer.address}: the session opened in your browser", err=True)
        return
    click.echo(link)


def ask_regie(base: str, path: str, body: dict[str, str] | None = None, what: str = "the sign-in") -> dict[str, Any]:
    """The régie's JSON answer to a GET (a POST with `body`); DaiseeError with its refusal of `what`, or
    why it could not be reached."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data, {"content-type": "application/json"}, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return dict(parse_untrusted(answer.read(), max_bytes=MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as exc:
        try:
            said = parse_untrusted(exc.read(), max_bytes=MAX_ANSWER_BYTES).get("error", exc.reason)
        except (UntrustedJSONError, AttributeError):
            said = exc.reason
        raise DaiseeError(f"the régie refused {what}: {said}") from None
    except (urllib.error.URLError, OSError, UntrustedJSONError, TypeError, ValueError) as exc:
        raise DaiseeError(f"cannot reach the régie at {base} ({exc}): check --url") from None
