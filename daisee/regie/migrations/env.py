"""Alembic's environment for the régie's store: run from `daisee.regie.store.migrate` on its connection."""

from alembic import context

from daisee.regie.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
