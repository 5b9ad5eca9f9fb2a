"""The database: every answer aeth gives (interactions), feedback on them, and API keys.

SQLite at ``$AETH_HOME/aeth.db`` by default (WAL, ``synchronous=FULL``), PostgreSQL when
``store.url`` names one; the schema is created and upgraded by Alembic migrations packaged here,
run whenever a store is opened. An application opens its store with :attr:`aeth.app.Aeth.store`::

    from aeth.store import Store, Interaction

    store = Store.open(None, home)              # or "postgresql+psycopg://aeth@db/aeth"
    iid = store.record(Interaction(messages=[{"role": "user", "content": "hi"}], answer="hello",
                                   specialist="general", source="run"))
    store.record_feedback(iid, "thumbs", True)
    key, secret = store.create_key("my-app", rpm=60)
    assert store.verify_key(secret).name == "my-app"

Modules: :mod:`~aeth.store.store` (the :class:`Store`), :mod:`~aeth.store.rows` (the row
dataclasses), :mod:`~aeth.store.schema` (tables), :mod:`~aeth.store.migrate` (Alembic),
:mod:`~aeth.store.engine` (connections), :mod:`~aeth.store.keys`, :mod:`~aeth.store.feedback`,
:mod:`~aeth.store.stats`, :mod:`~aeth.store.cost`, :mod:`~aeth.store.answers` (an answer as a row),
:mod:`~aeth.store.url`. Importing this package does not import SQLAlchemy; opening a store does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aeth.store.errors import KeyNameTaken, StoreError, StoreUnavailable, UnknownInteraction, UnknownKey
from aeth.store.rows import FEEDBACK_KINDS, SOURCES, ApiKey, Feedback, Interaction

if TYPE_CHECKING:
    from aeth.store.store import Store

__all__ = ["FEEDBACK_KINDS", "SOURCES", "ApiKey", "Feedback", "Interaction", "KeyNameTaken", "Store", "StoreError",
           "StoreUnavailable", "UnknownInteraction", "UnknownKey"]


def __getattr__(name: str) -> Any:
    if name == "Store":  # imported on first use: it brings SQLAlchemy
        from aeth.store.store import Store

        return Store
    raise AttributeError(f"module 'aeth.store' has no attribute {name!r}")
