"""Bad input and unreachable databases give clear errors that name what is wrong."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.storage import CallNotFoundError, CallRepository, Database, DatabaseUnavailableError

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_postgresql_ping_and_migrate_name_the_host() -> None:
    port = _closed_port()
    db = Database(f"postgresql+psycopg://hotline:secret@127.0.0.1:{port}/hotline")
    try:
        reason = db.ping()
        assert reason is not None
        assert f"127.0.0.1:{port}/hotline" in reason and "refused" in reason.lower()
        assert "secret" not in reason
        with pytest.raises(DatabaseUnavailableError, match=f"127.0.0.1:{port}") as info:
            db.migrate()
        assert "secret" not in str(info.value)
    finally:
        db.dispose()


def test_postgresql_without_the_database_says_so(pg_server: Any) -> None:
    db = Database(pg_server.url("no_such_db"))
    try:
        assert 'database "no_such_db" does not exist' in (db.ping() or "")
    finally:
        db.dispose()


def test_sqlite_in_a_place_that_cannot_exist(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DatabaseUnavailableError, match="cannot create the directory .*file"):
        Database(f"sqlite:///{blocker}/sub/hotline.db")


def test_sqlite_unreadable_file_ping_gives_the_reason(tmp_path: Path) -> None:
    bogus = tmp_path / "hotline.db"
    bogus.write_bytes(b"this is not a database file at all" * 100)
    db = Database(f"sqlite:///{bogus}")
    try:
        reason = db.ping()
        assert reason is not None and str(bogus) in reason and "not a database" in reason
        with pytest.raises(DatabaseUnavailableError, match="not a database"):
            db.migrate()
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "invalid database URL"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("sqlite://", "in-memory SQLite is not supported"),
        ("sqlite:///:memory:", "in-memory SQLite is not supported"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Database(url)


def test_unknown_call_id(repo: CallRepository) -> None:
    calls: list[tuple[str, Any]] = [
        ("append_event", lambda: repo.append_event("ghost", {"type": "hangup"}, T0)),
        ("end_call", lambda: repo.end_call("ghost", "completed", T0)),
        ("append_events", lambda: repo.append_events("ghost", [({"type": "hangup"}, T0)])),
        ("save_flow_state", lambda: repo.save_flow_state("ghost", {})),
        ("add_recording", lambda: repo.add_recording("ghost", "/x.wav", 1.0, True)),
        ("events", lambda: repo.events("ghost")),
        ("recordings", lambda: repo.recordings("ghost")),
    ]
    for name, call in calls:
        with pytest.raises(CallNotFoundError) as info:
            call()
        assert isinstance(info.value, KeyError), name
        assert str(info.value) == "no call with id 'ghost'", name
    assert repo.get_call("ghost") is None
    assert repo.list_calls().total == 0


def test_bad_values_are_refused_and_nothing_is_written(repo: CallRepository) -> None:
    repo.start_call("c1", "400", "+86", "sip", "zh", T0)
    bad: list[tuple[Any, str]] = [
        (lambda: repo.append_event("c1", {"text": "hi"}, T0), 'event needs a "type"'),
        (lambda: repo.append_event("c1", {"type": ""}, T0), 'event needs a "type"'),
        (lambda: repo.append_event("c1", {"type": "x"}, T0.replace(tzinfo=None)),
         "at must be a timezone-aware datetime"),
        (lambda: repo.append_event("c1", {"type": "x", "v": object()}, T0),
         "x event is not JSON-serializable"),
        (lambda: repo.append_event("c1", {"type": "x", "v": float("nan")}, T0),
         "not JSON-serializable"),
        (lambda: repo.append_event("c1", {"type": "sentiment", "label": "neg"}, T0),
         "sentiment event 'score' must be a finite number"),
        (lambda: repo.append_event("c1", {"type": "node_entered"}, T0),
         "node_entered event 'node' must be a non-empty string"),
        (lambda: repo.append_event("c1", {"type": "transfer", "reason": "r"}, T0),
         "transfer event 'queue'"),
        (lambda: repo.start_call("c1", "400", "+86", "sip", "zh", T0), "call 'c1' already exists"),
        (lambda: repo.start_call("c2", "", "+86", "sip", "zh", T0), "hotline_number must be"),
        (lambda: repo.start_call("c2", "400", None, "sip", "zh", T0),  # type: ignore[arg-type]
         "caller_number must be"),
        (lambda: repo.append_events("c1", [({"type": "dtmf", "digit": "1"}, T0),
                                           ({"type": "Bad"}, T0)]), 'event needs a "type"'),
        (lambda: repo.add_recording("c1", "/r.wav", -1, True), "duration_s must be >= 0"),
        (lambda: repo.save_flow_state("c1", {"at": T0}), "flow state is not JSON-serializable"),
        (lambda: repo.end_call("c1", "Done!", T0), "outcome must be a lower_snake_case name"),
        (lambda: repo.end_call("c1", "completed", T0 - timedelta(seconds=1)),
         "cannot end at .* before it started"),
        (lambda: repo.list_calls(limit=0), r"limit must be an int in 1\.\.500"),
        (lambda: repo.list_calls(offset=-1), "offset must be an int >= 0"),
        (lambda: repo.events("c1", after_seq=-1), "after_seq must be an int >= 0"),
        (lambda: repo.finalize_interrupted(datetime(2026, 1, 1)), "now must be a timezone-aware"),
    ]
    for call, message in bad:
        with pytest.raises(ValueError, match=message):
            call()
    detail = repo.get_call("c1")
    assert detail is not None
    assert (detail.events, detail.turns, detail.recordings) == ([], [], [])
    assert detail.cdr.ended_at is None and detail.cdr.flow_state is None
    assert repo.list_calls().total == 1
