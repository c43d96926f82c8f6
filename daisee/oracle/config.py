"""The oracle's TOML configuration: which loop, which meter and key, how to send, which gateway.

Secrets never go here: the signing key lives in an encrypted keystore (`daisee account`), its
password in `$DAISEE_PASSWORD` or a password file readable by the oracle's user only.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daisee.domain import address, meter_id
from daisee.errors import DaiseeError

RPC_ENV = "DAISEE_RPC_URL"


@dataclass(frozen=True)
class OracleConfig:
    rpc: str | None
    chain_id: int
    loop: str
    meter_id: bytes
    signer: str  # keystore account name of the gateway key
    password_file: Path | None
    mode: str  # "direct" or "relay"
    relay: str | None
    payer: str | None  # keystore account paying gas in direct mode (default: the signer)
    outbox: Path
    gateway: dict[str, Any] = field(default_factory=dict)
    genesis: int | None = None
    interval_seconds: int | None = None


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    section = data.get(name)
    if not isinstance(section, dict):
        raise DaiseeError(f"{path}: missing [{name}] section: see the examples in oracles/")
    return section


def _get(section: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    value = section.get(key, default)
    if value is ...:
        raise DaiseeError(f"{where}: missing `{key}`: add it (see the examples in oracles/)")
    if value is not None and not isinstance(value, kind):
        raise DaiseeError(f"{where}: `{key}` must be a {kind.__name__}, not {value!r}")
    return value


def load_config(path: Path) -> OracleConfig:
    """Read and check `path`; every problem is one line naming the file, the key and the fix."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise DaiseeError(f"no oracle configuration at {path}: copy one from oracles/ and edit it") from None
    except tomllib.TOMLDecodeError as exc:
        raise DaiseeError(f"{path} is not valid TOML ({exc}): fix the syntax") from None
    loop, meter = _section(data, "loop", path), _section(data, "meter", path)
    send, gateway = _section(data, "send", path), _section(data, "gateway", path)
    outbox = data.get("outbox", {})
    mode = _get(send, "mode", str, f"{path} [send]", "direct")
    if mode not in ("direct", "relay"):
        raise DaiseeError(f"{path} [send]: mode {mode!r} is unknown: use direct or relay")
    rpc = _get(loop, "rpc", str, f"{path} [loop]", None) or os.environ.get(RPC_ENV)
    relay = _get(send, "relay", str, f"{path} [send]", None)
    if mode == "direct" and not rpc:
        raise DaiseeError(f"{path} [loop]: direct sending needs `rpc` (or ${RPC_ENV})")
    if mode == "relay" and not relay:
        raise DaiseeError(f"{path} [send]: relay mode needs `relay`, the relay's URL")
    genesis = _get(loop, "genesis", int, f"{path} [loop]", None)
    interval_seconds = _get(loop, "interval_seconds", int, f"{path} [loop]", None)
    if not rpc and (genesis is None or interval_seconds is None):
        raise DaiseeError(f"{path} [loop]: without `rpc`, give the loop's `genesis` and `interval_seconds`")
    if not isinstance(gateway.get("kind"), str):
        raise DaiseeError(f"{path} [gateway]: missing `kind` (tic, dsmr, emon, shelly, tasmota, csv or sim)")
    password_file = _get(meter, "password_file", str, f"{path} [meter]", None)
    return OracleConfig(
        rpc=rpc,
        chain_id=_get(loop, "chain_id", int, f"{path} [loop]"),
        loop=address(_get(loop, "address", str, f"{path} [loop]"), f"{path} [loop] address"),
        meter_id=meter_id(_get(meter, "id", str, f"{path} [meter]")),
        signer=_get(meter, "signer", str, f"{path} [meter]"),
        password_file=Path(password_file).expanduser() if password_file else None,
        mode=mode,
        relay=relay,
        payer=_get(send, "payer", str, f"{path} [send]", None),
        outbox=Path(_get(outbox, "path", str, f"{path} [outbox]", "~/.daisee/outbox.sqlite")).expanduser(),
        gateway=dict(gateway),
        genesis=genesis,
        interval_seconds=interval_seconds,
    )
