"""A caller asks for an agent; an agent at the desk API gets the offer with the packet,
answers over WebRTC, and each hears the other; wrap-up; the CDR has the human side."""

from __future__ import annotations

import asyncio
from typing import Any

from app.media.audio import Pcm
from tests.handoff.conftest import DEMO, SHANGHAI_CALLER
from tests.helpers.desk import Caller, heard_since, play
from tests.helpers.tones import dominant_hz, tone

CALLER_HZ, AGENT_HZ = 440.0, 1000.0


async def ask_for_agent(caller: Caller) -> None:
    """Language 1 (zh), then 0 for an agent (the flow's agent key)."""
    await caller.press_at("language", "1")
    await caller.press_at("main_menu", "0")


async def hears(peer: Any, start: int, hz: float, timeout_s: float = 20) -> None:
    """Until the last second ``peer`` heard is mostly ``hz``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = 0.0
    while loop.time() < deadline:
        audio = heard_since(peer, start)
        if len(audio) >= 32000:
            last = dominant_hz(audio[-32000:])
            if abs(last - hz) < 15:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"did not hear {hz} Hz (last dominant {last:.0f} Hz)")


async def test_agent_gets_the_packet_answers_and_both_hear_each_other(make_desk: Any) -> None:
    desk = await make_desk()
    agent = desk.agent("li.na")
    await agent.login()
    caller = desk.caller()
    call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
    await ask_for_agent(caller)

    _, offer = await agent.offer()
    packet = offer["packet"]
    assert offer["call_id"] == call_id and offer["group"] == "zh_service"
    assert packet["caller_number"] == SHANGHAI_CALLER and "上海" in packet["caller_region"]
    assert packet["hotline_number"] == DEMO and packet["queue"] == "general"
    assert packet["intent"] is None  # keys only
    assert packet["flow_path"][:3] == ["greeting", "language", "hours_check"]
    assert any(t["speaker"] == "bot" and "人工" in t["text"] for t in packet["transcript"])

    peer = await agent.answer(offer["offer_id"])
    answered_at = asyncio.get_running_loop().time()
    connected, _ = await caller.event("agent_connected", agent_id="li.na", device="web")
    start_caller, start_agent = len(caller.peer.received), len(peer.received)
    play(caller.peer, Pcm(tone(CALLER_HZ, 6), 16000))
    play(peer, Pcm(tone(AGENT_HZ, 6), 16000))
    await hears(caller.peer, start_caller, AGENT_HZ)
    await hears(peer, start_agent, CALLER_HZ)

    talked_s = asyncio.get_running_loop().time() - answered_at
    await agent.action(call_id, "hangup")
    await caller.event("call_ended", outcome="agent_handled")
    draft = await agent.client.get(f"/v1/desk/calls/{call_id}/draft")
    assert draft.status_code == 200, draft.text
    proposal = draft.json()
    assert proposal["disposition"] == "resolved" and proposal["reasons"]
    assert len(proposal["summary"].splitlines()) == 2
    await agent.post(f"/v1/desk/calls/{call_id}/wrapup", {
        "disposition": "information", "notes": "told them the hours",
        "bot_should_handle": True, "intent": "business_hours", "draft": proposal})

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at") and c.get("disposition")))
    assert cdr["outcome"] == "agent_handled" and cdr["abandoned"] is False
    assert cdr["routing_rule"] == "default" and cdr["routing_target"] == "group zh_service"
    assert cdr["queue_group"] == "zh_service" and cdr["wait_s"] is not None
    assert cdr["ring_attempts"] == [{"agent_id": "li.na", "device": "web", "outcome": "answered",
                                     "ring_s": cdr["ring_attempts"][0]["ring_s"]}]
    assert cdr["answered_by"] == "li.na" and cdr["hold_s"] == 0
    assert 0 < cdr["talk_s"] <= talked_s + 1
    assert (cdr["disposition"], cdr["wrap_notes"], cdr["bot_should_handle"],
            cdr["bot_intent"]) == ("information", "told them the hours", True, "business_hours")
    assert cdr["handoff_target"] == "general" and not cdr["callback_requested"]
    assert connected >= 0
