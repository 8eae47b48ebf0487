"""The real app over real HTTP and real WebRTC: signalling errors, a spoken call, a lost peer.

The server is ``create_app`` on uvicorn (127.0.0.1, free port) with the Korean test model and
a small Korean flow (``data/ko_webrtc.yaml``); the caller is ``app.sim.caller`` (aiortc).
"""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

import httpx
import numpy as np
import pytest

from app.media.audio import Pcm
from app.media.webrtc import WebRtcCallMedia
from app.sim.caller import CallerPeer, CallError, KeyPress, place_call
from tests.fakes import cut_network
from tests.helpers.auth import ADMIN
from tests.helpers.speech import espeak_pcm, have_espeak
from tests.helpers.tones import loud_ms, tone
from tests.helpers.tools import needs
from tests.helpers.wait import wait_until

Live = Any  # tests/webrtc/conftest.py: Live(url, app, settings)

NUMBER = "4000000001"


async def _offer_sdp(**kwargs: Any) -> str:
    peer = CallerPeer(Pcm(b"\x00" * 3200, 16_000), **kwargs)
    try:
        return await peer.create_offer()
    finally:
        await peer.close()


def _only_codecs(sdp: str, names: tuple[str, ...]) -> str:
    """Rewrite the audio m-line of ``sdp`` so it offers only payload types named ``names``."""
    lines = sdp.splitlines()
    keep: set[str] = set()
    for line in lines:
        if line.startswith("a=rtpmap:"):
            pt, name = line[len("a=rtpmap:"):].split(" ", 1)
            if name.split("/")[0].lower() in names:
                keep.add(pt)
    out = []
    for line in lines:
        if line.startswith("m=audio"):
            head = line.split(" ")[:3]
            line = " ".join(head + sorted(keep))
        elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            if line.split(":", 1)[1].split(" ", 1)[0] not in keep:
                continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


async def test_bad_offers_get_a_clear_error_and_leave_nothing_open(live: Live) -> None:
    good = await _offer_sdp()
    no_audio = await _offer_sdp()
    audio_at = no_audio.index("m=audio")
    next_m = no_audio.find("m=", audio_at + 1)
    no_audio = no_audio[:audio_at] + (no_audio[next_m:] if next_m > 0 else "")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"sdp": "hello", "type": "offer"}, 400, "malformed SDP"),
        ({"sdp": "v=0\r\nthis is not sdp\r\n", "type": "offer"}, 400, "line 2"),
        ({"sdp": no_audio, "type": "offer"}, 415, "no audio"),
        ({"sdp": _only_codecs(good, ("g722", "pcma")), "type": "offer"}, 415,
         "no supported audio codec"),
        ({"sdp": "".join(ln + "\r\n" for ln in good.splitlines()
                         if not ln.startswith("a=fingerprint")), "type": "offer"}, 400,
         "DTLS fingerprint"),
        ({"sdp": good, "type": "answer"}, 422, "offer"),
        ({"sdp": good, "type": "offer", "hotline_number": "999"}, 404, "no flow serves"),
        ({"sdp": good, "type": "offer", "locale": "fr"}, 400, "not 'fr'"),
    ]
    before = WebRtcCallMedia.open_connections
    async with httpx.AsyncClient(base_url=live.url, timeout=30, headers=ADMIN) as client:
        for body, status, words in cases:
            body = {"hotline_number": NUMBER, **body}
            response = await client.post("/v1/webrtc/offer", json=body)
            assert response.status_code == status, (body.get("sdp", "")[:40], response.text)
            assert words in str(response.json()["detail"]), response.text
        assert WebRtcCallMedia.open_connections == before
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/v1/calls")).json()["items"] == []  # no call started
    # ``hotline call`` and the bench get the server's reason too
    with pytest.raises(CallError, match="no flow serves"):
        await place_call(live.url, Pcm(b"\x00" * 3200, 16_000), hotline_number="999")


async def test_the_softphone_page_and_its_ice_config_are_served(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=30, headers=ADMIN) as client:
        page = await client.get("/phone")
        script = await client.get("/static/phone/phone.js")
        missing = await client.get("/static/phone/secrets.txt")
        config = await client.get("/v1/webrtc/config")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="call"' in page.text and "/static/phone/phone.js" in page.text
    assert script.status_code == 200 and "/v1/webrtc/offer" in script.text
    assert missing.status_code == 404
    assert config.json() == {"ice_servers": []}


@needs(have_espeak(), "espeak-ng")
async def test_a_spoken_menu_choice_over_webrtc_is_recognized_and_recorded(live: Live) -> None:
    said = espeak_pcm("배송", "ko", 16_000).data
    wav = Pcm(bytes(16_000 * 2 * 5) + said + bytes(16_000 * 2 * 2), 16_000)
    result = await place_call(live.url, wav, hotline_number=NUMBER, locale="ko",
                              caller_number="+821012345678", grace_s=6, timeout_s=40)
    assert result.ended_by == "server"  # the flow said goodbye and hung up
    types = [e["type"] for e in result.events]
    assert types[0] == "call_started" and "call_ended" in types
    heard = [e["text"] for e in result.events if e["type"] == "transcript" and e["is_final"]]
    assert "배송" in heard
    assert loud_ms(result.bot_audio.data) > 1500  # the caller heard the prompts
    async with httpx.AsyncClient(base_url=live.url, timeout=30, headers=ADMIN) as client:
        detail = await _call_detail(client, result.call_id)
        assert detail["cdr"]["outcome"] == "completed"
        assert "one" in detail["flow_path"]
        # the API gives the recording's URL, never the server's file path
        [saved] = detail["recordings"]
        assert "path" not in saved and str(live.settings.data_dir) not in str(detail)
        assert saved["url"] == f"/v1/calls/{result.call_id}/recording?id={saved['id']}"
        recording = await client.get(saved["url"])
    assert recording.status_code == 200
    with wave.open(io.BytesIO(recording.content)) as rec:
        assert rec.getnchannels() == 2
        frames = np.frombuffer(rec.readframes(rec.getnframes()), dtype="<i2").reshape(-1, 2)
    assert loud_ms(np.ascontiguousarray(frames[:, 0]).tobytes()) > 200  # the caller, left
    assert loud_ms(np.ascontiguousarray(frames[:, 1]).tobytes()) > 1500  # the bot, right


async def test_keys_over_the_data_channel_drive_the_flow(live: Live) -> None:
    result = await place_call(live.url, Pcm(bytes(16_000 * 2 * 2), 16_000),
                              hotline_number=NUMBER, dtmf=[KeyPress("1")], timeout_s=40)
    assert result.dtmf_sent == ["1"]
    types = [e["type"] for e in result.events]
    assert types.count("dtmf") == 1 and types.index("listen") < types.index("dtmf")
    assert result.notes == []  # sent when the menu listened, not during a prompt
    assert result.ended_by == "server"
    async with httpx.AsyncClient(base_url=live.url, timeout=30, headers=ADMIN) as client:
        detail = await _call_detail(client, result.call_id)
    assert detail["cdr"]["outcome"] == "completed"


async def test_a_vanished_caller_and_a_dead_ice_end_the_call_with_a_record(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=30, headers=ADMIN) as client:
        # 1. the caller vanishes mid-call (no BYE): the media timeout ends and records it
        vanished = CallerPeer(Pcm(tone(300, 2.0), 16_000))
        try:
            answer = await _post_offer(client, await vanished.create_offer())
            await vanished.accept_answer(answer["sdp"])
            await asyncio.wait_for(vanished.connected.wait(), 10)
            leg = live.app.state.calls.session(answer["call_id"]).media
            await wait_until(lambda: leg.received_chunks >= 25,  # 0.5 s of the caller's audio
                             what="the server hears the caller")
            cut_network(vanished.pc)
            detail = await _call_detail(client, answer["call_id"], wait_end_s=20)
            assert detail["cdr"]["outcome"] == "connection_lost"
            assert detail["cdr"]["end_reason"] in ("media_timeout", "network_lost")
            assert detail["cdr"]["media"]["transport"] == "webrtc"
            assert detail["cdr"]["media"]["codec"] in ("opus/48000", "pcmu/8000")
            assert [e["type"] for e in detail["events"]][-1] == "call_ended"
        finally:
            await vanished.close()
        # 2. the offer is answered but ICE never connects (the caller never applies the answer)
        silent = CallerPeer(Pcm(b"\x00" * 3200, 16_000))
        try:
            answer = await _post_offer(client, await silent.create_offer())
            detail = await _call_detail(client, answer["call_id"], wait_end_s=20)
            assert detail["cdr"]["outcome"] == "not_connected"
            assert detail["cdr"]["end_reason"] == "ice_failed"
        finally:
            await silent.close()
        assert live.app.state.calls.active() == []
        assert (await client.get("/healthz")).status_code == 200


async def _post_offer(client: httpx.AsyncClient, sdp: str) -> dict[str, Any]:
    response = await client.post("/v1/webrtc/offer", json={
        "sdp": sdp, "type": "offer", "hotline_number": NUMBER})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _call_detail(client: httpx.AsyncClient, call_id: str,
                       wait_end_s: float = 10) -> dict[str, Any]:
    """The call's record once its CDR is final (the session writes it as the call ends)."""
    detail: dict[str, Any] = {}
    for _ in range(int(wait_end_s / 0.1)):
        response = await client.get(f"/v1/calls/{call_id}")
        if response.status_code == 200:
            detail = response.json()
            if detail.get("cdr", {}).get("ended_at"):
                return detail
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_id} has no final record after {wait_end_s}s: {detail}")
