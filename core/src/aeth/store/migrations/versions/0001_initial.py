"""The first schema: interactions, API keys, feedback.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# written out here, not imported from aeth.store.schema: a migration stays what it was when the
# schema moves on
Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("messages", Json, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("specialist", sa.String(200), nullable=False),
        sa.Column("adapter", sa.String(200)),
        sa.Column("model", sa.String(500)),
        sa.Column("sampling", Json),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("latency_s", sa.Float, nullable=False),
        sa.Column("ttft_s", sa.Float),
        sa.Column("machine_seconds", sa.Float, nullable=False),
        sa.Column("finish_reason", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("route", Json),
        sa.Column("group_id", sa.String(32)),
        sa.Column("choice_index", sa.Integer, nullable=False),
        sa.Column("metadata", Json),
    )
    op.create_index("ix_interactions_created", "interactions", ["created"])
    op.create_index("ix_interactions_specialist_created", "interactions", ["specialist", "created"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("specialists", Json),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("revoked", Timestamp),
        sa.Column("last_used", Timestamp),
    )
    op.create_index("ix_api_keys_hash", "api_keys", ["hash"], unique=True)
    op.create_index("ix_api_keys_active_name", "api_keys", ["name"], unique=True,
                    sqlite_where=sa.text("revoked IS NULL"), postgresql_where=sa.text("revoked IS NULL"))

    op.create_table(
        "feedback",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("interaction_id", sa.String(32), sa.ForeignKey("interactions.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", Json),
        sa.Column("comment", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created", Timestamp, nullable=False),
    )
    op.create_index("ix_feedback_interaction_id", "feedback", ["interaction_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("api_keys")
    op.drop_table("interactions")
