"""Calls over SIP/RTP into the real app (in process): the Korean Vosk model hears a grammar
word sent as G.711, keys by RFC 4733 and SIP INFO, and both survive 5-10% loss with
20-200 ms jitter (a lossy UDP relay in the caller's RTP path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.media.audio import Pcm
from app.media.rtp_leg import RtpCallMedia
from app.sim.cli import serve_in_process
from app.sip.simcaller import SipCallResult, place_sip_call
from tests.helpers.auth import ADMIN
from tests.helpers.live import Live, live_settings
from tests.helpers.speech import espeak_pcm, have_espeak
from tests.helpers.tools import needs
from tests.helpers.udp_relay import LossyRelay
from tests.sip.conftest import KO_FLOW, KO_NUMBER


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    settings = live_settings(tmp_path, flow=KO_FLOW, sip_enabled=True, sip_port=0,
                             rtp_timeout_s=20, intent_model_dir=tmp_path / "no-intents")
    # the Korean flow needs no intent model: skipping it keeps start-up short
    async with serve_in_process(settings) as served:
        yield Live(served.url, served.app, served.settings)


async def _detail(live: Live) -> dict[str, Any]:
    """The last call's record, once the call has finished (the BYE can come first)."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30, headers=ADMIN) as client:
        call_id = (await client.get("/v1/calls")).json()["items"][0]["id"]
        if call_id in live.app.state.calls.active():
            await live.app.state.calls.wait(call_id, 30)
        return dict((await client.get(f"/v1/calls/{call_id}")).json())


async def _call(live: Live, pcm: Pcm, *, loss: float = 0.0, jitter_ms: tuple[int, int] = (0, 0),
                **kwargs: Any) -> tuple[SipCallResult, LossyRelay | None]:
    relay: list[LossyRelay] = []

    async def through_relay(leg: RtpCallMedia) -> None:
        assert leg.remote is not None
        lossy = LossyRelay(leg.remote, loss=loss, jitter_ms=jitter_ms)
        relay.append(lossy)
        leg.pin_remote(*await lossy.start())

    sip = live.app.state.sip
    try:
        result = await place_sip_call(
            "127.0.0.1", sip.port, pcm, number=KO_NUMBER, grace_s=25, timeout_s=90,
            on_answered=through_relay if loss or jitter_ms[1] else None, **kwargs)
    finally:
        for r in relay:
            r.close()
    return result, relay[0] if relay else None


def _said(word: str) -> Pcm:
    speech = espeak_pcm(word, "ko", 8000).data
    return Pcm(bytes(8000 * 2 * 6) + speech + bytes(8000 * 2 * 2), 8000)


def _heard(detail: dict[str, Any]) -> list[str]:
    return [e["payload"]["text"] for e in detail["events"]
            if e["type"] == "transcript" and e["payload"].get("is_final")]


@needs(have_espeak(), "espeak-ng")
@pytest.mark.parametrize(("loss", "jitter_ms"), [(0.0, (0, 0)), (0.05, (20, 200))])
async def test_a_spoken_grammar_word_over_g711_is_recognized(live: Live, loss: float,
                                                             jitter_ms: tuple[int, int]) -> None:
    result, relay = await _call(live, _said("영업시간"), loss=loss, jitter_ms=jitter_ms)
    assert result.dial.answered and result.ended_by == "server"  # the flow hung up
    detail = await _detail(live)
    assert detail["cdr"]["channel"] == "sip" and detail["cdr"]["outcome"] == "completed"
    assert "영업시간" in _heard(detail)
    (ended,) = [e["payload"] for e in detail["events"] if e["type"] == "call_ended"]
    media = ended["media"]  # the transport facts in the call record
    assert ended["end_reason"] == "local_close"  # the flow hung up: our BYE
    assert media["transport"] == "sip" and media["trunk"] == "local"
    assert media["codec"] == "pcmu/8000" and media["packets_received"] > 300
    assert media["jitter_ms"] >= 0 and "loss_pct" in media
    if relay is not None:
        assert 0 < media["loss_pct"] < 15 and media["concealed_frames"] > 0
    assert "one" in detail["flow_path"]
    assert result.bot_audio.duration_s > 3  # the caller heard the prompts
    if relay is not None:
        assert relay.dropped > 0 and relay.sent > 300


@pytest.mark.parametrize(("loss", "mode"), [(0.05, "rfc4733"), (0.10, "rfc4733"),
                                            (0.10, "info")])
async def test_the_keypad_works_through_loss_and_jitter(live: Live, loss: float,
                                                        mode: str) -> None:
    silence = Pcm(bytes(8000 * 2 * 8), 8000)
    result, relay = await _call(live, silence, loss=loss, jitter_ms=(20, 200),
                                dtmf=[("1", 5.0)], dtmf_mode=mode)
    assert result.dial.answered and result.ended_by == "server"
    detail = await _detail(live)
    assert [e["payload"]["digit"] for e in detail["events"] if e["type"] == "dtmf"] == ["1"]
    assert "one" in detail["flow_path"] and detail["cdr"]["outcome"] == "completed"
    info = result.media_info  # the caller's view of the bot's audio: clean way back
    assert info["packets_received"] > 100 and info["malformed_rtp"] == 0
    assert relay is not None and relay.dropped > 0
