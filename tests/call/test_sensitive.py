"""A card number pressed at a ``sensitive`` collect node, with real parts (Vosk, espeak, the
flow engine, SQLite, the recorder, the TTS cache, structlog): the clear digits reach nothing
on disk nor the logs; the recording keeps silence while the node collects, and the caller
is told. A card number typed at an ordinary node is masked by its Luhn check."""

from __future__ import annotations

import wave
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog

from app.log import configure_logging
from app.tts.cache import cache_key
from app.tts.text import check_text, split_segments
from tests.call.conftest import DATA, Rig
from tests.fakes import PipeMedia

CARD = "4539148803436467"  # Luhn-valid; typed at the sensitive node
REFERENCE = "5425233430109903"  # Luhn-valid too; typed at an ordinary node
NUMBER = "4000000002"


@pytest.fixture
def json_logs() -> Any:
    configure_logging("DEBUG", json_logs=True)
    yield
    structlog.reset_defaults()


def _forms(digits: str) -> list[bytes]:
    """How the number could be written: as is, spaced (the read-back), in JSON, UTF-16."""
    spaced = " ".join(digits)
    return [digits.encode(), spaced.encode(), digits.encode("utf-16-le"),
            spaced.encode("utf-16-le")]


async def _after(rig: Rig, call_id: str, kind: str, after: dict[str, Any],
                 where: Callable[[dict[str, Any]], bool] = lambda e: True) -> dict[str, Any]:
    return await rig.event(call_id, kind, where=lambda e: e["seq"] > after["seq"] and where(e))


def _press(media: PipeMedia, keys: str) -> None:
    for key in keys:
        media.press(key)


async def test_card_digits_never_reach_disk_logs_or_recording(
        make_rig: Callable[..., Any], json_logs: None, capfd: pytest.CaptureFixture[str]) -> None:
    rig: Rig = await make_rig(flows=[DATA / "ko_sensitive.yaml"])
    media = PipeMedia()
    call_id = await rig.start(media, number=NUMBER)
    menu = await rig.event(call_id, "listen")
    media.press("1")
    paused = await _after(rig, call_id, "recording_paused", menu)
    card = await _after(rig, call_id, "listen", paused)
    _press(media, CARD + "#")
    confirm = await _after(rig, call_id, "listen", card)
    media.press("1")
    resumed = await _after(rig, call_id, "recording_resumed", confirm)
    await _after(rig, call_id, "listen", resumed)  # the ordinary node
    _press(media, REFERENCE + "#")
    assert await rig.manager.wait(call_id, 60) == "completed"

    history = rig.session(call_id).events.history if rig.manager.session(call_id) else None
    detail = rig.repo.get_call(call_id)
    assert detail is not None and detail.cdr.outcome == "completed"
    events = [{**e.payload, "type": e.type, "seq": e.seq, "at": e.at} for e in detail.events]
    assert history is None or len(history) == len(events)
    # at the sensitive node: keys, flow steps and the read-back are recorded masked
    keys = [e["digit"] for e in events if e["type"] == "dtmf"]
    assert keys == ["1"] + ["•"] * (len(CARD) + 1) + ["•"] + list(REFERENCE + "#")
    steps = [e for e in events if e["type"] == "flow_step" and e["node"] == "card"]
    assert {"dtmf:[sensitive]"} == {e["input"] for e in steps if e.get("input")}
    assert [e["value"] for e in steps if "value" in e] == ["[sensitive]", "[sensitive]"]
    read_back = next(e["text"] for e in events
                     if e["type"] == "prompt_played" and e["text"].startswith("카드 번호 "))
    assert read_back == "카드 번호 " + " ".join("*" * len(CARD)) + " 맞으면 일번을 눌러 주세요"
    notice = [e for e in events if e["type"] == "prompt_played" and "녹음" in e["text"]]
    assert any("일시 중지" in e["text"] for e in notice)  # the caller was told
    assert detail.cdr.flow_state is not None
    assert detail.cdr.flow_state["slots"]["card"] == "*" * len(CARD)
    # the ordinary node's number is masked by its Luhn check, all but the last 4
    ref_steps = [e for e in events if e["type"] == "flow_step" and e["node"] == "reference"
                 and "value" in e]
    assert ref_steps[0]["value"] == "*" * 12 + REFERENCE[-4:]
    assert detail.cdr.flow_state["slots"]["reference"] == "*" * 12 + REFERENCE[-4:]

    # nothing on disk holds either number: database (and its WAL), recording, TTS cache
    files = [p for p in rig.settings.data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wav" for p in files) and any(p.suffix == ".pcm" for p in files)
    for path in files:
        blob = path.read_bytes()
        for form in _forms(CARD) + _forms(REFERENCE):
            assert form not in blob, f"{form!r} found in {path}"
    # the read-back was synthesized but never cached (a greeting was: the keys are right)
    tts = rig.services.tts
    voice = tts.voice_for("ko")

    def cached(text: str) -> bool:
        keys = [cache_key(s, voice, tts.rate_wpm, 16_000)
                for s in split_segments(check_text(text))]
        return all(tts.cache.path_for(k).is_file() for k in keys)

    assert cached("안녕하세요 이 통화는 녹음됩니다")
    assert not cached("카드 번호 " + " ".join(CARD) + " 맞으면 일번을 눌러 주세요")
    # the recording kept silence while the node collected, though the bot spoke then
    start = events[0]["at"]
    window = (_seconds(paused["at"], start) + 0.5, _seconds(resumed["at"], start) - 0.5)
    assert window[1] - window[0] > 3
    spoke = [s for s in media.sent if window[0] <= s.at_s <= window[1]]
    assert len(spoke) > 50  # the bot read the number back in that window
    with wave.open(str(rig.settings.recordings_dir / detail.recordings[0].path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    hidden = samples[int(window[0] * rate):int(window[1] * rate)]
    assert len(hidden) > 3 * rate and not hidden.any()
    assert np.abs(samples[: int(window[0] * rate), 1]).max() > 1000  # the greeting is there
    # and the logs (JSON lines, this process and the TTS workers) never saw them either
    out, err = capfd.readouterr()
    assert '"event": "call_ended"' in out + err
    for form in _forms(CARD) + _forms(REFERENCE):
        assert form.decode("utf-8", "ignore") not in out + err


def _seconds(at: datetime | str, start: datetime | str) -> float:
    a = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    b = start if isinstance(start, datetime) else datetime.fromisoformat(start)
    return (a - b).total_seconds()


def test_the_sensitive_flag_is_optional_in_flow_files(tmp_path: Path) -> None:
    from app.flows.loader import load_flows

    flows = load_flows(DATA, None)
    assert flows["ko_calls"].nodes["menu"].kind == "menu"
    card = flows["ko_sensitive"].nodes["card"]
    assert getattr(card, "sensitive", None) is True
    assert getattr(flows["ko_sensitive"].nodes["reference"], "sensitive", None) is False
