"""Text normalisation shared by intent data checks, features and evaluation.

Two feature schemes (a model records which one it was trained with):

- scheme 1 (models trained before recognizer-robust features): fillers removed, digit
  strings of 3+ digits masked as ``#``;
- scheme 2: also every number, spoken or written, in either language (``三百五十``,
  ``350``, ``twelve``, ``two hundred and five``) masked as ``#``, and more fillers
  (``那个`` / ``就是`` at a pause, ``you know``, ``i mean``), so "退我三百五十块" and
  "退我350块" are the same features, and so are "7 days" and "seven days".
"""

from __future__ import annotations

import re
import unicodedata

LATEST_SCHEME = 2

_FILLERS_ZH = re.compile(r"[嗯呃额唔]+")
_FILLERS_EN = re.compile(r"\b(?:uh+|um+|umm+|erm+|hmm+|er|ah)\b")
# scheme 2: more fillers. "那个"/"就是" only when said alone between pauses (ASR word
# boundaries), never inside "那个订单".
_FILLERS_ZH_2 = re.compile(r"(?:^|(?<=\s))(?:那个|就是|然后|这个)(?=\s|$)|[嗯呃额唔哦噢]+")
_FILLERS_EN_2 = re.compile(
    r"\b(?:uh+|um+|umm+|erm+|hmm+|mm+|er|ah|eh|you know|i mean|like i said|sort of)\b"
)
_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def normalize_text(text: str, scheme: int = 1) -> str:
    """NFKC, lower case, punctuation and ASR fillers removed, spaces collapsed.

    Fillers are kept when nothing else is left: a lone "嗯" or "uh huh" is an answer.
    """
    out = unicodedata.normalize("NFKC", text).lower()
    out = _SPACES.sub(" ", _PUNCT.sub(" ", out)).strip()
    zh, en = (_FILLERS_ZH, _FILLERS_EN) if scheme < 2 else (_FILLERS_ZH_2, _FILLERS_EN_2)
    stripped = _SPACES.sub(" ", en.sub(" ", zh.sub(" ", out))).strip()
    return stripped or out


def feature_text(text: str, scheme: int = 1) -> str:
    """``normalize_text`` with numbers masked as ``#``: which number a caller says never
    tells what they want. Scheme 1 masks digit strings only; scheme 2 every number."""
    from app.nlu.numbers import en_digit_runs, zh_digit_runs

    norm = normalize_text(text, scheme)
    if scheme >= 2:
        from app.nlu.numbers import mask_numbers

        return mask_numbers(norm, has_cjk(norm))
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
