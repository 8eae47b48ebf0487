"""routing: calendars, agents, groups and members, hotline numbers and their rules, meta

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_T = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "routing_calendars",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("definition", JSON_T, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_routing_calendars"),
    )
    op.create_table(
        "routing_agents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("languages", JSON_T, nullable=False),
        sa.Column("skills", JSON_T, nullable=False),
        sa.Column("max_calls", sa.Integer(), nullable=False),
        sa.Column("devices", JSON_T, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_routing_agents"),
    )
    op.create_table(
        "routing_groups",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("skills", JSON_T, nullable=False),
        sa.Column("ring_timeout_s", sa.Float(), nullable=False),
        sa.Column("max_wait_s", sa.Float(), nullable=False),
        sa.Column("wrap_up_s", sa.Float(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("calendar", sa.String(64), nullable=True),
        sa.Column("overflow", JSON_T, nullable=True),
        sa.Column("options", JSON_T, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar"], ["routing_calendars.name"],
            name="fk_routing_groups_calendar_routing_calendars", ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_routing_groups"),
    )
    op.create_table(
        "routing_group_members",
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("member_order", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["routing_agents.id"],
            name="fk_routing_group_members_agent_id_routing_agents", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["routing_groups.id"],
            name="fk_routing_group_members_group_id_routing_groups", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "agent_id", name="pk_routing_group_members"),
    )
    op.create_index(
        "ix_routing_group_members_agent_id", "routing_group_members", ["agent_id"]
    )
    op.create_table(
        "routing_hotlines",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("flow_id", sa.String(64), nullable=True),
        sa.Column("calendar", sa.String(64), nullable=True),
        sa.Column("sticky_window_h", sa.Float(), nullable=False),
        sa.Column("default_target", JSON_T, nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar"], ["routing_calendars.name"],
            name="fk_routing_hotlines_calendar_routing_calendars", ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("number", name="pk_routing_hotlines"),
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("hotline_number", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("conditions", JSON_T, nullable=False),
        sa.Column("target", JSON_T, nullable=False),
        sa.Column("overflow", JSON_T, nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hotline_number"], ["routing_hotlines.number"],
            name="fk_routing_rules_hotline_number_routing_hotlines", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_routing_rules"),
        sa.UniqueConstraint(
            "hotline_number", "position", name="uq_routing_rules_hotline_number_position"
        ),
        sa.UniqueConstraint(
            "hotline_number", "name", name="uq_routing_rules_hotline_number_name"
        ),
    )
    op.create_table(
        "routing_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", JSON_T, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_routing_meta"),
    )


def downgrade() -> None:
    op.drop_table("routing_meta")
    op.drop_table("routing_rules")
    op.drop_table("routing_hotlines")
    op.drop_index("ix_routing_group_members_agent_id", table_name="routing_group_members")
    op.drop_table("routing_group_members")
    op.drop_table("routing_groups")
    op.drop_table("routing_agents")
    op.drop_table("routing_calendars")
