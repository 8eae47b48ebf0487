"""Text checks and per-voice text preparation for espeak-ng.

Mandarin: espeak-ng's ``cmn-latn-pinyin`` voice reads Hanzi through a per-character
dictionary, so polyphones come out wrong (银行 "yin2 xing2", 重庆 "zhong4 qing4"). Hanzi are
converted to numbered-tone pinyin with pypinyin (phrase-aware: "yin2 hang2", "chong2 qing4"),
which that voice reads as pinyin. espeak applies third-tone sandhi itself, so pypinyin's is off.
"""

from __future__ import annotations

import re
import unicodedata

from app.tts.errors import TtsError

MAX_TEXT_CHARS = 4000
PINYIN_VOICE_SUFFIX = "latn-pinyin"
_HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# A segment ends after sentence punctuation (ASCII only when followed by a space or the end,
# so "3.5" and "www.example.com" stay whole).
_SEGMENT_END = re.compile(r"(?<=[。！？；!?;])|(?<=[.](?=\s))")
_CLAUSE_END = re.compile(r"(?<=[，、：,:](?=\s))|(?<=[，、：])")
MAX_SEGMENT_CHARS = 160


# Letters each voice family reads natively, by the first word of their Unicode name. espeak-ng
# reads anything else as "letter" plus its code point (or "Chinese letter" in English), which
# no caller should hear; emoji (category So) it reads by name ("grinning face"), so they go.
VOICE_SCRIPTS: dict[str, frozenset[str]] = {
    "en": frozenset({"LATIN"}),
    "cmn": frozenset({"LATIN", "CJK", "FULLWIDTH"}),
}


def check_text(text: str) -> str:
    """Return ``text`` cleaned, or raise ``TtsError`` naming why it cannot be spoken."""
    cleaned = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise TtsError(
            "empty_text",
            "nothing to say: the text is empty (or only whitespace and control characters)",
        )
    if len(cleaned) > MAX_TEXT_CHARS:
        raise TtsError(
            "too_long", f"text is {len(cleaned)} characters; at most {MAX_TEXT_CHARS} per request"
        )
    if not any(unicodedata.category(ch)[0] in "LN" for ch in cleaned):
        raise TtsError(
            "unspeakable",
            f"text has no letters or digits to speak (only symbols, emoji or punctuation): "
            f"{text!r}",
        )
    return " ".join(
        "".join(ch for ch in cleaned if unicodedata.category(ch) != "So").split()
    )


def check_voice_can_read(text: str, voice: str) -> None:
    """Raise ``TtsError`` if ``text`` has letters of a script ``voice`` cannot read."""
    scripts = next(
        (v for k, v in VOICE_SCRIPTS.items() if voice.lower().split("-")[0] == k), None
    )
    if scripts is None:
        return
    for ch in text:
        if unicodedata.category(ch).startswith("L"):
            name = unicodedata.name(ch, "UNKNOWN")
            if name.split(" ")[0] not in scripts:
                raise TtsError(
                    "unspeakable", f"voice {voice!r} cannot read {ch!r} ({name}) in {text!r}; "
                    "give this text to a locale whose voice reads that script",
                )


def speakable(text: str) -> bool:
    """Whether ``text`` has a letter or a digit (something a voice says)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def split_segments(text: str) -> list[str]:
    """Cut checked text into sentences, so streaming can start after the first one.

    A sentence longer than ``MAX_SEGMENT_CHARS`` is cut again after its commas, so no one
    render keeps the caller waiting.
    """
    parts = [p.strip() for p in _SEGMENT_END.split(text)]
    segments: list[str] = []
    for part in parts:
        if not part:
            continue
        if segments and not speakable(part):
            segments[-1] += part  # trailing punctuation joins the sentence before it
        else:
            segments.extend(_clauses(part))
    return segments


def _clauses(sentence: str) -> list[str]:
    if len(sentence) <= MAX_SEGMENT_CHARS:
        return [sentence]
    out: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        clause = clause.strip()
        if not clause:
            continue
        if out and (len(out[-1]) + len(clause) <= MAX_SEGMENT_CHARS or not speakable(clause)):
            out[-1] = f"{out[-1]} {clause}" if out[-1][-1:].isascii() else out[-1] + clause
        else:
            out.append(clause)
    return out


def needs_pinyin(voice: str) -> bool:
    return voice.lower().endswith(PINYIN_VOICE_SUFFIX)


def has_hanzi(text: str) -> bool:
    return _HANZI.search(text) is not None


def to_pinyin(text: str) -> str:
    """Hanzi -> numbered-tone pinyin ("您好，欢迎" -> "nin2 hao3 ， huan1 ying2"); rest kept."""
    if not has_hanzi(text):
        return text
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    return " ".join(s.strip() for s in syllables if s.strip())


def prepare(text: str, voice: str) -> str:
    """What espeak-ng is given for ``text`` in ``voice``."""
    return to_pinyin(text) if needs_pinyin(voice) else text
