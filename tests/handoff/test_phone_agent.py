"""A phone-bound agent: the offer rings their SIP phone (baresip, auto-answer) through the
outbound leg; the WebRTC caller and the phone hear each other (tones both ways, resampled
between 16 kHz and 8 kHz G.711); the CDR names the phone that answered."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from app.media.audio import Pcm, read_wav
from tests.handoff.conftest import DEMO, SHANGHAI_CALLER
from tests.handoff.routing import phone_agent_routing, short_flow
from tests.handoff.test_agent_call import hears
from tests.handoff.test_routing_paths import ask_for_agent
from tests.helpers.desk import play
from tests.helpers.tones import dominant_hz, tone
from tests.helpers.tools import needs
from tests.sip.conftest import free_udp_port
from tests.sip.test_outbound import _baresip, _baresip_config

PHONE_HZ, CALLER_HZ = 1000.0, 440.0


@needs(shutil.which("baresip") is not None, "baresip")
async def test_offer_rings_the_agents_sip_phone_which_answers_and_talks(
        make_desk: Any, tmp_path: Path) -> None:
    port = free_udp_port()
    uri = f"sip:agent@127.0.0.1:{port}"
    home = _baresip_config(tmp_path, port, PHONE_HZ)
    async with _baresip(home):
        desk = await make_desk(phone_agent_routing(tmp_path, uri),
                               flows_dir=short_flow(tmp_path), sip_enabled=True, sip_port=0)
        agent = desk.agent("wang.fang")  # signs in at the desk, available: her phone rings
        await agent.login()
        caller = desk.caller()
        call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
        play(caller.peer, Pcm(tone(CALLER_HZ, 30), 16_000))
        await ask_for_agent(caller)
        _, connected = await caller.event("agent_connected", agent_id="wang.fang")
        assert connected["device"] == uri
        assert not [m for _, m in agent.feed.items if m["type"] == "offer"]  # no desk device
        await hears(caller.peer, len(caller.peer.received), PHONE_HZ)
        await caller.close()  # the caller hangs up: BYE to the phone
        cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["answered_by"] == "wang.fang" and cdr["talk_s"] > 0
    assert [(r["agent_id"], r["device"], r["outcome"]) for r in cdr["ring_attempts"]] == [
        ("wang.fang", uri, "answered")]
    (dump,) = home.glob("dump-*-dec.wav")  # what the phone decoded: the caller's tone
    heard = read_wav(dump)
    tail = heard.data[-heard.sample_rate_hz * 2 * 2:]
    assert abs(dominant_hz(tail, heard.sample_rate_hz) - CALLER_HZ) < 20
