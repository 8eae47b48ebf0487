"""The call record writer: in order, in the background, retried, spooled, replayed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.call.bus import EventBus
from app.call.eventlog import CallClosing, CallEventLog, CallHeader, replay_spool
from app.call.keypad import KeypadCollector
from app.record import DtmfPressed, NodeEntered, PromptPlayed
from app.storage.db import Database
from app.storage.errors import DatabaseUnavailableError
from app.storage.repository import CallRepository

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class FlakyStore:
    """The real repository, with the database "down" for the first ``down`` writes."""

    def __init__(self, repo: CallRepository, down: int) -> None:
        self.repo, self.down, self.calls = repo, down, 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.repo, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.down > 0:
                self.down -= 1
                raise DatabaseUnavailableError("database is down (injected)")
            return real(*args, **kwargs)

        return call


@pytest.fixture
def repo(tmp_path: Path) -> CallRepository:
    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
    db.migrate()
    return CallRepository(db)


def _header(call_id: str = "c1") -> CallHeader:
    return CallHeader(call_id, "4008001234", "+8613800138000", "sip", "zh", T0, "demo")


async def test_events_are_published_at_once_and_stored_in_order(repo: CallRepository) -> None:
    bus = EventBus()
    async with bus.subscribe("c1") as live:
        log = CallEventLog(_header(), repo, bus)
        log.start()
        assert await log.wait_started(5) is None
        for digit in "12345":
            log.emit(DtmfPressed(digit=digit))
        assert [(await live.get())["digit"] for _ in range(5)] == list("12345")
        await log.close(CallClosing("completed", T0.replace(minute=1)))
    events = repo.events("c1")
    assert [e.payload.get("digit") for e in events][:5] == list("12345")
    assert [e.seq for e in events] == list(range(1, 7)) and events[-1].type == "call_ended"
    assert log.acknowledged == 5


async def test_a_database_outage_mid_call_is_retried_and_loses_nothing(
        repo: CallRepository) -> None:
    store = FlakyStore(repo, down=0)
    log = CallEventLog(_header(), store, EventBus(), retry_for_s=10)  # type: ignore[arg-type]
    log.start()
    assert await log.wait_started(5) is None
    store.down = 3  # the next three writes fail
    log.emit(NodeEntered(node="menu"))
    log.emit(PromptPlayed(text="您好", locale="zh"))
    await log.close(CallClosing("completed", T0.replace(minute=1)))
    assert log.write_failures == 3
    assert [e.type for e in repo.events("c1")] == ["node_entered", "prompt_played", "call_ended"]


async def test_a_database_down_for_good_is_spooled_then_replayed(
        repo: CallRepository, tmp_path: Path) -> None:
    store = FlakyStore(repo, down=10**6)
    spool = tmp_path / "spool"
    log = CallEventLog(_header(), store, EventBus(), spool_dir=spool,  # type: ignore[arg-type]
                       retry_for_s=0.5)
    log.start()
    problem = await log.wait_started(2)
    assert problem is not None and "database is down" in problem
    log.emit(DtmfPressed(digit="0"))
    await log.close(CallClosing("error", T0.replace(minute=1), flow_state={"node": "x"}))
    assert (spool / "c1.json").exists() and repo.get_call("c1") is None
    replayed, failed = await asyncio.to_thread(replay_spool, repo, spool)
    assert (replayed, failed) == (["c1"], {})
    detail = repo.get_call("c1")
    assert detail is not None and detail.cdr.outcome == "error"
    assert detail.cdr.flow_state == {"node": "x"}
    assert [e.type for e in detail.events] == ["dtmf", "call_ended"]
    assert not (spool / "c1.json").exists()


async def test_a_stopping_process_spools_what_is_not_written(
        repo: CallRepository, tmp_path: Path) -> None:
    store = FlakyStore(repo, down=10**6)
    log = CallEventLog(_header(), store, EventBus(), spool_dir=tmp_path,  # type: ignore[arg-type]
                       retry_for_s=60)
    log.start()
    log.emit(DtmfPressed(digit="5"))
    closing = asyncio.create_task(log.close(CallClosing("interrupted", T0)))
    await asyncio.sleep(0.3)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert (tmp_path / "c1.json").exists()


def test_keypad_collects_to_max_digits_terminator_or_pause() -> None:
    keys = KeypadCollector(max_digits=6, terminator="#", inter_digit_timeout_s=3)
    assert keys.press("#", 0.0) is None  # a terminator alone delivers nothing
    assert keys.press("1", 1.0) is None and keys.deadline() == 4.0
    assert keys.press("2", 2.0) is None and keys.deadline() == 5.0
    assert keys.press("#", 2.5) == "12" and keys.deadline() is None
    assert keys.expire() is None
    for i, key in enumerate("12345"):
        assert keys.press(key, i) is None
    assert keys.press("6", 5) == "123456"
    single = KeypadCollector()
    assert single.press("7", 0) == "7"
    assert keys.press("9", 10) is None and keys.expire() == "9"
