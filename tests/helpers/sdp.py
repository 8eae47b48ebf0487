"""A real browser's SDP offer and one-line edits of it, for the offer checks' bad cases.

``tests/media/data/chromium_offer.sdp`` is the offer headless Chromium 156 made for an audio
track and a data channel (as the softphone does).
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM_OFFER = (Path(__file__).resolve().parent.parent / "media" / "data"
                  / "chromium_offer.sdp").read_text()
LINES = CHROMIUM_OFFER.replace("\r\n", "\n").rstrip("\n").split("\n")


def replaced(prefix: str, new: str) -> str:
    """The offer with the first line starting ``prefix`` replaced by ``new``."""
    at = next(i for i, line in enumerate(LINES) if line.startswith(prefix))
    return "\r\n".join([*LINES[:at], new, *LINES[at + 1:]]) + "\r\n"


def cut_after(prefix: str, keep: str) -> str:
    """The offer cut off inside the first line starting ``prefix``: that line is ``keep``."""
    at = next(i for i, line in enumerate(LINES) if line.startswith(prefix))
    return "\r\n".join([*LINES[:at], keep])


def without(prefix: str) -> str:
    return "\r\n".join(line for line in LINES if not line.startswith(prefix)) + "\r\n"
