"""ORM models: the CDR (``calls``), the append-only event log, recordings, node heartbeats;
the routing configuration (``routing_*``: agents, groups, members, hotlines, rules).

The transcript is a view of the event log (``app.record.transcript_turns``), not a table.

Every timestamp is stored in UTC and read back timezone-aware (``UtcDateTime``), on SQLite
as on PostgreSQL. The migration in ``migrations/versions`` creates exactly this schema
(``tests/storage`` compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp must be timezone-aware, got naive {value.isoformat()}")
        utc = value.astimezone(UTC)
        # SQLite stores text: keep it naive-UTC so it sorts and compares lexically.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON on SQLite, JSONB on PostgreSQL (indexable, compact).
JsonType = JSON().with_variant(JSONB(), "postgresql")
# BIGINT autoincrement on PostgreSQL; INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CallRow(Base):
    """One call: its CDR fields are filled at the end from the event log."""

    __tablename__ = "calls"
    __table_args__ = (  # the reports' and the call search's (migration 0006)
        Index(None, "hotline_number", "started_at"),
        Index(None, "caller_number", "started_at"),
        Index(None, "locale", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hotline_number: Mapped[str] = mapped_column(String(32), index=True)
    caller_number: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    duration_s: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(32), index=True)
    final_intent: Mapped[str | None] = mapped_column(String(64), index=True)
    handoff_target: Mapped[str | None] = mapped_column(String(64))
    flow_id: Mapped[str | None] = mapped_column(String(64))
    flow_state: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    caller_region: Mapped[str | None] = mapped_column(String(64))
    node_id: Mapped[str | None] = mapped_column(String(64))
    end_reason: Mapped[str | None] = mapped_column(String(32))  # the media leg's, at the end
    media: Mapped[dict[str, Any] | None] = mapped_column(JsonType)  # transport facts
    # -- the human side (app/handoff; migration 0005), from the event log at the end
    routing_rule: Mapped[str | None] = mapped_column(String(64))
    routing_target: Mapped[str | None] = mapped_column(String(128))
    queue_group: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    queue_left_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    wait_s: Mapped[float | None] = mapped_column(Float)
    ring_attempts: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)
    answered_by: Mapped[str | None] = mapped_column(String(64), index=True)
    agent_answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    talk_s: Mapped[float | None] = mapped_column(Float)
    hold_s: Mapped[float | None] = mapped_column(Float)
    transfers: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)
    disposition: Mapped[str | None] = mapped_column(String(64), index=True)
    wrap_notes: Mapped[str | None] = mapped_column(Text)
    bot_should_handle: Mapped[bool | None] = mapped_column(Boolean)
    bot_intent: Mapped[str | None] = mapped_column(String(64))
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    callback_requested: Mapped[bool] = mapped_column(Boolean, default=False,
                                                     server_default=false())
    callback_status: Mapped[str | None] = mapped_column(String(16))
    callback_done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Last sequence number handed out for this call's events (row-locked increment).
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CallEventRow(Base):
    """One entry of a call's append-only event log; ``seq`` is 1, 2, 3... per call."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("call_id", "seq"), Index(None, "type", "call_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    type: Mapped[str] = mapped_column(String(32), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)


class NodeHeartbeatRow(Base):
    """Each node's last successful write (``/readyz`` write probe; node liveness)."""

    __tablename__ = "node_heartbeats"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class RecordingRow(Base):
    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(1024))
    duration_s: Mapped[float] = mapped_column(Float)
    caller_notified: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


# -- routing (app/routing/store.py reads and writes these; the YAML is the interchange) ------


class RoutingCalendarRow(Base):
    """A business calendar (the flows' ``BusinessCalendar`` as JSON) by name."""

    __tablename__ = "routing_calendars"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType)


class RoutingAgentRow(Base):
    __tablename__ = "routing_agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    languages: Mapped[list[str]] = mapped_column(JsonType)
    skills: Mapped[dict[str, int]] = mapped_column(JsonType)
    max_calls: Mapped[int] = mapped_column(Integer)
    devices: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    position: Mapped[int] = mapped_column(Integer)


class RoutingGroupRow(Base):
    """A group (queue); settings without a column of their own are in ``options``."""

    __tablename__ = "routing_groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    strategy: Mapped[str] = mapped_column(String(32))
    skills: Mapped[list[str]] = mapped_column(JsonType)
    ring_timeout_s: Mapped[float] = mapped_column(Float)
    max_wait_s: Mapped[float] = mapped_column(Float)
    wrap_up_s: Mapped[float] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str | None] = mapped_column(
        ForeignKey("routing_calendars.name", ondelete="RESTRICT")
    )
    overflow: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    options: Mapped[dict[str, Any]] = mapped_column(JsonType)
    position: Mapped[int] = mapped_column(Integer)


class RoutingMemberRow(Base):
    __tablename__ = "routing_group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("routing_groups.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[str] = mapped_column(
        ForeignKey("routing_agents.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    member_order: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer)


class RoutingHotlineRow(Base):
    __tablename__ = "routing_hotlines"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    flow_id: Mapped[str | None] = mapped_column(String(64))
    calendar: Mapped[str | None] = mapped_column(
        ForeignKey("routing_calendars.name", ondelete="RESTRICT")
    )
    sticky_window_h: Mapped[float] = mapped_column(Float)
    default_target: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    position: Mapped[int] = mapped_column(Integer)
    # crm webhook, wrap-up dispositions, hand-back nodes (migration 0005)
    options: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class RoutingRuleRow(Base):
    """One rule of a hotline; ``position`` is its place (first match wins)."""

    __tablename__ = "routing_rules"
    __table_args__ = (
        UniqueConstraint("hotline_number", "position"),
        UniqueConstraint("hotline_number", "name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    hotline_number: Mapped[str] = mapped_column(
        ForeignKey("routing_hotlines.number", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    conditions: Mapped[dict[str, Any]] = mapped_column(JsonType)
    target: Mapped[dict[str, Any]] = mapped_column(JsonType)
    overflow: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    priority: Mapped[int] = mapped_column(Integer)


class RoutingMetaRow(Base):
    """Settings of the whole routing (offer policy, version) and where it came from."""

    __tablename__ = "routing_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonType)


# -- report roll-ups (app/storage/rollup.py; migration 0007) ---------------------------------


class ReportHourlyRow(Base):
    """One aggregate of the calls that started in one UTC hour on one number in one locale:
    ``metric`` (what is counted) split by ``dim1``/``dim2``; ``n`` the count, ``m`` a second
    count and ``total`` a sum, as ``rollup.METRICS`` says per metric."""

    __tablename__ = "report_hourly"

    hour: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    hotline_number: Mapped[str] = mapped_column(String(32), primary_key=True)
    locale: Mapped[str] = mapped_column(String(16), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    dim1: Mapped[str] = mapped_column(String(128), primary_key=True)
    dim2: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    m: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[float] = mapped_column(Float)


class ReportRollupStateRow(Base):
    """When the roll-ups were last rebuilt from the raw records (no row: never, so the
    reports read the raw records)."""

    __tablename__ = "report_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    built_at: Mapped[datetime] = mapped_column(UtcDateTime)
    calls: Mapped[int] = mapped_column(BigInteger)
