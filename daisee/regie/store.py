"""The régie's store: a database by URL (a SQLite file by default, PostgreSQL at scale), brought to the
current schema by Alembic's migrations when it is opened."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError

from daisee.errors import DaiseeError

MIGRATIONS = "daisee.regie:migrations"
_NOT_A_STORE = "the store URL is not sqlite:///PATH or postgresql://USER@HOST/DB: give one"
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers (the pages) never wait for the indexer's writes, nor it for them
    "PRAGMA synchronous=NORMAL",  # durable at each checkpoint; a power cut loses at most the last spans
    "PRAGMA cache_size=-262144",  # 256 MiB of pages: a year of sums does not fit the default 2 MiB
    "PRAGMA busy_timeout=30000",
)


def open_store(url: str) -> Engine:
    """The store at `url` (`sqlite:///path`, `postgresql://…`), migrated; DaiseeError, naming the URL's kind
    and never its password, if it cannot be reached or is not a database."""
    scheme = url.partition("://")[0]
    if scheme not in ("sqlite", "postgresql", "postgresql+psycopg"):
        raise DaiseeError(_NOT_A_STORE)
    if scheme == "postgresql":
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")  # psycopg 3, not psycopg2
    try:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _tune_sqlite)
        migrate(engine)
    except ArgumentError:
        raise DaiseeError(_NOT_A_STORE) from None
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise DaiseeError(f"cannot open the store ({reason}): check --db") from None
    return engine


def migrate(engine: Engine) -> None:
    """Bring the store to the newest schema (nothing if it is there already)."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _tune_sqlite(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()
