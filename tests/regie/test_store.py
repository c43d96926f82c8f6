from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, select

from daisee.errors import DaiseeError
from daisee.regie.postgres import local_postgres
from daisee.regie.schema import metadata
from daisee.regie.store import MIGRATIONS, open_store

HEAD = "0004"  # the newest migration


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with local_postgres() as cluster:
        yield cluster.url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'regie.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = open_store(url)
    yield engine
    if request.param == "postgresql":
        metadata.drop_all(engine)
        with engine.begin() as db:
            db.exec_driver_sql("DROP TABLE alembic_version")
    engine.dispose()


def test_the_migrations_build_exactly_the_schema_on_each_database(store: Engine) -> None:
    with store.connect() as db:
        assert compare_metadata(MigrationContext.configure(db), metadata) == []
        assert db.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == HEAD
    assert set(inspect(store).get_table_names()) == {*metadata.tables, "alembic_version"}


def test_a_store_of_the_first_schema_is_brought_to_the_newest_when_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    old = create_engine(url)
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with old.begin() as db:
        config.attributes["connection"] = db
        command.upgrade(config, "0001")
    assert "links" not in inspect(old).get_table_names()
    old.dispose()
    engine = open_store(url)
    assert "links" in inspect(engine).get_table_names()
    with engine.connect() as db:
        assert db.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == HEAD
    engine.dispose()


def test_a_meters_sums_are_kept_in_the_order_its_curve_reads_them(store: Engine) -> None:
    with store.connect() as db:
        if store.dialect.name == "sqlite":
            kept = db.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'meter_sums'").scalar_one()
            assert kept.rstrip().endswith("WITHOUT ROWID")
        else:
            key = db.exec_driver_sql("SELECT pg_get_indexdef('meter_sums_pkey'::regclass)").scalar_one()
            assert key.endswith("(meter_idx, level, start) INCLUDE (cons, autocons, prod, autoprod)")
        plan = " ".join(
            str(row[-1])
            for row in db.exec_driver_sql(
                ("EXPLAIN QUERY PLAN " if store.dialect.name == "sqlite" else "EXPLAIN ")
                + "SELECT start, cons FROM meter_sums WHERE meter_idx = 3 AND level = 1 AND start >= 0"
            )
        )
        assert "meter_sums_pkey" in plan or "PRIMARY KEY" in plan


def test_the_sums_of_a_store_of_the_consent_schema_survive_their_new_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'consent-schema.sqlite'}"
    old = create_engine(url)
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    buckets = [(m, level, start) for m in range(3) for level in range(4) for start in (0, 900)]
    rows = [(m, level, start, 10 * m + level, m, level, start % 7) for m, level, start in buckets]
    with old.begin() as db:
        config.attributes["connection"] = db
        command.upgrade(config, "0003")
        db.exec_driver_sql("INSERT INTO meter_sums VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    old.dispose()
    engine = open_store(url)
    with engine.connect() as db:
        assert db.exec_driver_sql("SELECT * FROM meter_sums ORDER BY meter_idx, level, start").all() == rows
        assert db.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == HEAD
    engine.dispose()


def test_opening_a_migrated_store_again_changes_nothing(store: Engine) -> None:
    again = open_store(store.url.render_as_string(hide_password=False))
    with again.connect() as db:
        assert db.execute(select(metadata.tables["meters"])).all() == []
        assert db.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar_one() == 1
    again.dispose()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql:///nowhere", "the store URL is not sqlite:///PATH or postgresql://USER@HOST/DB"),
        ("nonsense", "the store URL is not sqlite:///PATH or postgresql://USER@HOST/DB"),
        ("sqlite:////nonexistent/folder/regie.sqlite", "cannot open the store (unable to open database file)"),
        ("postgresql://regie:s3cret@127.0.0.1:1/postgres", "cannot open the store (connection failed"),
    ],
)
def test_a_store_that_cannot_be_opened_is_one_line_without_its_password(url: str, said: str) -> None:
    with pytest.raises(DaiseeError) as refused:
        open_store(url)
    assert str(refused.value).startswith(said)
    assert "s3cret" not in str(refused.value)
