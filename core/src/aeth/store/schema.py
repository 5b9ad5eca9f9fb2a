"""The tables, as SQLAlchemy Core objects the queries use.

The database itself is created and changed only by the Alembic migrations in
:mod:`aeth.store.migrations`; a test checks that migrating to head gives exactly these tables.
Change both together: edit this file, then add a migration (``alembic revision`` with
``script_location = aeth.store:migrations``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

#: JSON everywhere; JSONB on PostgreSQL, so later work can query inside it
Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)

interactions = Table(
    "interactions", metadata,
    Column("id", String(32), primary_key=True),
    Column("created", Timestamp, nullable=False),
    Column("source", String(16), nullable=False),
    Column("messages", Json, nullable=False),
    Column("answer", Text, nullable=False),
    Column("specialist", String(200), nullable=False),
    Column("adapter", String(200)),
    Column("model", String(500)),
    Column("sampling", Json),
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("ttft_s", Float),
    Column("machine_seconds", Float, nullable=False),
    Column("finish_reason", String(32), nullable=False),
    Column("key_id", String(32)),
    Column("route", Json),
    Column("group_id", String(32)),
    Column("choice_index", Integer, nullable=False),
    Column("metadata", Json),
    Index("ix_interactions_created", "created"),
    Index("ix_interactions_specialist_created", "specialist", "created"),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("specialists", Json),
    Column("created", Timestamp, nullable=False),
    Column("revoked", Timestamp),
    Column("last_used", Timestamp),
    Index("ix_api_keys_hash", "hash", unique=True),
    # a name is unique among keys in use; a revoked key's name may be given to a new one
    Index("ix_api_keys_active_name", "name", unique=True, sqlite_where=text("revoked IS NULL"),
          postgresql_where=text("revoked IS NULL")),
)

feedback = Table(
    "feedback", metadata,
    Column("id", String(128), primary_key=True),
    Column("interaction_id", String(32), ForeignKey("interactions.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", Json),
    Column("comment", Text),
    Column("source", String(16), nullable=False),
    Column("created", Timestamp, nullable=False),
    Index("ix_feedback_interaction_id", "interaction_id"),
)
