"""The synthesis worker process: pyttsx3 + espeak-ng, one request at a time.

Runs inside the generic worker pool (``app.workers``): the zygote imports this module and runs
``preload`` (pyttsx3 and the pypinyin dictionary, before any thread exists), then forks a
worker that runs ``main``. pyttsx3's engine is bound to the thread that created it and
``runAndWait`` blocks, so each engine lives alone in its worker process. Frames (see
``app.workers.protocol``):

- on start: ``{"ready": true, "pid", "sample_rate_hz", "voices": [...]}``
- request: ``{"id", "text", "voice", "rate_wpm"}``
- answer: ``{"id", "ok": true, "sample_rate_hz"}`` with s16le mono PCM as the payload, or
  ``{"id", "ok": false, "message"}``.

pyttsx3's espeak driver ``print``s to stdout; the zygote's stdout is /dev/null.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import tempfile
import threading
import wave
from pathlib import Path
from typing import Any

from app.tts.text import prepare

ESPEAK_RATE_HZ = 22_050  # what pyttsx3's espeak driver writes (espeak-ng's native rate)
RENDER_WAIT_S = 120.0  # the parent's own timeout (tts_timeout_s) normally fires first


class RenderError(Exception):
    """espeak-ng gave no usable audio for one request (answered, not fatal)."""


def voice_list(engine: Any) -> list[dict[str, Any]]:
    return [
        {"id": v.id, "name": v.name, "languages": list(v.languages or [])}
        for v in engine.getProperty("voices")
    ]


def patch_espeak_driver() -> None:
    """Fix pyttsx3's espeak driver (2.99) losing audio.

    Its synth callback writes the WAV on the "message terminated" event *before* appending
    the samples delivered in that same callback: a short utterance that arrives in one buffer
    is saved empty (about 1 render in 150 here) and longer ones lose their last buffer. The
    wrapper appends the samples first, then lets the driver handle the events.
    """
    from pyttsx3.drivers import espeak

    original = espeak.EspeakDriver._onSynth
    if getattr(original, "_hotline_fixed", False):
        return

    def on_synth(self: Any, wav: Any, numsamples: int, events: Any) -> int:
        if numsamples > 0 and self._speaking:
            self._data_buffer += ctypes.string_at(wav, numsamples * ctypes.sizeof(ctypes.c_short))
        return int(original(self, wav, 0, events))

    on_synth._hotline_fixed = True  # type: ignore[attr-defined]
    espeak.EspeakDriver._onSynth = on_synth


class Synth:
    """One pyttsx3 engine; ``render`` returns PCM at ``ESPEAK_RATE_HZ``.

    pyttsx3 2.99 runs espeak-ng asynchronously (callbacks on espeak's own thread) and its
    ``runAndWait`` returns as soon as synthesis has *started*; the WAV is written later, on
    the "finished-utterance" notification. So ``render`` waits for that notification.
    """

    def __init__(self, work_dir: Path) -> None:
        import pyttsx3

        patch_espeak_driver()
        self.engine = pyttsx3.init("espeak")
        self.voices = voice_list(self.engine)
        self.out_path = work_dir / "out.wav"
        self._finished = threading.Event()
        self.engine.connect("finished-utterance", self._on_finished)

    def _on_finished(self, name: object = None, completed: bool = True) -> None:
        self._finished.set()

    def render(self, text: str, voice: str, rate_wpm: int) -> tuple[bytes, int]:
        self.engine.setProperty("voice", voice)
        self.engine.setProperty("rate", rate_wpm)
        self.out_path.unlink(missing_ok=True)
        self._finished.clear()
        self.engine.save_to_file(prepare(text, voice), str(self.out_path))
        self.engine.runAndWait()
        if not self._finished.wait(RENDER_WAIT_S):
            raise RenderError(f"espeak-ng did not finish within {RENDER_WAIT_S:g} s")
        if not self.out_path.exists():
            raise RenderError(f"espeak-ng wrote no audio for voice {voice!r}")
        try:
            with wave.open(str(self.out_path), "rb") as wav:
                return wav.readframes(wav.getnframes()), wav.getframerate()
        except (wave.Error, EOFError) as exc:
            raise RenderError(f"espeak-ng wrote an unreadable WAV for voice {voice!r}") from exc


def handle(synth: Synth, req: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Answer one request; a bad request is an error answer, not a crash."""
    try:
        req_id = int(req["id"])
        text, voice, rate_wpm = str(req["text"]), str(req["voice"]), int(req["rate_wpm"])
    except (ValueError, KeyError, TypeError) as exc:
        return {"id": req.get("id", -1), "ok": False, "message": f"bad request: {exc!r}"}, b""
    try:
        pcm, rate_hz = synth.render(text, voice, rate_wpm)
    except RenderError as exc:
        return {"id": req_id, "ok": False, "message": str(exc)}, b""
    return {"id": req_id, "ok": True, "sample_rate_hz": rate_hz}, pcm


def preload(args: dict[str, Any]) -> None:
    """In the zygote: import pyttsx3's espeak driver and load pypinyin's dictionary once."""
    import pyttsx3.drivers.espeak  # noqa: F401  (loads the library; the engine starts per worker)

    prepare("预热", "cmn-latn-pinyin")


def main() -> None:
    """Serve synthesis requests on this worker's channel until the server closes it."""
    from app.workers.child import channel, scratch_dir

    chan = channel()
    with contextlib.ExitStack() as stack:
        work_dir = scratch_dir() or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="tts-"))
        )
        synth = Synth(work_dir)
        chan.send({"ready": True, "pid": os.getpid(), "sample_rate_hz": ESPEAK_RATE_HZ,
                   "voices": synth.voices})
        while (frame := chan.recv()) is not None:
            header, payload = handle(synth, frame.header)
            chan.send(header, payload)
