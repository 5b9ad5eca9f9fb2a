"""The SQLAlchemy engine for a store URL, set up so an acknowledged row survives a crash.

SQLite: every connection runs in WAL mode with ``synchronous=FULL`` (a commit returns only once
the WAL is on disk), waits up to :data:`BUSY_TIMEOUT_S` for another writer instead of failing,
and enforces foreign keys. Python's sqlite3 module opens transactions lazily and on its own
terms, so it is switched off (``isolation_level=None``) and SQLAlchemy's ``begin`` event issues
``BEGIN`` itself: ``BEGIN IMMEDIATE`` on a connection marked ``aeth_write`` (the writer takes
the database's write lock first and cannot deadlock upgrading a read lock), plain ``BEGIN``
otherwise (readers never wait in WAL mode). PostgreSQL: psycopg 3, connections checked before use.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from aeth.store.errors import StoreError, StoreUnavailable
from aeth.store.url import redact, sqlite_path

#: seconds a SQLite writer waits for another one before giving up
BUSY_TIMEOUT_S = 30
#: seconds to wait for a PostgreSQL server to answer a connection
CONNECT_TIMEOUT_S = 10
#: execution option of connections that write (``engine.execution_options(aeth_write=True)``)
WRITE = "aeth_write"


def create(url: str) -> Any:
    """A SQLAlchemy engine for the resolved ``url`` (see :func:`aeth.store.url.resolve`)."""
    from sqlalchemy import create_engine, event

    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory of the SQLite database {path}: {e.strerror}; "
                             "set store.url or AETH_HOME to a writable place") from None
        engine = create_engine(url, json_serializer=_json, connect_args={"timeout": BUSY_TIMEOUT_S,
                                                                           "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def setup(dbapi_connection, record):  # noqa: ARG001
            dbapi_connection.isolation_level = None  # aeth issues BEGIN itself (see the module's docstring)
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")  # first: the next pragma may wait
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")

        return engine
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(f"store.url {redact(url)!r} is a PostgreSQL database, whose driver is not installed: "
                         "pip install 'aeth[postgres]' (psycopg 3)") from None
    return create_engine(url, json_serializer=_json, pool_pre_ping=True,
                         connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


def _json(value: Any) -> str:
    # what is not JSON (a Path, a datetime in a plugin's metadata) is stored as its text, never refused
    return json.dumps(value, ensure_ascii=False, default=str)


@contextlib.contextmanager
def translated(url: str) -> Iterator[None]:
    """Turn the driver's "cannot connect" and "locked" errors into :class:`StoreUnavailable` that say what to do."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as e:  # SQLite: locked, unopenable, read-only; PostgreSQL: the server or the connection
        detail = (str(e.orig) if e.orig is not None else str(e)).strip().splitlines()[0]
        path = sqlite_path(url)
        if path is not None:
            raise StoreUnavailable(f"the SQLite database {path} cannot be used ({detail}): another process may hold it "
                                   f"for longer than {BUSY_TIMEOUT_S} s, or the file or its directory is not writable") from None
        raise StoreUnavailable(f"cannot reach PostgreSQL at {redact(url)} ({detail}): start the server, or fix store.url "
                               "(aeth -o store.url=... or AETH_STORE_URL)") from None
