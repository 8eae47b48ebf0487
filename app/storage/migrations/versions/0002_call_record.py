"""the event log is the call record: transcript turns become a view; CDR end reason, media
facts and the call's last locale; node heartbeats (write probe for /readyz, node liveness)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON_T = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("end_reason", sa.String(32), nullable=True))
        batch.add_column(sa.Column("media", JSON_T, nullable=True))
    op.drop_index("ix_transcript_turns_call_id_start_s", table_name="transcript_turns")
    op.drop_table("transcript_turns")
    op.create_table(
        "node_heartbeats",
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_node_heartbeats"),
    )


def downgrade() -> None:
    op.drop_table("node_heartbeats")
    op.create_table(
        "transcript_turns",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("speaker", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("intent", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "speaker IN ('caller', 'bot', 'agent')", name="ck_transcript_turns_speaker"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name="fk_transcript_turns_call_id_calls",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_transcript_turns"),
    )
    op.create_index(
        "ix_transcript_turns_call_id_start_s", "transcript_turns", ["call_id", "start_s"]
    )
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("media")
        batch.drop_column("end_reason")
