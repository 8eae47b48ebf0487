"""The agent's actions during a call, with real calls (aiortc caller, aiortc agents at the
desk API): hold and unhold (the caller hears hold audio, then the agent again), mute, a blind
transfer to another agent (the packet goes along; the second agent hears the caller), a
transfer whose target does not answer (a blind one returns the caller to the bot, which says
its line; a warm one returns the caller to the agent who was consulting), and a hand-back to
the bot at a flow node whose result comes back to the agent's desk. Each ends with what a
supervisor reads in the CDR."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from app.media.audio import Pcm
from app.sim.caller import CallerPeer
from tests.handoff.conftest import DEMO, SHANGHAI_CALLER, Desk
from tests.handoff.routing import actions_flow, actions_routing
from tests.handoff.test_agent_call import hears
from tests.helpers.desk import Caller, DeskAgent, heard_since, play
from tests.helpers.tones import dominant_hz, loud_ms, tone

CALLER_HZ, LI_NA_HZ, ZHANG_WEI_HZ = 440.0, 1000.0, 700.0
HOLD_NOTES_HZ = (523.25, 659.25)  # app.media.hold's chime
SECOND = 32_000  # bytes of 16 kHz s16le


async def _until(check: Any, what: str, timeout_s: float = 20) -> None:
    """Poll ``check()`` (every 100 ms) until it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(what)


def _last_second(peer: CallerPeer, start: int) -> bytes | None:
    audio = heard_since(peer, start)
    return audio[-SECOND:] if len(audio) >= SECOND else None


async def hears_hold_audio(peer: CallerPeer, start: int) -> None:
    def check() -> bool:
        last = _last_second(peer, start)
        return last is not None and any(abs(dominant_hz(last) - hz) < 15
                                        for hz in HOLD_NOTES_HZ)
    await _until(check, "the caller did not hear the hold chime")


async def hears_silence(peer: CallerPeer, start: int) -> None:
    """A whole second with nothing louder than a whisper."""
    def check() -> bool:
        last = _last_second(peer, start)
        return last is not None and loud_ms(last, threshold=300) == 0
    await _until(check, "still hearing something")


async def connected_call(desk: Desk, answering: DeskAgent, *others: DeskAgent
                         ) -> tuple[Caller, str, CallerPeer]:
    """Agents signed in and available; a caller presses 0; ``answering`` takes the offer.
    Both sides play their tone from then on and hear each other."""
    for agent in (answering, *others):
        await agent.login()
    caller = desk.caller()
    call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
    await caller.press_at("menu", "0")
    _, offer = await answering.offer()
    assert offer["call_id"] == call_id
    peer = await answering.answer(offer["offer_id"])
    await caller.event("agent_connected", agent_id=answering.agent_id)
    play(caller.peer, Pcm(tone(CALLER_HZ, 90), 16_000))
    play(peer, Pcm(tone(LI_NA_HZ, 90), 16_000))
    await hears(caller.peer, len(caller.peer.received), LI_NA_HZ)
    await hears(peer, len(peer.received), CALLER_HZ)
    return caller, call_id, peer


async def test_hold_unhold_and_mute(make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(actions_routing(tmp_path), flows_dir=actions_flow(tmp_path))
    agent = desk.agent("li.na")
    caller, call_id, peer = await connected_call(desk, agent)

    mark_caller, mark_agent = len(caller.peer.received), len(peer.received)
    held_at = time.monotonic()
    assert (await agent.action(call_id, "hold"))["state"] == "hold"
    await hears_hold_audio(caller.peer, mark_caller)  # not the agent, not silence
    await hears_silence(peer, mark_agent)  # the agent does not hear the caller on hold
    await agent.feed.wait(lambda m: m["type"] == "call_event" and
                          m["event"]["type"] == "hold" and m["event"]["on"] is True)
    assert (await agent.action(call_id, "unhold"))["state"] == "talking"
    held_s = time.monotonic() - held_at
    await hears(caller.peer, len(caller.peer.received), LI_NA_HZ)  # the agent again
    await hears(peer, len(peer.received), CALLER_HZ)

    assert (await agent.action(call_id, "mute"))["muted"] is True
    await hears_silence(caller.peer, len(caller.peer.received))
    await hears(peer, len(peer.received), CALLER_HZ)  # the agent still hears the caller
    assert (await agent.action(call_id, "unmute"))["muted"] is False
    await hears(caller.peer, len(caller.peer.received), LI_NA_HZ)

    await agent.action(call_id, "hangup")
    await caller.event("call_ended", outcome="agent_handled")
    await agent.post(f"/v1/desk/calls/{call_id}/wrapup", {"disposition": "resolved"})
    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at") and c.get("disposition")))
    assert cdr["answered_by"] == "li.na" and cdr["disposition"] == "resolved"
    assert 0.5 < cdr["hold_s"] <= held_s + 0.5  # counted from the hold to the unhold
    assert cdr["talk_s"] > cdr["hold_s"] and cdr["transfers"] is None
    kinds = [(e["type"], e.get("on")) for _, e in caller.events.items
             if e.get("type") in ("hold", "mute")]
    assert kinds == [("hold", True), ("hold", False), ("mute", True), ("mute", False)]


async def test_blind_transfer_to_another_agent_passes_the_packet_on(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(actions_routing(tmp_path), flows_dir=actions_flow(tmp_path))
    first, second = desk.agent("li.na"), desk.agent("zhang.wei")
    caller, call_id, _ = await connected_call(desk, first, second)

    before = len(first.feed.items)
    await first.action(call_id, "transfer", {"mode": "blind", "target": {"agent": "zhang.wei"},
                                             "note": "wants a refund"})
    _, offer = await second.offer()
    packet = offer["packet"]
    assert offer["call_id"] == call_id and packet["caller_number"] == SHANGHAI_CALLER
    assert packet["transferred_by"] == "li.na" and "wants a refund" in packet["note"]
    assert any(t["speaker"] == "bot" for t in packet["transcript"])  # the bot's part too
    await first.feed.wait(lambda m: m["type"] == "agent_state" and m.get("state") ==
                          "available", after=before)  # li.na's part is over (no wrap-up)
    peer = await second.answer(offer["offer_id"])
    await caller.event("agent_connected", agent_id="zhang.wei")
    play(peer, Pcm(tone(ZHANG_WEI_HZ, 30), 16_000))
    await hears(peer, len(peer.received), CALLER_HZ)  # the second agent hears the caller
    await hears(caller.peer, len(caller.peer.received), ZHANG_WEI_HZ)
    await second.action(call_id, "hangup")

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["transfers"] == [{"agent_id": "li.na", "mode": "blind",
                                 "target": "agent zhang.wei", "outcome": "completed"}]
    assert [(r["agent_id"], r["outcome"]) for r in cdr["ring_attempts"]] == [
        ("li.na", "answered"), ("zhang.wei", "answered")]
    assert cdr["answered_by"] == "li.na" and cdr["outcome"] == "agent_handled"


async def test_blind_transfer_nobody_answers_returns_the_caller_to_the_bot(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(actions_routing(tmp_path, agent_ring_timeout_s=3),
                           flows_dir=actions_flow(tmp_path))
    first, second = desk.agent("li.na"), desk.agent("zhang.wei")
    caller, call_id, _ = await connected_call(desk, first, second)

    i = len(caller.events.items)
    await first.action(call_id, "transfer", {"mode": "blind", "target": {"agent": "zhang.wei"}})
    await second.offer()  # zhang.wei lets it ring
    j, _ = await caller.event("queue_timeout", after=i)
    mark = len(caller.peer.received)
    _, said = await caller.event("prompt_played", after=j)
    assert "无法为您转接" in said.get("text", "")  # the flow's line, not silence or music
    await caller.event("call_ended", after=j)
    assert loud_ms(heard_since(caller.peer, mark)) > 1000  # the bot's line was heard

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["transfers"] == [{"agent_id": "li.na", "mode": "blind",
                                 "target": "agent zhang.wei", "outcome": "failed"}]
    assert [(r["agent_id"], r["outcome"]) for r in cdr["ring_attempts"]] == [
        ("li.na", "answered"), ("zhang.wei", "no_answer")]
    assert cdr["outcome"] == "self_service" and not cdr["abandoned"]


async def test_warm_transfer_nobody_answers_returns_the_caller_to_the_agent(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(actions_routing(tmp_path, agent_ring_timeout_s=3),
                           flows_dir=actions_flow(tmp_path))
    first, second = desk.agent("li.na"), desk.agent("zhang.wei")
    caller, call_id, _ = await connected_call(desk, first, second)

    mark = len(caller.peer.received)
    assert (await first.action(call_id, "transfer", {"mode": "warm", "target": {
        "agent": "zhang.wei"}}))["state"] == "consult"
    await hears_hold_audio(caller.peer, mark)  # the caller waits on hold, not in silence
    await second.offer()  # zhang.wei lets it ring
    _, result = await first.feed.wait(lambda m: m["type"] == "transfer_result")
    assert result["outcome"] == "failed" and result["call_id"] == call_id
    await hears(caller.peer, len(caller.peer.received), LI_NA_HZ)  # back with li.na
    await first.action(call_id, "hangup")

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["transfers"] == [{"agent_id": "li.na", "mode": "warm",
                                 "target": "agent zhang.wei", "outcome": "failed"}]
    assert cdr["answered_by"] == "li.na" and cdr["outcome"] == "agent_handled"
    assert cdr["hold_s"] >= 2.5  # the consultation's wait on hold counts as hold time


async def test_hand_back_to_the_bot_and_the_result_on_the_agents_desk(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(actions_routing(tmp_path), flows_dir=actions_flow(tmp_path))
    agent = desk.agent("li.na")
    caller, call_id, _ = await connected_call(desk, agent)

    refused = await agent.action(call_id, "handback", {"node": "busy"}, expect=400)
    assert "verify" in refused["detail"]  # the hotline's hand-back nodes are named
    i = len(caller.events.items)
    await agent.action(call_id, "handback", {"node": "verify"})
    await caller.event("agent_disconnected", after=i, reason="handback")
    await caller.press_at("verify", "4")  # the bot asks; the caller answers the bot
    for digit in "321":
        caller.peer.send_dtmf(digit)

    _, back = await agent.feed.wait(lambda m: m["type"] == "call_event" and m["event"][
        "type"] == "handback" and m["event"]["phase"] == "returned")
    result = back["event"]["result"]
    assert result["slots"] == {"id_last4": "4321"} and "verify" in result["path"]
    await caller.event("agent_connected", after=i, agent_id="li.na")
    await hears(caller.peer, len(caller.peer.received), LI_NA_HZ)  # the agent has them back
    await agent.action(call_id, "hangup")

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["answered_by"] == "li.na" and cdr["outcome"] == "agent_handled"
    assert [(r["agent_id"], r["outcome"]) for r in cdr["ring_attempts"]] == [
        ("li.na", "answered")]  # taken back without ringing anyone
    phases = [e["phase"] for _, e in caller.events.items if e.get("type") == "handback"]
    assert phases == ["started", "returned"]
