"""A warm transfer to a phone number: the agent puts the caller on hold, the number is dialled
through the trunk (baresip, auto-answer), the agent talks to the person there, completes,
and the caller and that phone hear each other; or the agent cancels while it still rings.
The CDR has the transfer and its outcome."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

from app.settings import SipTrunk
from tests.handoff.routing import actions_flow, actions_routing
from tests.handoff.test_agent_actions import (
    CALLER_HZ,
    LI_NA_HZ,
    connected_call,
    hears_hold_audio,
)
from tests.handoff.test_agent_call import hears
from tests.helpers.tones import dominant_hz
from tests.helpers.tools import needs, require_tool
from tests.sip.conftest import free_udp_port
from tests.sip.test_outbound import _baresip, _baresip_config, _sipp_uas

NUMBER = "+8613700001111"
PHONE_HZ = 700.0


@needs(shutil.which("baresip") is not None, "baresip")
async def test_warm_transfer_to_a_number_consults_then_connects_the_caller(
        make_desk: Any, tmp_path: Path) -> None:
    port = free_udp_port()
    home = _baresip_config(tmp_path, port, PHONE_HZ)  # the colleague's mobile
    (home / "accounts").write_text(f"<sip:{NUMBER}@127.0.0.1>;regint=0;answermode=auto\n")
    async with _baresip(home):
        desk = await make_desk(
            actions_routing(tmp_path), flows_dir=actions_flow(tmp_path), sip_enabled=True,
            sip_port=0, sip_trunks=[SipTrunk(name="carrier", proxy=f"127.0.0.1:{port}")])
        agent = desk.agent("li.na")
        caller, call_id, peer = await connected_call(desk, agent)

        mark_caller, mark_agent = len(caller.peer.received), len(peer.received)
        body = {"mode": "warm", "target": {"number": NUMBER}, "note": "billing question"}
        assert (await agent.action(call_id, "transfer", body))["state"] == "consult"
        await hears_hold_audio(caller.peer, mark_caller)
        _, consult = await agent.feed.wait(lambda m: m["type"] == "consult")
        assert consult["agent_id"] == f"number:{NUMBER}"
        await hears(peer, mark_agent, PHONE_HZ)  # the agent talks to the phone first
        before = len(agent.feed.items)
        await agent.action(call_id, "complete")
        await hears(caller.peer, len(caller.peer.received), PHONE_HZ)  # now the caller does
        await agent.feed.wait(lambda m: m["type"] == "agent_state" and m.get("state") ==
                              "available", after=before)  # li.na is free again
        await phone_hears(home, CALLER_HZ)  # and the phone hears the caller
        await caller.close()
        cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["transfers"] == [{"agent_id": "li.na", "mode": "warm",
                                 "target": f"number {NUMBER}", "outcome": "completed"}]
    assert cdr["answered_by"] == "li.na" and cdr["hold_s"] > 0


def _phone_last_second(home: Path) -> bytes:
    """The last second baresip decoded (its 8 kHz dump, read while it is written: the
    samples after the ``data`` chunk header); empty before there is a second."""
    for dump in home.glob("dump-*-dec.wav"):
        raw = dump.read_bytes()
        at = raw.find(b"data")
        samples = raw[at + 8:] if at >= 0 else b""
        samples = samples[: len(samples) // 2 * 2]
        if len(samples) >= 16_000:
            return samples[-16_000:]
    return b""


async def phone_hears(home: Path, hz: float, timeout_s: float = 20) -> None:
    """Until the last second the phone heard is mostly ``hz``."""
    deadline = time.monotonic() + timeout_s
    last = 0.0
    while time.monotonic() < deadline:
        samples = await asyncio.to_thread(_phone_last_second, home)
        if samples:
            last = dominant_hz(samples, 8000)
            if abs(last - hz) < 20:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the phone did not hear {hz} Hz (last dominant {last:.0f} Hz)")


async def test_warm_transfer_to_a_number_cancelled_while_it_rings(
        make_desk: Any, tmp_path: Path) -> None:
    """The number rings on (sipp, never answering); the agent cancels: the ringing stops
    (CANCEL reaches the phone) and the caller is back with the agent."""
    require_tool("sipp")
    port = free_udp_port()
    phone = await _sipp_uas("uas_ring_forever.xml", port, tmp_path)
    try:
        desk = await make_desk(
            actions_routing(tmp_path), flows_dir=actions_flow(tmp_path), sip_enabled=True,
            sip_port=0, sip_trunks=[SipTrunk(name="carrier", proxy=f"127.0.0.1:{port}")])
        agent = desk.agent("li.na")
        caller, call_id, _ = await connected_call(desk, agent)
        mark = len(caller.peer.received)
        body = {"mode": "warm", "target": {"number": NUMBER}}
        assert (await agent.action(call_id, "transfer", body))["state"] == "consult"
        await hears_hold_audio(caller.peer, mark)
        await agent.action(call_id, "cancel")
        assert await asyncio.wait_for(phone.wait(), 30) == 0  # CANCEL, 487, ACK all happened
        _, result = await agent.feed.wait(lambda m: m["type"] == "transfer_result")
        assert result["outcome"] == "cancelled"
        await hears(caller.peer, len(caller.peer.received), LI_NA_HZ)
        await agent.action(call_id, "hangup")
        cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    finally:
        if phone.returncode is None:
            phone.kill()
            await phone.wait()
    assert cdr["transfers"] == [{"agent_id": "li.na", "mode": "warm",
                                 "target": f"number {NUMBER}", "outcome": "cancelled"}]
    assert cdr["outcome"] == "agent_handled"
