"""Callbacks with real parts: a queued caller nobody can take asks to be called back (1 when
the bot offers it) and hangs up; the request is a queued task; the agent who becomes
available gets it like a call (the desk rings with the packet), answers, and the outbound
leg dials the caller's number through the trunk (baresip, auto-answer, as the caller's
phone): the agent and the caller hear each other; the CDR says requested, then done."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from app.media.audio import Pcm, read_wav
from app.settings import SipTrunk
from tests.handoff.conftest import DEMO
from tests.handoff.routing import actions_flow, actions_routing
from tests.handoff.test_agent_call import hears
from tests.helpers.desk import play
from tests.helpers.tones import dominant_hz, tone
from tests.helpers.tools import needs
from tests.sip.conftest import free_udp_port
from tests.sip.test_outbound import _baresip, _baresip_config

MOBILE = "+8613912345678"
PHONE_HZ, AGENT_HZ = 1000.0, 440.0


@needs(shutil.which("baresip") is not None, "baresip")
async def test_requested_callback_is_a_task_an_agent_takes_and_the_caller_is_dialled(
        make_desk: Any, tmp_path: Path) -> None:
    port = free_udp_port()
    home = _baresip_config(tmp_path, port, PHONE_HZ)  # the caller's phone
    (home / "accounts").write_text(f"<sip:{MOBILE}@127.0.0.1>;regint=0;answermode=auto\n")
    async with _baresip(home):
        desk = await make_desk(
            actions_routing(tmp_path, callback_offer_after_s=2),
            flows_dir=actions_flow(tmp_path), sip_enabled=True, sip_port=0,
            sip_trunks=[SipTrunk(name="carrier", proxy=f"127.0.0.1:{port}")])
        agent = desk.agent("li.na")
        await agent.login(status=None)  # signed in, not taking calls yet
        await agent.post("/v1/desk/status", {"status": "away", "reason": "break"})
        caller = desk.caller()
        call_id = await caller.dial(DEMO, caller_number=MOBILE)
        await caller.press_at("menu", "0")
        i, _ = await caller.event("queue_joined")
        _, offered = await caller.event("callback_offered", after=i)
        assert offered["group"] == "zh_service" and offered["waited_s"] >= 2
        caller.peer.send_dtmf("1")  # while the bot says the offer
        _, kept = await caller.event("callback_queued", after=i)
        assert kept["number"] == MOBILE and kept["group"] == "zh_service"
        await caller.event("call_ended", after=i, outcome="callback_requested")
        await caller.close()
        cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
        assert cdr["callback_requested"] is True and cdr["callback_status"] == "queued"
        assert cdr["callback_done_at"] is None and cdr["answered_by"] is None
        assert not cdr["abandoned"]

        await agent.post("/v1/desk/status", {"status": "available"})
        _, offer = await agent.offer()  # the task rings the desk like a call
        assert offer["call_id"] == call_id and offer["packet"]["callback"] is True
        assert offer["packet"]["caller_number"] == MOBILE
        peer = await agent.answer(offer["offer_id"])
        _, dialing = await agent.feed.wait(lambda m: m["type"] == "callback_dialing")
        assert dialing["number"] == MOBILE
        await agent.feed.wait(lambda m: m["type"] == "callback_connected")
        play(peer, Pcm(tone(AGENT_HZ, 30), 16_000))
        await hears(peer, len(peer.received), PHONE_HZ)  # the caller's phone, through the trunk
        await agent.action(call_id, "hangup")
        _, done = await agent.feed.wait(lambda m: m["type"] == "callback_result")
        assert done["outcome"] == "answered" and done["talk_s"] > 0

        cdr = await desk.cdr(call_id, lambda c: c.get("callback_status") == "done")
    assert cdr["callback_requested"] is True and cdr["callback_done_at"] is not None
    assert cdr["outcome"] == "callback_requested"
    (dump,) = home.glob("dump-*-dec.wav")  # what the caller's phone heard: the agent
    heard = read_wav(dump)
    tail = heard.data[-heard.sample_rate_hz * 2 * 2:]
    assert abs(dominant_hz(tail, heard.sample_rate_hz) - AGENT_HZ) < 20

