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

HEAD = "0003"  # the newest migration


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
