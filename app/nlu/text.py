"""Text normalisation shared by intent data checks, features and evaluation."""

from __future__ import annotations

import re
import unicodedata

_FILLERS_ZH = re.compile(r"[嗯呃额唔]+")
_FILLERS_EN = re.compile(r"\b(?:uh+|um+|umm+|erm+|hmm+|er|ah)\b")
_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def normalize_text(text: str) -> str:
    """NFKC, lower case, punctuation and ASR fillers removed, spaces collapsed.

    Fillers are kept when nothing else is left: a lone "嗯" or "uh huh" is an answer.
    """
    out = unicodedata.normalize("NFKC", text).lower()
    out = _SPACES.sub(" ", _PUNCT.sub(" ", out)).strip()
    stripped = _SPACES.sub(" ", _FILLERS_EN.sub(" ", _FILLERS_ZH.sub(" ", out))).strip()
    return stripped or out


def feature_text(text: str) -> str:
    """``normalize_text`` with digit strings (order and phone numbers) masked as ``#``:
    which number a caller says never tells what they want."""
    from app.nlu.numbers import en_digit_runs, zh_digit_runs

    norm = normalize_text(text)
    runs = zh_digit_runs(norm) if has_cjk(norm) else en_digit_runs(norm)
    for run in sorted(runs, key=lambda r: r.start, reverse=True):
        norm = norm[: run.start] + " # " + norm[run.end :]
    return _SPACES.sub(" ", norm).strip()


def canonical_example(text: str) -> str:
    """Key used to detect the same example listed twice (spaces ignored)."""
    return normalize_text(text).replace(" ", "")


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def base_locale(locale: str) -> str:
    """``zh-CN`` / ``zh_cn`` / ``ZH`` -> ``zh``."""
    return locale.strip().replace("_", "-").split("-")[0].lower()
