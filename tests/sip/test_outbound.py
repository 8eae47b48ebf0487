"""The outbound leg: ``dial`` against real phones (sipp as UAS, baresip auto-answering) and
``bridge`` between an inbound and an outbound SIP leg: caller and agent hear each other."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from app.events import AudioChunk
from app.media.audio import frames, read_wav
from app.media.bridge import bridge
from app.media.rtp_leg import RtpCallMedia
from app.sip.service import SipService
from app.sip.simcaller import start_user_agent, user_agent_settings
from app.sip.uac import dial, outcome_for
from app.sip.uas import InboundCall
from tests.helpers.tones import dominant_hz, tone
from tests.helpers.tools import needs, require_tool
from tests.sip.conftest import SCENARIOS, free_udp_port


async def _sipp_uas(scenario: str, port: int, tmp: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port), "-m", "1",
        "-nostdin", "-timeout", "60s", "-trace_err", cwd=tmp,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(0.5)  # sipp binds its port at start; a UDP INVITE would be retried anyway
    return proc


@pytest.fixture
async def ua() -> AsyncIterator[SipService]:
    require_tool("sipp")
    service = await start_user_agent()
    yield service
    await service.aclose()


@pytest.mark.parametrize(("scenario", "status", "outcome"),
                         [("uas_busy.xml", "486", "busy"), ("uas_decline.xml", "603", "declined")])
async def test_refusals_map_to_clear_outcomes(ua: SipService, tmp_path: Path, scenario: str,
                                              status: str, outcome: str) -> None:
    port = free_udp_port()
    proc = await _sipp_uas(scenario, port, tmp_path)
    rang: list[bool] = []
    result = await dial(ua, f"sip:agent@127.0.0.1:{port}", ring_timeout_s=20,
                        on_ringing=lambda: rang.append(True))
    assert (result.outcome, result.status, result.media) == (outcome, int(status), None)
    assert rang  # the 180 was seen first
    assert await asyncio.wait_for(proc.wait(), 30) == 0  # sipp got its ACK
    assert ua.dialogs == {}


def test_status_codes_map_to_outcomes() -> None:
    cases = {200: "answered", 486: "busy", 600: "busy", 603: "declined", 408: "no_answer",
             480: "no_answer", 404: "not_found", 484: "not_found", 487: "cancelled",
             503: "unavailable", 500: "unavailable", 403: "failed", 488: "failed"}
    assert {status: outcome_for(status) for status in cases} == cases


async def test_ring_timeout_cancels_and_cancel_event_cancels(ua: SipService,
                                                             tmp_path: Path) -> None:
    port = free_udp_port()
    proc = await _sipp_uas("uas_ring_forever.xml", port, tmp_path)
    result = await dial(ua, f"sip:agent@127.0.0.1:{port}", ring_timeout_s=1.5)
    assert (result.outcome, result.status) == ("no_answer", 487)
    assert await asyncio.wait_for(proc.wait(), 30) == 0  # CANCEL, 487, ACK all happened
    port = free_udp_port()
    proc = await _sipp_uas("uas_ring_forever.xml", port, tmp_path)
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(1.0, cancel.set)
    result = await dial(ua, f"sip:agent@127.0.0.1:{port}", ring_timeout_s=30, cancel=cancel)
    assert result.outcome == "cancelled"
    assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_nobody_there_and_bad_targets(ua: SipService) -> None:
    result = await dial(ua, f"sip:agent@127.0.0.1:{free_udp_port()}", ring_timeout_s=1.0)
    assert result.outcome == "no_answer" and result.status == 0
    result = await dial(ua, "13800138000")
    assert result.outcome == "unavailable" and "no trunk with a proxy" in result.reason
    result = await dial(ua, "sip:agent@127.0.0.1", trunk="nope")
    assert result.outcome == "unavailable" and "no SIP trunk named 'nope'" in result.reason


def _baresip_config(tmp: Path, port: int, tone_hz: float) -> Path:
    home = tmp / "baresip"
    home.mkdir()
    samples = tone(tone_hz, 20, 8000)
    with wave.open(str(home / "say.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples)
    (home / "config").write_text(
        f"sip_listen 127.0.0.1:{port}\naudio_source aufile,{home / 'say.wav'}\n"
        "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n"
        f"module sndfile.so\nmodule_app account.so\nmodule_app menu.so\nsnd_path {home}\n"
        "rtp_ports 40000-49998\n")
    (home / "accounts").write_text("<sip:agent@127.0.0.1>;regint=0;answermode=auto\n")
    return home


@contextlib.asynccontextmanager
async def _baresip(home: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        "baresip", "-f", str(home), "-n", "127.0.0.1", stdout=(home / "log").open("wb"),
        stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(100):
            if "baresip is ready" in (home / "log").read_text(errors="replace"):
                break
            await asyncio.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        await proc.wait()


@needs(shutil.which("baresip") is not None, "baresip")
async def test_dial_rings_baresip_and_the_bridge_carries_audio_both_ways(tmp_path: Path) -> None:
    answered: asyncio.Queue[RtpCallMedia] = asyncio.Queue()

    def on_answered(media: RtpCallMedia, _call: InboundCall) -> None:
        answered.put_nowait(media)

    hotline = SipService(user_agent_settings(), calls=None, on_answered=on_answered)
    await hotline.start()
    caller_ua = await start_user_agent()
    agent_port = free_udp_port()
    home = _baresip_config(tmp_path, agent_port, 1000.0)
    recorded: dict[str, int] = {"a": 0, "b": 0}
    try:
        async with _baresip(home):
            caller = await dial(caller_ua, f"sip:4000000001@127.0.0.1:{hotline.port}")
            assert caller.answered and caller.media is not None
            inbound = await asyncio.wait_for(answered.get(), 10)
            agent = await dial(hotline, f"sip:agent@127.0.0.1:{agent_port}",
                               caller_id="4008001234", ring_timeout_s=10)
            assert agent.answered and agent.media is not None, agent
            bridged = asyncio.create_task(bridge(
                inbound, agent.media,
                on_audio=lambda side, chunk: recorded.__setitem__(side, recorded[side] + 1)))
            heard = bytearray()

            async def caller_talks_and_listens() -> None:
                async def listen() -> None:
                    assert caller.media is not None
                    async for item in caller.media.inbound():
                        if isinstance(item, AudioChunk):
                            heard.extend(item.pcm)
                listener = asyncio.create_task(listen())
                assert caller.media is not None
                for chunk in frames(tone(440, 4, 8000), 8000):
                    await caller.media.play(chunk)
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

            await caller_talks_and_listens()
            await caller.media.close()  # the caller hangs up: BYE
            result = await asyncio.wait_for(bridged, 10)
            await agent.media.close()  # Hotline hangs up the agent: BYE to baresip
            await inbound.close()
            await asyncio.sleep(0.5)
    finally:
        await caller_ua.aclose()
        await hotline.aclose()
    assert result.ended_by == "a" and result.reason == "caller_hangup"
    assert recorded["a"] > 100 and recorded["b"] > 100  # the recording hook saw both sides
    loud = np.frombuffer(bytes(heard[-16000:]), "<i2")
    assert abs(dominant_hz(loud.tobytes(), 8000) - 1000) < 20  # the caller heard the agent
    (dump,) = home.glob("dump-*-dec.wav")  # what baresip decoded: the caller's tone
    agent_heard = read_wav(dump)
    tail = agent_heard.data[-agent_heard.sample_rate_hz * 2 * 2:]
    assert abs(dominant_hz(tail, agent_heard.sample_rate_hz) - 440) < 20
