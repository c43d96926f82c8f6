from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from daisee.regie import sessions as sessions_module
from daisee.regie.schema import sessions
from daisee.regie.sessions import NONCE_TTL, SESSION_TTL, TooManySignInsError, issue_nonce, sign_in, sign_out, signed_in
from daisee.regie.siwe import SignInError
from daisee.regie.store import open_store
from tests.regie.test_siwe import EXPECTED, MEMBER, MESSAGE, NOW, sign


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'regie.sqlite'}")
    yield engine
    engine.dispose()


def _message(store: Engine, **changed: object) -> str:
    with store.begin() as db:
        nonce = issue_nonce(db, NOW)
    return replace(MESSAGE, nonce=nonce, **changed).text()  # type: ignore[arg-type]


def test_a_signed_message_opens_a_session_whose_token_the_store_does_not_keep(store: Engine) -> None:
    text = _message(store)
    with store.begin() as db:
        address, token, ends = sign_in(db, text, sign(text), EXPECTED, NOW)
    assert address == MEMBER.address
    assert ends == NOW + SESSION_TTL
    with store.begin() as db:
        assert signed_in(db, token, NOW + timedelta(hours=7)) == MEMBER.address
        assert signed_in(db, token, NOW + SESSION_TTL) is None  # the message expires later: the session does not
        assert signed_in(db, token + "x", NOW) is None
        assert token.encode() not in b"".join(row[0] for row in db.execute(select(sessions.c.token_hash)))
        sign_out(db, token)
        assert signed_in(db, token, NOW) is None


def test_a_message_signs_in_once_and_only_with_a_nonce_issued_here(store: Engine) -> None:
    text = _message(store)
    with store.begin() as db:
        sign_in(db, text, sign(text), EXPECTED, NOW)
    for replayed in (text, replace(MESSAGE, nonce="f00dfeedcafe1234").text()):
        with (
            pytest.raises(SignInError, match="nonce was not issued here, has expired or was used already"),
            store.begin() as db,
        ):
            sign_in(db, replayed, sign(replayed), EXPECTED, NOW)


def test_a_nonce_expires_and_a_session_ends_with_its_message(store: Engine) -> None:
    late = _message(store, issued_at=NOW + NONCE_TTL - timedelta(seconds=30))
    with pytest.raises(SignInError, match="has expired or was used already"), store.begin() as db:
        sign_in(db, late, sign(late), EXPECTED, NOW + NONCE_TTL)
    short = _message(store, expiration_time=NOW + timedelta(minutes=30))
    with store.begin() as db:
        _, token, ends = sign_in(db, short, sign(short), EXPECTED, NOW)
        assert ends == NOW + timedelta(minutes=30)
        assert signed_in(db, token, NOW + timedelta(minutes=29)) == MEMBER.address
        assert signed_in(db, token, NOW + timedelta(minutes=30)) is None


def test_a_flood_of_sign_ins_stops_at_the_cap_and_expired_ones_make_room(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_module, "MAX_PENDING", 3)
    with store.begin() as db:
        for _ in range(3):
            issue_nonce(db, NOW)
    with (
        pytest.raises(TooManySignInsError, match="3 sign-ins are in progress: try again in a few minutes"),
        store.begin() as db,
    ):
        issue_nonce(db, NOW)
    with store.begin() as db:
        assert issue_nonce(db, NOW + NONCE_TTL)  # the three have expired
