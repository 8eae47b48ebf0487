"""The admin calendar: dated entries an administrator enters beside the library's PRC
holiday data (``chinese_calendar`` ships one year at a time and has nothing past its last).

One per deployment, in ``<data_dir>/calendar.yaml`` (every node reading the same data_dir
sees it). An entry is one of:

- ``holiday``: closed, with a name (国庆节);
- ``closed``: an ad-hoc closure (a move, a training day);
- ``makeup``: a make-up working day (调休): a Saturday or Sunday open with weekday hours;
- ``hours``: that day's business hours instead of the weekly ones.

Entries take precedence over ``chinese_calendar`` for their dates in every
``BusinessCalendar`` (flows and routing). A year with at least one ``holiday`` entry counts
as covered by holiday data (``coverage.coverage_warning``): enter all of that year's
holidays and make-up days, then the warning stops.

``AdminCalendarFile.get()`` re-reads the file only when its inode, mtime or size changed (one
``stat`` per call); ``use_admin_calendar(path)`` makes it the process's calendar.
"""

from __future__ import annotations

import os
import tempfile
import threading
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

EntryKind = Literal["holiday", "closed", "makeup", "hours"]
FILE_NAME = "calendar.yaml"
FIRST_YEAR, LAST_YEAR = 2000, 2099


def _check_range(text: str) -> None:
    from app.flows.calendar import parse_range  # calendar imports this module

    parse_range(text)


class AdminEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: date
    kind: EntryKind
    name: str = Field(default="", max_length=80)
    hours: list[str] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _kind_fits(self) -> AdminEntry:
        problem = entry_problem(self)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        return self


def entry_problem(entry: AdminEntry) -> tuple[str, str] | None:
    """(field, reason) when an entry does not fit its kind, else None."""
    if not FIRST_YEAR <= entry.date.year <= LAST_YEAR:
        return "date", f"a calendar date is in {FIRST_YEAR}..{LAST_YEAR}, got {entry.date}"
    if entry.kind == "holiday" and not entry.name.strip():
        return "name", "a holiday needs a name"
    if entry.kind == "makeup" and entry.date.weekday() < 5:
        return "date", (f"a make-up working day (调休) is a Saturday or Sunday; "
                        f"{entry.date.isoformat()} is a {entry.date.strftime('%A')}")
    if entry.kind == "hours":
        if not entry.hours:
            return "hours", "an hours entry needs hours (09:00-18:00)"
        for r in entry.hours:
            try:
                _check_range(r)
            except ValueError as exc:
                return "hours", str(exc)
    elif entry.hours:
        return "hours", f"only an hours entry has hours, not a {entry.kind} entry"
    return None


class AdminCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[AdminEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_per_day(self) -> AdminCalendar:
        seen: set[date] = set()
        for e in self.entries:
            if e.date in seen:
                raise ValueError(f"{e.date.isoformat()} has two entries")
            seen.add(e.date)
        self.entries.sort(key=lambda e: e.date)
        return self

    def on(self, day: date) -> AdminEntry | None:
        for e in self.entries:
            if e.date == day:
                return e
        return None

    def covered_years(self) -> set[int]:
        """Years with at least one holiday entry: the admin has entered that year."""
        return {e.date.year for e in self.entries if e.kind == "holiday"}


class AdminCalendarError(ValueError):
    """The file is unreadable or invalid: the reason names the file."""


def parse_calendar(text: str, source: str = FILE_NAME) -> AdminCalendar:
    try:
        data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, ValueError) as exc:  # PyYAML: ValueError for 2027-02-30
        raise AdminCalendarError(f"{source}: YAML error: {exc}") from None
    try:
        return AdminCalendar.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AdminCalendarError(f"{source}: {where}: {first['msg']}") from None


class AdminCalendarFile:
    """``<data_dir>/calendar.yaml``: read when it changed, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._calendar = AdminCalendar()
        self.problem: str | None = None  # the file is broken: the last good one is used

    def version(self) -> tuple[int, int, int] | None:
        """(inode, mtime, size): each save is a new file (a rename), so a new inode even
        within the file system's timestamp granularity."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def get(self) -> AdminCalendar:
        stamp = self.version()
        if stamp == self._stamp:
            return self._calendar
        with self._lock:
            if stamp is None:
                self._calendar, self.problem = AdminCalendar(), None
            else:
                try:
                    text = self.path.read_text(encoding="utf-8")
                    self._calendar, self.problem = parse_calendar(text, str(self.path)), None
                except (OSError, UnicodeDecodeError, AdminCalendarError) as exc:
                    self.problem = str(exc)
            self._stamp = stamp
            return self._calendar

    def save(self, calendar: AdminCalendar) -> None:
        """Write ``calendar`` (already valid) through a temporary file and a rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = calendar.model_dump(mode="json", exclude_defaults=True)
        text = ("# Hotline admin calendar (console /console/calendar); takes precedence over "
                "chinesecalendar\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".calendar-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


_active: AdminCalendarFile | None = None


def use_admin_calendar(path: Path | None) -> AdminCalendarFile | None:
    """Make ``path`` the process's admin calendar (None: no admin calendar)."""
    global _active
    _active = AdminCalendarFile(path) if path is not None else None
    return _active


def admin_calendar_file() -> AdminCalendarFile | None:
    return _active


def admin_calendar() -> AdminCalendar | None:
    return _active.get() if _active is not None else None


def admin_version() -> tuple[int, int, int] | None:
    """Changes when the admin calendar file changes (for caches of calendar answers)."""
    return _active.version() if _active is not None else None
