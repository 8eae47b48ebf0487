"""indexes for the reports and the call search (app/reports; figures in bench/reports.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    # event reports: one event type of the calls in a range
    ("ix_call_events_type_call_id", "call_events", ["type", "call_id"]),
    # call search: a number, a caller, a language over a date range
    ("ix_calls_hotline_number_started_at", "calls", ["hotline_number", "started_at"]),
    ("ix_calls_caller_number_started_at", "calls", ["caller_number", "started_at"]),
    ("ix_calls_locale_started_at", "calls", ["locale", "started_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
