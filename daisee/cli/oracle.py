"""`daisee oracle`: what a household runs on its gateway."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click
from eth_keys.datatypes import PrivateKey
from rich.table import Table

from daisee.chain.accounts import unlock
from daisee.chain.connect import connect
from daisee.chain.transact import Sender
from daisee.cli.options import json_option, password_for
from daisee.cli.output import console, print_json
from daisee.errors import DaiseeError
from daisee.gateways.factory import build_gateway
from daisee.loop import Loop
from daisee.oracle.config import OracleConfig, load_config
from daisee.oracle.outbox import Outbox
from daisee.oracle.runner import Oracle
from daisee.oracle.sampler import Sampler
from daisee.oracle.senders import DirectSender, ReadingSender, RelaySender
from daisee.readings import LoopDomain

_config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Oracle TOML file."
)


@click.group()
def oracle() -> None:
    """Sign the household meter's readings and push them on-chain, durably and exactly once."""


@oracle.command("run")
@_config_option
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
def run(config_path: Path, log_level: str) -> None:
    """Run until stopped (Ctrl-C or SIGTERM); one log line per event."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = load_config(config_path)
    the_oracle = _assemble(config)
    gateway = build_gateway(config.gateway)

    def stop(signum: int, frame: FrameType | None) -> None:
        the_oracle.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("daisee.oracle").info(
        "event=start meter=0x%s mode=%s gateway=%s", config.meter_id.hex(), config.mode, config.gateway["kind"]
    )
    the_oracle.run(gateway)


@oracle.command("status")
@_config_option
@json_option
def status(config_path: Path, as_json: bool) -> None:
    """Last reading, backlog, last confirmed interval and alerts, from the outbox."""
    config = load_config(config_path)
    outbox = Outbox(config.outbox)
    last = outbox.last_signed()
    summary: dict[str, Any] = {
        "meter_id": "0x" + config.meter_id.hex(),
        "last_reading": None
        if last is None
        else {"interval": last.interval, "import_wh": last.import_wh, "export_wh": last.export_wh},
        "backlog": outbox.backlog(),
        "last_confirmed_interval": outbox.last_confirmed_interval(),
        "alerts": [
            {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)), "kind": kind, "message": message}
            for at, kind, message in outbox.alerts()
        ],
    }
    if as_json:
        print_json(summary)
        return
    console.print(f"meter {summary['meter_id']}")
    console.print(f"last reading: {summary['last_reading'] or 'none yet'}")
    console.print(f"backlog: {summary['backlog']}; last confirmed interval: {summary['last_confirmed_interval']}")
    if summary["alerts"]:
        table = Table("at", "kind", "message", title="alerts")
        for alert in summary["alerts"]:
            table.add_row(alert["at"], alert["kind"], alert["message"])
        console.print(table)


def _assemble(config: OracleConfig) -> Oracle:
    """Keys, chain, sender, outbox and sampler from the configuration."""
    signer = unlock(config.signer, password_for(config.signer, config.password_file))
    domain = LoopDomain(config.chain_id, config.loop)
    genesis, interval_seconds = config.genesis, config.interval_seconds
    sender: ReadingSender
    if config.rpc:
        chain = connect(config.rpc, expected_chain_id=config.chain_id)
        payer = (
            signer
            if config.payer in (None, config.signer)
            else unlock(config.payer, password_for(config.payer, config.password_file))
        )
        loop = Loop(Sender.local(chain, payer), config.loop)
        f = loop.contract.functions
        genesis, interval_seconds = f.genesis().call(), f.intervalSeconds().call()
        sender = DirectSender(loop) if config.mode == "direct" else RelaySender(str(config.relay))
    else:
        sender = RelaySender(str(config.relay))
    if genesis is None or interval_seconds is None:  # load_config requires them without rpc
        raise DaiseeError("the loop's genesis and interval_seconds are unknown: give them in [loop] or give `rpc`")
    outbox = Outbox(config.outbox)
    sampler = Sampler(config.meter_id, genesis, interval_seconds, floor=outbox.last_signed())
    return Oracle(sampler, PrivateKey(signer.key), domain, outbox, sender)
