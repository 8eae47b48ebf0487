"""The call path's other endings, with real calls and desks: an unanswered ring goes to the
next agent (and enough missed offers set an agent away), nobody free ends in the flow's
queue-timeout path, and a caller hanging up while an agent's desk rings is abandoned."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiortc.mediastreams import MediaStreamError

from tests.handoff.conftest import DEMO, SHANGHAI_CALLER
from tests.handoff.routing import short_flow, two_agent_routing
from tests.helpers.desk import Caller


async def ask_for_agent(caller: Caller) -> None:
    await caller.press_at("menu", "0")


async def test_ring_no_answer_goes_to_the_next_agent_and_sets_the_first_away(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(two_agent_routing(tmp_path, ring_timeout_s=3, max_missed_offers=1),
                           flows_dir=short_flow(tmp_path))
    first, second = desk.agent("li.na"), desk.agent("zhang.wei")
    await first.login()
    await second.login()
    caller = desk.caller()
    call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
    await ask_for_agent(caller)

    _, missed = await first.offer()  # sequential: li.na first; she lets it ring
    assert missed["call_id"] == call_id and missed["packet"]["caller_number"] == SHANGHAI_CALLER
    await first.feed.wait(lambda m: m["type"] == "offer_ended" and m["state"] == "timed_out")
    await first.feed.wait(lambda m: m["type"] == "agent_state" and m.get("state") == "away"
                          and m.get("away_reason") == "missed_offers")
    _, offer = await second.offer()
    assert offer["call_id"] == call_id
    await second.answer(offer["offer_id"])
    await caller.event("agent_connected", agent_id="zhang.wei")
    await second.action(call_id, "hangup")

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert [(r["agent_id"], r["outcome"]) for r in cdr["ring_attempts"]] == [
        ("li.na", "no_answer"), ("zhang.wei", "answered")]
    assert cdr["ring_attempts"][0]["ring_s"] >= 2.5
    assert cdr["answered_by"] == "zhang.wei" and cdr["outcome"] == "agent_handled"
    assert cdr["wait_s"] >= 2.5 and not cdr["abandoned"]


async def test_nobody_free_until_the_max_wait_takes_the_flows_queue_timeout_path(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(two_agent_routing(tmp_path, max_wait_s=5),
                           flows_dir=short_flow(tmp_path))
    agent = desk.agent("li.na")
    await agent.login(status=None)  # signed in, on a break; zhang.wei is offline
    await agent.post("/v1/desk/status", {"status": "away", "reason": "break"})
    caller = desk.caller()
    call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
    await ask_for_agent(caller)

    i, joined = await caller.event("queue_joined")
    assert joined["group"] == "zh_service"
    _, timeout = await caller.event("queue_timeout", after=i)
    assert timeout["waited_s"] >= 4.5
    await caller.event("node_entered", node="busy", after=i)
    assert not [m for _, m in agent.feed.items if m["type"] == "offer"]
    await caller.close()

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["queue_group"] == "zh_service" and cdr["routing_target"] == "group zh_service"
    assert 4.5 <= cdr["wait_s"] < 60 and cdr["answered_by"] is None
    assert cdr["ring_attempts"] is None


async def test_caller_hanging_up_while_the_desk_rings_is_abandoned(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(two_agent_routing(tmp_path, ring_timeout_s=60),
                           flows_dir=short_flow(tmp_path))
    agent = desk.agent("li.na")
    await agent.login()
    caller = desk.caller()
    call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
    await ask_for_agent(caller)

    i, offer = await agent.offer()
    await caller.close()
    _, ended = await agent.feed.wait(lambda m: m["type"] == "offer_ended", after=i)
    assert ended["call_id"] == call_id and ended["state"] == "cancelled"
    await agent.post(f"/v1/desk/offers/{offer['offer_id']}/answer", {}, expect=409)
    await agent.feed.wait(lambda m: m["type"] == "agent_state" and m.get("state") ==
                          "available", after=i)

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["abandoned"] is True and cdr["outcome"] == "abandoned"
    assert cdr["wait_s"] is not None and cdr["wait_s"] > 0 and cdr["answered_by"] is None
    assert [(r["agent_id"], r["outcome"]) for r in cdr["ring_attempts"]] == [
        ("li.na", "cancelled")]


async def test_agent_whose_audio_dies_mid_call_has_the_caller_requeued_at_the_front(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(two_agent_routing(tmp_path), flows_dir=short_flow(tmp_path),
                           webrtc_media_timeout_s=5)  # the agent vanishes after 5 s
    first, second = desk.agent("li.na"), desk.agent("zhang.wei")
    await first.login()
    await second.login()
    caller = desk.caller()
    call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
    await ask_for_agent(caller)
    _, offer = await first.offer()
    peer = await first.answer(offer["offer_id"])
    i, _ = await caller.event("agent_connected", agent_id="li.na")

    vanished = asyncio.Event()  # the agent's network goes: no more RTP from their side

    async def silent_forever() -> Any:
        await vanished.wait()
        raise MediaStreamError

    peer.source.recv = silent_forever  # type: ignore[method-assign]
    try:
        j, gone = await caller.event("agent_disconnected", after=i)
        assert gone["agent_id"] == "li.na" and gone["reason"] == "agent_dropped"
        k, requeued = await caller.event("queue_joined", after=j)
        assert requeued["position"] == 1
        agent, again = await either_offer((first, second), call_id, after_time=gone_time(
            caller, j))
        await agent.answer(again["offer_id"])
        await caller.event("agent_connected", after=k, agent_id=agent.agent_id)
        await agent.action(call_id, "hangup")
    finally:
        vanished.set()
    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["outcome"] == "agent_handled" and cdr["answered_by"] == "li.na"
    assert [r["outcome"] for r in cdr["ring_attempts"]] == ["answered", "answered"]


def gone_time(caller: Caller, index: int) -> float:
    return caller.events.items[index][0]


async def either_offer(agents: tuple[Any, ...], call_id: str, after_time: float,
                       timeout_s: float = 30) -> tuple[Any, dict[str, Any]]:
    """The first agent whose desk rings with ``call_id`` after ``after_time``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        for agent in agents:
            for at, message in agent.feed.items:
                if at > after_time and message["type"] == "offer" and \
                        message["call_id"] == call_id:
                    return agent, message
        await asyncio.sleep(0.05)
    raise AssertionError(f"{call_id} was not offered again within {timeout_s}s")
