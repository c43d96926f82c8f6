"""`daisee consent`: a member grants and revokes who sees its meter's curves; anyone submits signed messages;
everyone lists the consents recorded in the loop's registry."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click
from eth_utils import is_hex
from rich.table import Column, Table

from daisee.chain.clock import chain_time
from daisee.chain.connect import Chain
from daisee.chain.deploy import ZERO_ADDRESS, load_deployment
from daisee.chain.transact import Sender
from daisee.cli.options import chain_options, json_option, open_chain, open_sender, read_options
from daisee.cli.output import console, print_json
from daisee.consent.model import (
    MAX_HISTORY_DAYS,
    Audience,
    DataKind,
    Grant,
    Purpose,
    Status,
    local_midnight,
    parse_grantee,
    parse_granularity,
    revocation_typed_data,
)
from daisee.consent.registry import ConsentRegistry, RecordedConsent, sign_grant, sign_revocation
from daisee.domain import meter_id
from daisee.errors import DaiseeError
from daisee.regie.calendar import DEFAULT_ZONE, Granularity, zone
from daisee.untrusted_json import UntrustedJSONError, parse_untrusted

MAX_SIGNED_FILE = 64 * 1024  # a signed message is about 2 kB
_TZ = zone(DEFAULT_ZONE)  # days begin at midnight in the loop's civil time, as the régie counts them
_PURPOSES_HELP = (
    "loop_dashboard (the loop's dashboards beyond its public aggregates), neighbour_comparison (counted, as "
    "medians only, in other members' comparison with their neighbours), open_data (a producer's figures "
    "published for funders and anyone), research, advice (an energy adviser), supplier (the member's "
    "electricity supplier)"
)


@click.group()
def consent() -> None:
    """Who may see a meter's curves, for what purpose, until when: consents signed by the meter's payout
    account and recorded in the loop's consent registry, where nobody (the régie included) can forge or hide
    one. One consent is one meter, one grantee and one purpose."""


# ---------------------------------------------------------------- parsing


def _grantee(text: str) -> tuple[Audience, str]:
    return parse_grantee(text, "--to")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise DaiseeError(f"{option} {text!r} is not a date: give it as YYYY-MM-DD, e.g. 2025-06-01") from None


def _midnight(day: date) -> int:
    """The instant `day` begins in the loop's civil time."""
    return local_midnight(day, _TZ)


def _dates(starts: str | None, until: str | None, days: int | None) -> tuple[date | None, date | int]:
    """--from (None: today), and --until or --days (exactly one), as typed."""
    if (until is None) == (days is None):
        raise DaiseeError("say when the consent ends: give --until YYYY-MM-DD or --days N (one of them)")
    first = _day(starts, "--from") if starts else None
    return first, _day(until, "--until") if until else int(days or 0)


def _validity(chain: Chain, first: date | None, end: date | int) -> tuple[int, int]:
    """(valid_from, valid_until): from midnight of `first` (default today) to midnight of `end`, or `end` days on."""
    first = first or datetime.fromtimestamp(chain_time(chain), UTC).astimezone(_TZ).date()
    last = end if isinstance(end, date) else first + timedelta(days=end)
    return _midnight(first), _midnight(last)


# ---------------------------------------------------------------- the registry, and who signs


def _registry(chain: Chain, deployments_dir: Path, sender: Sender) -> ConsentRegistry:
    deployment = load_deployment(chain, deployments_dir)
    if deployment.consent_registry is None:
        raise DaiseeError(
            f"the loop recorded for chain {chain.chain_id} has no consent registry (it was deployed before daisee "
            "had one): deploy a new loop with `daisee deploy --force`"
        )
    return ConsentRegistry(sender, deployment.consent_registry)


def _open(chain_args: dict[str, Any]) -> tuple[ConsentRegistry, Sender]:
    """The recorded registry, driven by the signing account (a keystore's, or a dev chain's first)."""
    chain = open_chain(chain_args["chain_target"], chain_args["chain_id"])
    sender = open_sender(chain, chain_args["account"], chain_args["password_file"])
    return _registry(chain, chain_args["deployments_dir"], sender), sender


def _require(who: str, expected: str, sender: Sender, what: str) -> None:
    if sender.address != expected:
        raise DaiseeError(
            f"only {who} {expected} may {what}, not {sender.address}: pass --account with that account's key"
        )


def _write_signed(path: Path, typed: dict[str, Any], signature: bytes) -> None:
    path.write_text(json.dumps({"typed_data": typed, "signature": "0x" + signature.hex()}, indent=2) + "\n")


def _signed_out_needs_a_key(sender: Sender) -> None:
    if sender.account is None:
        raise DaiseeError("--signed-out needs a key to sign with: pass --account NAME (see `daisee account`)")


def _said(registry: ConsentRegistry, consent_id: bytes, done: str, as_json: bool) -> None:
    status = registry.status(consent_id)
    if as_json:
        print_json({"consent_id": "0x" + consent_id.hex(), "status": status.value if status else None})
    else:
        console.print(f"consent 0x{consent_id.hex()} {done}; status {status.value if status else 'unknown'}")


_SIGNED_OUT = click.option(
    "--signed-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Do not send: write the signed message to this JSON file, for anyone (the régie) to submit with "
    "`daisee consent submit` (the member pays no gas).",
)


# ---------------------------------------------------------------- commands


@consent.command("grant")
@click.option("--meter", "meter", required=True, help="The meter: 0x + 64 hex digits, or its local label.")
@click.option("--to", "to", required=True, help="The grantee: an account (0x…), `members` (of the loop) or `everyone`.")
@click.option("--purpose", required=True, help=f"What for, one purpose a consent: {_PURPOSES_HELP}.")
@click.option(
    "--kinds", required=True, help="Data covered, comma-separated: consumption, production, allocation, bill."
)
@click.option("--granularity", required=True, help="The finest data served: interval (the loop's), hour, day, month.")
@click.option(
    "--history-days",
    type=click.IntRange(0, MAX_HISTORY_DAYS),
    default=0,
    show_default=True,
    help="Days of history before --from that the grantee may see too.",
)
@click.option("--from", "starts", help="First day (YYYY-MM-DD, from midnight in Europe/Paris; default: today).")
@click.option("--until", help="The day the consent ends (YYYY-MM-DD, at its midnight; at most three years on).")
@click.option("--days", type=click.IntRange(min=1), help="Or: how many days the consent lasts from --from.")
@_SIGNED_OUT
@chain_options
@json_option
def grant(
    meter: str,
    to: str,
    purpose: str,
    kinds: str,
    granularity: str,
    history_days: int,
    starts: str | None,
    until: str | None,
    days: int | None,
    signed_out: Path | None,
    as_json: bool,
    **chain_args: Any,
) -> None:
    """Grant a consent on a meter, signed by its payout account (--account; a dev chain's first account sends it
    unsigned). Status: pending until --from, active until it ends, then expired; revoked once revoked."""
    mid, (audience, grantee) = meter_id(meter), _grantee(to)
    chosen = (Purpose.parse(purpose), DataKind.parse(kinds), parse_granularity(granularity))
    first, end = _dates(starts, until, days)
    registry, sender = _open(chain_args)
    valid_from, valid_until = _validity(sender.chain, first, end)
    the_grant = Grant(mid, audience, grantee, *chosen, history_days, valid_from, valid_until, secrets.randbits(64))
    payout = registry.check_grant(the_grant).payout
    _require(f"meter 0x{mid.hex()}'s payout account", payout, sender, "grant a consent on it")
    if signed_out is not None:
        _signed_out_needs_a_key(sender)
        assert sender.account is not None
        signature = sign_grant(the_grant, sender.account, registry.chain_id, registry.address)
        _write_signed(signed_out, the_grant.typed_data(registry.chain_id, registry.address), signature)
        consent_id = the_grant.consent_id(registry.chain_id, registry.address)
        if as_json:
            print_json({"consent_id": "0x" + consent_id.hex(), "signed_out": str(signed_out)})
        else:
            console.print(
                f"consent 0x{consent_id.hex()} signed into {signed_out}: anyone records it with "
                f"`daisee consent submit {signed_out}`"
            )
        return
    if sender.account is None:
        consent_id = registry.grant(the_grant)
    else:
        consent_id = registry.record_grant(
            the_grant, sign_grant(the_grant, sender.account, registry.chain_id, registry.address)
        )
    _said(registry, consent_id, "recorded", as_json)


@consent.command("revoke")
@click.argument("consent_id")
@_SIGNED_OUT
@chain_options
@json_option
def revoke(consent_id: str, signed_out: Path | None, as_json: bool, **chain_args: Any) -> None:
    """Revoke CONSENT_ID (0x + 64 hex digits) at once, as its grantor (the meter's payout account)."""
    cid = _consent_id(consent_id)
    registry, sender = _open(chain_args)
    grantor = registry.check_revocation(cid)
    _require(f"consent 0x{cid.hex()}'s grantor", grantor, sender, "revoke it")
    if signed_out is not None:
        _signed_out_needs_a_key(sender)
        assert sender.account is not None
        signature = sign_revocation(cid, sender.account, registry.chain_id, registry.address)
        _write_signed(signed_out, revocation_typed_data(cid, registry.chain_id, registry.address), signature)
        if as_json:
            print_json({"consent_id": "0x" + cid.hex(), "signed_out": str(signed_out)})
        else:
            console.print(f"revocation of consent 0x{cid.hex()} signed into {signed_out}")
        return
    registry.revoke(cid)
    _said(registry, cid, "revoked", as_json)


@consent.command("submit")
@click.argument("signed", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@chain_options
@json_option
def submit(signed: Path, as_json: bool, **chain_args: Any) -> None:
    """Record a signed grant or revocation written by `--signed-out` (the submitting account pays the gas)."""
    typed, signature = _read_signed(signed)
    registry, _ = _open(chain_args)
    _check_domain(signed, typed, registry)
    if typed.get("primaryType") == "Revocation":
        cid = _consent_id(str(typed["message"].get("consentId", "")), f"{signed}'s consentId")
        _same_document(signed, typed, revocation_typed_data(cid, registry.chain_id, registry.address))
        registry.record_revocation(cid, signature)
        _said(registry, cid, "revoked", as_json)
        return
    try:
        the_grant = Grant.from_message(typed["message"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise DaiseeError(f"{signed} holds no daisee consent grant: sign one with `daisee consent grant`") from None
    _same_document(signed, typed, the_grant.typed_data(registry.chain_id, registry.address))
    _said(registry, registry.record_grant(the_grant, signature), "recorded", as_json)


@consent.command("list")
@click.option("--meter", "meter", help="Only this meter's consents (0x + 64 hex digits, or its label).")
@read_options
@json_option
def list_(meter: str | None, as_json: bool, chain_target: str, chain_id: int | None, deployments_dir: Path) -> None:
    """The consents recorded in the loop's registry, with their status now."""
    mid = meter_id(meter) if meter else None
    chain = open_chain(chain_target, chain_id)
    registry = _registry(chain, deployments_dir, Sender(chain, chain.w3.to_checksum_address(ZERO_ADDRESS)))
    found = registry.consents(mid, load_deployment(chain, deployments_dir).block)
    now = chain_time(chain)
    if as_json:
        print_json({"registry": registry.address, "consents": [_consent_json(c, now) for c in found]})
        return
    table = Table(
        Column("consent (meter)", overflow="fold", ratio=3),
        Column("status", no_wrap=True),
        Column("purpose", no_wrap=True),
        Column("grantee", no_wrap=True),
        Column("kinds, by", overflow="fold", ratio=2),
        Column("from → until (history)", overflow="fold", ratio=2),
        show_lines=True,
    )
    for c in found:
        g = c.grant
        table.add_row(
            f"0x{c.consent_id.hex()} (0x{g.meter_id.hex()[:8]}…)",
            c.status(now).value,
            g.purpose.slug,
            f"{g.grantee[:6]}…{g.grantee[-4:]}" if g.audience is Audience.ACCOUNT else g.audience.name.lower(),
            f"{_kinds_text(g.kinds).replace(',', ', ')}, by {_granularity_text(g.granularity)}",
            f"{_local_day(g.valid_from)} → {_local_day(g.valid_until)} ({g.history_days} days)",
        )
    console.print(table if found else f"no consent recorded in {registry.address}")


# ---------------------------------------------------------------- helpers


def _consent_id(text: str, what: str = "consent id") -> bytes:
    text = text.strip()
    if not (text.startswith("0x") and len(text) == 66 and is_hex(text)):
        raise DaiseeError(f"{what} {text!r} is not a consent id: give 0x + 64 hex digits (see `daisee consent list`)")
    return bytes.fromhex(text[2:])


def _read_signed(path: Path) -> tuple[dict[str, Any], bytes]:
    """The typed data and signature of a `--signed-out` file, or one line saying what is wrong."""
    broken = f"{path} is not a signed consent message (`--signed-out` JSON with typed_data and signature)"
    try:
        data = parse_untrusted(path.read_bytes(), max_bytes=MAX_SIGNED_FILE)
    except (UntrustedJSONError, OSError) as exc:
        raise DaiseeError(f"{broken}: {exc}") from None
    typed, signature = (data.get("typed_data"), data.get("signature")) if isinstance(data, dict) else (None, None)
    if not isinstance(typed, dict) or not isinstance(typed.get("message"), dict) or not isinstance(signature, str):
        raise DaiseeError(broken)
    if not (signature.startswith("0x") and is_hex(signature)) or len(signature) % 2:
        raise DaiseeError(f"{path}: the signature is not hex (0x…): sign the message again")
    return typed, bytes.fromhex(signature[2:])


def _check_domain(path: Path, typed: dict[str, Any], registry: ConsentRegistry) -> None:
    found = typed.get("domain")
    domain: dict[str, Any] = found if isinstance(found, dict) else {}
    signed_for = (domain.get("chainId"), str(domain.get("verifyingContract", "")).lower())
    if signed_for != (registry.chain_id, registry.address.lower()):
        raise DaiseeError(
            f"{path} was signed for registry {domain.get('verifyingContract')} on chain {domain.get('chainId')}, "
            f"not this loop's {registry.address} on chain {registry.chain_id}: have it signed for this one"
        )


def _same_document(path: Path, typed: dict[str, Any], expected: dict[str, Any]) -> None:
    """Refuse a file whose types or fields are not exactly those of daisee's message (what the wallet showed
    must be what is recorded)."""
    if typed != expected:
        raise DaiseeError(f"{path} is not a daisee consent message as `daisee consent` writes it: sign it again")


def _local_day(timestamp: int) -> str:
    """The day (in the loop's civil time) an instant falls in; with the time unless it is midnight."""
    local = datetime.fromtimestamp(timestamp, UTC).astimezone(_TZ)
    return local.date().isoformat() if local.time() == time() else local.strftime("%Y-%m-%d %H:%M")


def _kinds_text(kinds: DataKind) -> str:
    return ",".join(str(k.name).lower() for k in DataKind if k & kinds)


def _granularity_text(granularity: Granularity) -> str:
    return "interval" if granularity is Granularity.STEP else granularity.value


def _consent_json(c: RecordedConsent, now: int) -> dict[str, Any]:
    g = c.grant
    status: Status = c.status(now)
    return {
        "consent_id": "0x" + c.consent_id.hex(),
        "meter_id": "0x" + g.meter_id.hex(),
        "status": status.value,
        "grantor": c.grantor,
        "audience": g.audience.name.lower(),
        "grantee": g.grantee,
        "purpose": g.purpose.slug,
        "kinds": _kinds_text(g.kinds).split(","),
        "granularity": _granularity_text(g.granularity),
        "history_days": g.history_days,
        "valid_from": g.valid_from,
        "valid_until": g.valid_until,
        "block": c.block,
        "revoked": c.revoked,
    }
