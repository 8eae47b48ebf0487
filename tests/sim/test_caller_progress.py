"""What the simulated caller reads from the call's events: listens, prompts, keys noted."""

from __future__ import annotations

import asyncio

from app.sim.caller import CallProgress


def _events(progress: CallProgress, *events: dict[str, object]) -> None:
    for event in events:
        progress.add(event)


def test_a_key_during_a_prompt_without_barge_in_is_noted() -> None:
    notes: list[str] = []
    progress = CallProgress(notes.append)
    _events(progress,
            {"type": "prompt_played", "text": "안녕하세요 이 통화는 녹음됩니다", "barge_in": False},
            {"type": "dtmf", "digit": "1"},
            {"type": "prompt_played", "text": "배송 또는 상담원", "barge_in": True},
            {"type": "dtmf", "digit": "2"},
            {"type": "listen"},
            {"type": "dtmf", "digit": "3"})
    assert notes == ["key 1 was pressed during a prompt that does not allow barge-in "
                     "('안녕하세요 이 통화는 녹음됩니다'): it plays on; the key waits for the "
                     "next menu"]


def test_the_bot_waits_after_a_listen_until_the_caller_or_the_bot_acts() -> None:
    progress = CallProgress()
    assert not progress.waiting
    _events(progress, {"type": "prompt_played", "text": "menu", "barge_in": True},
            {"type": "listen"})
    assert progress.waiting and progress.listens == 1
    _events(progress, {"type": "transcript", "text": "배송", "is_final": True})
    assert not progress.waiting  # the bot is on its answer
    _events(progress, {"type": "listen"}, {"type": "dtmf", "digit": "1"})
    assert not progress.waiting and progress.listens == 2
    _events(progress, {"type": "call_ended", "outcome": "completed"})
    assert progress.server_done.is_set()


async def test_wait_for_listen_returns_at_the_next_listen() -> None:
    progress = CallProgress()
    waiter = asyncio.create_task(progress.wait_for_listen(after=0))
    await asyncio.sleep(0)
    progress.add({"type": "prompt_played", "text": "x", "barge_in": True})
    await asyncio.sleep(0)
    assert not waiter.done()
    progress.add({"type": "listen"})
    assert await asyncio.wait_for(waiter, 5) == 1
