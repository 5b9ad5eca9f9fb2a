"""Bring a database's schema to the newest revision, safely when several processes open it at once.

The upgrade runs in one transaction that first takes a lock: ``BEGIN IMMEDIATE`` on SQLite (the
database's write lock), ``pg_advisory_xact_lock`` on PostgreSQL. A second process opening the
same fresh database waits, then finds it migrated and does nothing. A database already at
:data:`~aeth.store.migrations.HEAD` is recognised with one query, without importing Alembic.
"""

from __future__ import annotations

from typing import Any

from aeth.store.engine import WRITE
from aeth.store.migrations import HEAD

#: Alembic's name for the migrations packaged with aeth
SCRIPT_LOCATION = "aeth.store:migrations"
#: the PostgreSQL advisory lock key held while migrating (any fixed 64-bit number; this spells "aeth")
LOCK_KEY = 0x61657468


def alembic_config(script_location: str = SCRIPT_LOCATION, connection: Any = None) -> Any:
    """An Alembic ``Config`` for aeth's migrations (no ini file), optionally bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current(engine: Any) -> str | None:
    """The database's revision (``None``: not migrated yet)."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Any, revision: str = "head", script_location: str = SCRIPT_LOCATION) -> None:
    """Migrate the database to ``revision`` (default: the newest), holding the migration lock."""
    if revision == "head" and script_location == SCRIPT_LOCATION and current(engine) == HEAD:
        return
    from alembic import command
    from sqlalchemy import text

    with engine.execution_options(**{WRITE: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        command.upgrade(alembic_config(script_location, conn), revision)


def downgrade(engine: Any, revision: str, script_location: str = SCRIPT_LOCATION) -> None:
    """Migrate the database back to ``revision`` (``base``: nothing left), holding the migration lock."""
    from alembic import command
    from sqlalchemy import text

    with engine.execution_options(**{WRITE: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        command.downgrade(alembic_config(script_location, conn), revision)


def head(script_location: str = SCRIPT_LOCATION) -> str:
    """The newest revision Alembic finds in ``script_location``."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(script_location)).get_current_head()
