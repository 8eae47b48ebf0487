"""What a report is limited to: a date range, a hotline number, a locale; and the time zone
its hours and days are counted in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement

from app.storage.models import CallRow

MAX_RANGE_DAYS = 3660
DEFAULT_TZ = "Asia/Shanghai"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ``ValueError`` naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as "
                         f"{DEFAULT_TZ})") from None


@dataclass(frozen=True)
class ReportFilter:
    """Calls that started in ``[start, end)`` (aware datetimes), on ``number`` and in
    ``locale`` when given. ``tz``: the zone hours and days are counted in (its UTC offset
    at ``start``, applied to the whole range: a DST change inside the range shifts the
    hours after it by one)."""

    start: datetime
    end: datetime
    number: str | None = None
    locale: str | None = None
    tz: str = DEFAULT_TZ

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start "
                             f"({self.start.isoformat()})")
        if self.end - self.start > timedelta(days=MAX_RANGE_DAYS):
            raise ValueError(f"a report covers at most {MAX_RANGE_DAYS} days")
        zone(self.tz)

    @classmethod
    def last_days(cls, days: int, now: datetime | None = None, **kw: str | None) -> ReportFilter:
        """The ``days`` days up to ``now`` (default: today and the days before, whole days in
        ``tz``)."""
        tz = zone(str(kw.get("tz") or DEFAULT_TZ))
        local = (now or datetime.now(UTC)).astimezone(tz)
        end = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return cls(start=end - timedelta(days=days), end=end, number=kw.get("number"),
                   locale=kw.get("locale"), tz=str(kw.get("tz") or DEFAULT_TZ))

    @property
    def offset_s(self) -> int:
        """The zone's UTC offset at ``start``, in seconds."""
        offset = self.start.astimezone(zone(self.tz)).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def conditions(self) -> list[ColumnElement[bool]]:
        """WHERE conditions on ``calls``."""
        found: list[ColumnElement[bool]] = [
            CallRow.started_at >= self.start.astimezone(UTC),
            CallRow.started_at < self.end.astimezone(UTC),
        ]
        if self.number:
            found.append(CallRow.hotline_number == self.number)
        if self.locale:
            found.append(CallRow.locale == self.locale)
        return found

    def describe(self) -> dict[str, str | None]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "number": self.number, "locale": self.locale, "tz": self.tz}
