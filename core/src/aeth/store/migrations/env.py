"""Alembic's environment for aeth's store.

aeth runs migrations itself (:func:`aeth.store.migrate.upgrade`), passing an open connection
whose transaction holds the migration lock; the ``alembic`` command line works too, given
``sqlalchemy.url`` (``alembic -x`` is not needed).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from aeth.store.schema import metadata

config = context.config


def run(connection) -> None:
    # transactional_ddl: on SQLite too, so a migration that fails half-way leaves nothing behind
    context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:  # the alembic command line
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
