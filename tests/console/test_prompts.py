"""The prompts page on a real server with the real TTS (espeak-ng workers): every prompt of
the flow and the built-in texts are listed; Play renders a WAV through the TTS (slots filled
with samples, or refused naming the slot); an uploaded recording is checked (not WAV, broken,
stereo, too long, silent: 422 with the field and the reason), then said instead of the voice
on the path calls take (``TtsService.stream``), removable, each change audited; other roles
are refused. ``check_recording`` alone: what it accepts and converts."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from scipy.io import wavfile

from app.auth import Role
from app.media.audio import rms_dbfs
from app.sim.cli import serve_in_process
from app.tts.recordings import check_recording, prompt_key
from tests.helpers.auth import ADMIN, create_user, sign_in
from tests.helpers.live import live_settings
from tests.helpers.speech import have_espeak
from tests.helpers.tones import dominant_hz, tone
from tests.helpers.tools import needs

GREETING = "안녕하세요 이 통화는 녹음됩니다"  # tests/webrtc/data/ko_webrtc.yaml, node greeting
RATE_HZ = 16_000


def wav(samples: np.ndarray, rate_hz: int = RATE_HZ) -> bytes:
    out = io.BytesIO()
    wavfile.write(out, rate_hz, samples)
    return out.getvalue()


def tone_wav(freq_hz: float, seconds: float, rate_hz: int = RATE_HZ) -> bytes:
    return wav(np.frombuffer(tone(freq_hz, seconds, rate_hz), dtype="<i2"), rate_hz)


def pcm_of(blob: bytes) -> tuple[bytes, int, int]:
    with wave.open(io.BytesIO(blob), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate(), w.getnchannels()


def test_check_recording_accepts_mono_wavs_and_says_what_is_wrong_with_the_rest() -> None:
    pcm = check_recording(tone_wav(440, 1.0))
    assert pcm.sample_rate_hz == RATE_HZ and abs(pcm.duration_s - 1.0) < 0.01
    floats = np.frombuffer(tone(440, 1.0, 22_050), dtype="<i2").astype(np.float32) / 32768
    converted = check_recording(wav(floats, 22_050))  # float PCM: converted to 16-bit
    assert converted.sample_rate_hz == 22_050 and abs(dominant_hz(converted.data, 22_050)
                                                      - 440) < 10
    stereo = np.stack([floats, floats], axis=1)
    refusals = {
        b"ID3\x03" + b"\x00" * 400: "not a WAV file",
        b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\x01" * 6: "a broken WAV file",
        wav(stereo): "2 channels: a prompt is mono",
        tone_wav(440, 31, 8_000): "31.0 s long: a prompt is at most 30 s",
        tone_wav(440, 0.1): "at least 0.3 s",
        wav(np.zeros(RATE_HZ, dtype=np.int16)): "silent",
        wav(np.zeros(RATE_HZ, dtype=np.int16), 96_000): "out of range",
        b"RIFF" + struct.pack("<I", 2_000_000) + b"WAVE" + b"\x00" * 1_000_000: "bytes: a "
        "recording is at most",
    }
    for blob, words in refusals.items():
        with pytest.raises(ValueError, match=words):
            check_recording(blob)


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    settings = live_settings(tmp_path, asr_models={},
                             intent_model_dir=tmp_path / "no-intent-model")
    async with serve_in_process(settings) as server:
        yield server.url, server.app


@needs(have_espeak(), "espeak-ng")
async def test_prompts_play_upload_a_recording_calls_say_it_and_remove_it(
        served: tuple[str, Any]) -> None:
    url, app = served
    async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=120) as client:
        listed = (await client.get("/v1/config/prompts")).json()
        by_where = {(p["flow"], p["where"], p["locale"]): p for p in listed["prompts"]}
        greeting = by_where[("ko_webrtc", "greeting.prompt", "ko")]
        assert greeting["text"] == GREETING and greeting["recording"] is None
        assert greeting["key"] == prompt_key("ko", GREETING)
        assert by_where[("", "goodbye", "en")]["text"] == "Thank you for calling. Goodbye."
        page = await client.get("/console/prompts")
        assert page.status_code == 200 and GREETING in page.text
        assert "new flow version" in page.text  # how a text is edited

        # Play: the real TTS renders the text
        played = await client.get("/v1/config/prompts/play",
                                  params={"locale": "ko", "text": GREETING})
        assert played.status_code == 200, played.text
        assert played.headers["content-type"] == "audio/wav"
        assert played.headers["x-prompt-source"] == "tts"
        spoken, rate_hz, channels = pcm_of(played.content)
        assert (rate_hz, channels) == (RATE_HZ, 1)
        assert len(spoken) / 2 / RATE_HZ > 1.0 and rms_dbfs(spoken) > -40
        # slots: samples, or a reason
        kept = by_where[("", "callback_kept", "en")]
        assert kept["slots"] == ["number"]
        sample = await client.get("/v1/config/prompts/play",
                                  params={"locale": "en", "text": kept["text"]})
        assert sample.status_code == 200, sample.text
        unknown = await client.get("/v1/config/prompts/play",
                                   params={"locale": "en", "text": "Hello {pet_name}."})
        assert unknown.status_code == 422
        assert "{pet_name} has no sample value" in unknown.text

        # bad uploads: the field and the reason, nothing stored
        key = greeting["key"]
        floats = np.frombuffer(tone(440, 1.0), dtype="<i2")
        bad = {b"just text, no audio": "not a WAV file",
               wav(np.stack([floats, floats], axis=1)): "2 channels",
               tone_wav(440, 31, 8_000): "at most 30 s",
               b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00": "a broken WAV file"}
        for blob, words in bad.items():
            refused = await client.post(f"/v1/config/prompts/{key}/recording",
                                        files={"file": ("take.wav", blob, "audio/wav")})
            assert refused.status_code == 422, refused.text
            detail = refused.json()["detail"][0]
            assert detail["loc"] == ["body", "file"] and words in detail["msg"], detail
        caller_data = await client.post(f"/v1/config/prompts/{kept['key']}/recording",
                                        files={"file": ("t.wav", tone_wav(440, 1), "x")})
        assert caller_data.status_code == 422 and "caller data" in caller_data.text
        missing = await client.post(f"/v1/config/prompts/{'0' * 20}/recording",
                                    files={"file": ("t.wav", tone_wav(440, 1), "x")})
        assert missing.status_code == 404
        assert app.state.tts.recordings.all() == {}

        # a good upload: calls say it instead of the voice
        take = tone_wav(700, 1.5)
        uploaded = await client.post(f"/v1/config/prompts/{key}/recording",
                                     files={"file": ("take.wav", take, "audio/wav")})
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["duration_s"] == 1.5 and uploaded.json()["text"] == GREETING
        expected, _, _ = pcm_of(take)
        played = await client.get("/v1/config/prompts/play",
                                  params={"locale": "ko", "text": GREETING})
        assert played.headers["x-prompt-source"] == "recording"
        assert pcm_of(played.content)[0] == expected
        chunks = [c.pcm async for c in app.state.tts.stream(GREETING, "ko", RATE_HZ)]
        heard = b"".join(chunks)  # what a call's player sends (20 ms frames, last padded)
        assert heard[:len(expected)] == expected and not heard[len(expected):].strip(b"\0")
        voice = await client.get("/v1/config/prompts/play",
                                 params={"locale": "ko", "text": GREETING, "source": "tts"})
        assert voice.headers["x-prompt-source"] == "tts"
        assert pcm_of(voice.content)[0] == spoken
        assert (await client.get("/v1/config/prompts")).json()["prompts"][0]["recording"]

        # roles other than admin are refused
        await create_user(client, url, "prompt-analyst", Role.ANALYST)
        cookies, csrf = await sign_in(client, url, "prompt-analyst")
        async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60) as analyst:
            for method, path in (("DELETE", f"/v1/config/prompts/{key}/recording"),
                                 ("GET", "/v1/config/prompts")):
                denied = await analyst.request(method, path, headers={"X-CSRF-Token": csrf})
                assert denied.status_code == 403, (path, denied.text)
            denied = await analyst.post(f"/v1/config/prompts/{key}/recording",
                                        headers={"X-CSRF-Token": csrf},
                                        files={"file": ("t.wav", take, "audio/wav")})
            assert denied.status_code == 403

        # removed: the voice again; both changes audited
        removed = await client.delete(f"/v1/config/prompts/{key}/recording")
        assert removed.status_code == 200, removed.text
        again = await client.get("/v1/config/prompts/play",
                                 params={"locale": "ko", "text": GREETING})
        assert again.headers["x-prompt-source"] == "tts"
        assert (await client.delete(f"/v1/config/prompts/{key}/recording")).status_code == 404
        audit = (await client.get("/v1/audit", params={"target": f"prompt:{key}"})
                 ).json()["items"]
        actions = {a["action"]: a for a in audit}
        assert actions["prompt.record"]["after"]["text"] == GREETING
        assert actions["prompt.record"]["before"] is None
        assert actions["prompt.unrecord"]["before"]["duration_s"] == 1.5
        assert "prompt-analyst" not in {a["actor"] for a in audit}
