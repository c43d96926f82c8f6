"""Sign-in sessions: a nonce handed out for each sign-in and taken by it (a message signs in once), then a
session token for the browser's cookie, of which the store keeps only the SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select

from daisee.regie.schema import links, nonces, sessions
from daisee.regie.siwe import Expected, SignInError, verify

NONCE_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=8)  # at most; a message's own expiration time ends it sooner
LINK_TTL = timedelta(minutes=2)  # a session link is for the browser the member opens it in, now
MAX_PENDING = 10_000  # sign-ins begun and not finished: a flood of requests for a message stops there


class TooManySignInsError(SignInError):
    """MAX_PENDING sign-ins are in progress."""


def issue_nonce(db: Connection, now: datetime) -> str:
    """A fresh nonce for one sign-in, valid NONCE_TTL; expired nonces and sessions are forgotten.
    TooManySignInsError if MAX_PENDING are live."""
    db.execute(delete(nonces).where(nonces.c.expires_at <= _epoch(now)))
    db.execute(delete(sessions).where(sessions.c.expires_at <= _epoch(now)))
    if (db.execute(select(func.count()).select_from(nonces)).scalar() or 0) >= MAX_PENDING:
        raise TooManySignInsError(f"{MAX_PENDING:,} sign-ins are in progress: try again in a few minutes")
    nonce = secrets.token_hex(16)
    db.execute(nonces.insert().values(nonce=nonce, expires_at=_epoch(now + NONCE_TTL)))
    return nonce


def sign_in(db: Connection, text: str, signature: str, expected: Expected, now: datetime) -> tuple[str, str, datetime]:
    """The signed-in address, a new session token and when the session ends, once `text` is a valid
    EIP-4361 message signed by its address with a nonce issued here and not used yet (SignInError otherwise)."""
    message = verify(text, signature, expected, now)
    taken = db.execute(delete(nonces).where(nonces.c.nonce == message.nonce, nonces.c.expires_at > _epoch(now)))
    if taken.rowcount != 1:
        raise SignInError("the message's nonce was not issued here, has expired or was used already: sign in again")
    ends = now + SESSION_TTL
    if message.expiration_time is not None:
        ends = min(ends, message.expiration_time)
    return message.address, *_open_session(db, message.address, ends)


def _open_session(db: Connection, address: str, ends: datetime) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    db.execute(sessions.insert().values(token_hash=_hash(token), address=address, expires_at=_epoch(ends)))
    return token, ends


def issue_link(db: Connection, address: str, now: datetime) -> str:
    """A one-time code, valid LINK_TTL, that opens a session for `address` (signed in already) in a browser."""
    db.execute(delete(links).where(links.c.expires_at <= _epoch(now)))
    code = secrets.token_urlsafe(32)
    db.execute(links.insert().values(code_hash=_hash(code), address=address, expires_at=_epoch(now + LINK_TTL)))
    return code


def follow_link(db: Connection, code: str, now: datetime) -> tuple[str, str, datetime]:
    """The address, a new session token and its end for a session link's `code`, taken once (SignInError if
    it is unknown, used or expired)."""
    taken = db.execute(
        delete(links)
        .where(links.c.code_hash == _hash(code), links.c.expires_at > _epoch(now))
        .returning(links.c.address)
    ).first()
    if taken is None:
        raise SignInError(
            "this sign-in link is unknown, was used already or has expired: run `daisee regie login` again"
        )
    return taken[0], *_open_session(db, taken[0], now + SESSION_TTL)


def signed_in(db: Connection, token: str, now: datetime) -> str | None:
    """The address whose live session `token` is, or None."""
    row = db.execute(
        select(sessions.c.address).where(sessions.c.token_hash == _hash(token), sessions.c.expires_at > _epoch(now))
    ).first()
    return None if row is None else str(row[0])


def sign_out(db: Connection, token: str) -> None:
    db.execute(delete(sessions).where(sessions.c.token_hash == _hash(token)))


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())
