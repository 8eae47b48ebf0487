"""hourly report roll-ups (app/storage/rollup.py): one row per UTC hour x number x locale x
metric x dimensions, kept up to date as calls end; the state row says they are complete

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_hourly",
        sa.Column("hour", TS, nullable=False),
        sa.Column("hotline_number", sa.String(32), nullable=False),
        sa.Column("locale", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("dim1", sa.String(128), nullable=False),
        sa.Column("dim2", sa.Text(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("m", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "hotline_number", "locale", "metric", "dim1", "dim2",
                                name="pk_report_hourly"),
    )
    state = op.create_table(
        "report_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("built_at", TS, nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_rollup_state"),
    )
    # an empty database is complete as it is; one with calls needs `hotline reports rollup`
    # (until then the reports read the raw records)
    has_calls = op.get_bind().execute(sa.text("SELECT 1 FROM calls LIMIT 1")).first()
    if has_calls is None:
        now = datetime.now(UTC)
        if op.get_bind().dialect.name == "sqlite":
            now = now.replace(tzinfo=None)
        op.bulk_insert(state, [{"id": 1, "built_at": now, "calls": 0}])


def downgrade() -> None:
    op.drop_table("report_rollup_state")
    op.drop_table("report_hourly")
