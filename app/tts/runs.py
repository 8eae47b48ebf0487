"""Bilingual text: split it into runs by script and give each run a locale with a voice.

A 400 line's greeting is bilingual ("中文服务请按1。For English, press 2."): the en-us voice
cannot read Hanzi and the Mandarin voice reads English words as pinyin. So letters are
grouped into runs by script (Han, Latin, Hangul, ...); digits, punctuation and spaces belong
to the run they follow. Each run is spoken in the text's own locale when that locale's voice
reads the script as its language, else in the first configured locale whose voice does, else
in the text's locale if its voice can at least read the letters (the pinyin voice reads
Latin). Characters no configured voice can read are reported, never spoken as "letter 4e2d".
Pure functions, no I/O: ``hotline flows check`` uses them without starting espeak.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from app.tts.errors import TtsError

# Scripts each voice family reads as its own language (first word of the Unicode name).
NATIVE_SCRIPTS: dict[str, frozenset[str]] = {
    "cmn": frozenset({"CJK"}),
    "yue": frozenset({"CJK"}),
    "zh": frozenset({"CJK"}),
    "ja": frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    "ko": frozenset({"HANGUL"}),
    "ru": frozenset({"CYRILLIC"}),
    "uk": frozenset({"CYRILLIC"}),
    "el": frozenset({"GREEK"}),
    "ar": frozenset({"ARABIC"}),
    "he": frozenset({"HEBREW"}),
    "th": frozenset({"THAI"}),
}
LATIN_ONLY = frozenset({"LATIN"})  # every other espeak-ng voice family
# Scripts a voice can also read although they are not its language.
ALSO_READS: dict[str, frozenset[str]] = {"cmn": frozenset({"LATIN"})}


@dataclass(frozen=True, slots=True)
class Run:
    text: str
    locale: str


def voice_family(voice: str) -> str:
    """"en-us" -> "en", "cmn-latn-pinyin" -> "cmn", "sit/cmn" -> "cmn"."""
    return voice.lower().rsplit("/", 1)[-1].split("-")[0]


def native_scripts(voice: str) -> frozenset[str]:
    return NATIVE_SCRIPTS.get(voice_family(voice), LATIN_ONLY)


def readable_scripts(voice: str) -> frozenset[str]:
    return native_scripts(voice) | ALSO_READS.get(voice_family(voice), frozenset())


def script_of(ch: str) -> str | None:
    """The script of a letter ("CJK", "LATIN", "HANGUL", ...); None for digits, spaces,
    punctuation and symbols, which belong to any run."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    words = unicodedata.name(ch, "UNKNOWN").split(" ")
    if words[0] in ("FULLWIDTH", "HALFWIDTH") and len(words) > 1:
        return words[1]
    return words[0]


def _locale_for(script: str, locale: str, voices: dict[str, str]) -> str | None:
    own = voices.get(locale)
    if own is not None and script in native_scripts(own):
        return locale
    for other, voice in voices.items():
        if script in native_scripts(voice):
            return other
    if own is not None and script in readable_scripts(own):
        return locale
    return None


def _unreadable(ch: str, locale: str, voices: dict[str, str]) -> TtsError:
    name = unicodedata.name(ch, f"U+{ord(ch):04X}")
    have = ", ".join(f"{loc}={v}" for loc, v in voices.items()) or "none"
    return TtsError(
        "unspeakable", f"no configured voice reads {ch!r} ({name}) in {locale!r} text "
        f"(voices: {have}); add a voice for that script to tts_voices or rewrite the text",
    )


def split_runs(text: str, locale: str, voices: dict[str, str]) -> list[Run]:
    """Runs of ``text`` (already cleaned) with the locale that speaks each one.

    ``voices`` maps each configured locale to its espeak-ng voice; ``locale`` must be one of
    them. Raises ``TtsError("unspeakable")`` naming the first letter no voice can read.
    """
    locales: list[str | None] = []  # each run's locale (None while only neutral chars)
    chars: list[list[str]] = []
    for ch in text:
        script = script_of(ch)
        target = None if script is None else _locale_for(script, locale, voices)
        if script is not None and target is None:
            raise _unreadable(ch, locale, voices)
        if not chars or (target is not None and locales[-1] not in (None, target)):
            locales.append(target)
            chars.append([ch])
            continue
        chars[-1].append(ch)
        if target is not None:
            locales[-1] = target
    out = [Run("".join(c).strip(), loc or locale) for loc, c in zip(locales, chars, strict=True)]
    return [r for r in out if r.text]


def unreadable_chars(text: str, locale: str, voices: dict[str, str]) -> list[str]:
    """Every distinct letter of ``text`` that no configured voice can read, in order."""
    found: list[str] = []
    for ch in dict.fromkeys(text):
        script = script_of(ch)
        if script is not None and _locale_for(script, locale, voices) is None:
            found.append(ch)
    return found
