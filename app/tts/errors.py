"""The one error the speech synthesis part raises: a value with a machine-readable reason."""

from __future__ import annotations

from typing import Literal

TtsReason = Literal[
    "unknown_locale",  # no voice configured for the locale
    "empty_text",  # nothing but whitespace
    "unspeakable",  # no letters or digits, or the voice produced silence
    "too_long",  # more text than one request may carry
    "bad_prompt",  # a recorded prompt WAV Hotline cannot use
    "voice_missing",  # a configured voice is not installed in espeak-ng
    "timeout",  # the worker did not answer within tts_timeout_s (it is replaced)
    "worker_failed",  # the worker died or could not start (it is replaced)
    "overloaded",  # too many requests waiting (tts_queue_max)
    "closed",  # the service is not running
]


class TtsError(Exception):
    """Speech synthesis failed; ``reason`` says which way, the message says what to fix."""

    def __init__(self, reason: TtsReason, message: str) -> None:
        super().__init__(message)
        self.reason: TtsReason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message
