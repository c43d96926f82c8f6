from __future__ import annotations

import socket

import psycopg
import pytest

from daisee.errors import DaiseeError
from daisee.regie import postgres
from daisee.regie.postgres import local_postgres


def test_a_throwaway_cluster_answers_on_loopback_and_is_gone_afterwards() -> None:
    with local_postgres() as cluster:
        with psycopg.connect(host="127.0.0.1", port=cluster.port, user="regie", dbname="postgres") as db:
            assert db.execute("SELECT 1 + 1, current_setting('listen_addresses')").fetchone() == (2, "127.0.0.1")
        assert cluster.url == f"postgresql+psycopg://regie@127.0.0.1:{cluster.port}/postgres"
        folder = cluster.folder
    assert not folder.exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", cluster.port)) != 0


def test_no_postgresql_is_one_line_that_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "SEARCHED", [])
    monkeypatch.setenv("PATH", "/nonexistent")
    with (
        pytest.raises(DaiseeError, match=r"^PostgreSQL not found: install PostgreSQL \(Debian: apt-get install"),
        local_postgres(),
    ):
        pass
