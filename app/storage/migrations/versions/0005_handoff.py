"""the human side of a call in its CDR: routing rule and target, queue and wait, ring
attempts, who answered, talk and hold time, transfers, wrap-up, abandoned, callbacks; per
hotline routing options (CRM webhook, dispositions, hand-back nodes)

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON_T = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

COLUMNS = (
    ("routing_rule", lambda: sa.String(64)),
    ("routing_target", lambda: sa.String(128)),
    ("queue_group", lambda: sa.String(64)),
    ("queued_at", lambda: TS),
    ("queue_left_at", lambda: TS),
    ("wait_s", sa.Float),
    ("ring_attempts", lambda: JSON_T),
    ("answered_by", lambda: sa.String(64)),
    ("agent_answered_at", lambda: TS),
    ("talk_s", sa.Float),
    ("hold_s", sa.Float),
    ("transfers", lambda: JSON_T),
    ("disposition", lambda: sa.String(64)),
    ("wrap_notes", sa.Text),
    ("bot_should_handle", sa.Boolean),
    ("bot_intent", lambda: sa.String(64)),
    ("callback_status", lambda: sa.String(16)),
    ("callback_done_at", lambda: TS),
)


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind(), nullable=True))
        for name in ("abandoned", "callback_requested"):
            batch.add_column(sa.Column(name, sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
        batch.create_index("ix_calls_answered_by", ["answered_by"])
        batch.create_index("ix_calls_disposition", ["disposition"])
    with op.batch_alter_table("routing_hotlines") as batch:
        batch.add_column(sa.Column("options", JSON_T, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routing_hotlines") as batch:
        batch.drop_column("options")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_disposition")
        batch.drop_index("ix_calls_answered_by")
        for name in ("callback_requested", "abandoned"):
            batch.drop_column(name)
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
