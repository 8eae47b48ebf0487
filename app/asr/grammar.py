"""Grammar mode: restrict Vosk to a phrase list, and score what came back honestly.

Vosk forces any speech onto the grammar's words. Models with ``[unk]`` in their vocabulary
get it added as a garbage word; models without it (the small Korean model) cannot absorb
out-of-list speech, so the score does the work: a result is trusted only when it is exactly
ONE listed phrase with no ``[unk]``. Anything else (several phrases strung together, a
fragment, ``[unk]``) keeps its words but gets ``OUT_OF_LIST_FACTOR`` times its confidence,
which puts it under any sensible threshold. Measured on espeak-ng Korean (see bench/report):
out-of-list sentences come back as strings of several listed words in 16 of 18 cases.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.asr.errors import GrammarVocabularyError

UNK = "[unk]"
OUT_OF_LIST_FACTOR = 0.25


class _Vocabulary(Protocol):
    def vosk_model_find_word(self, word: str) -> int: ...


def normalize_phrases(phrases: Sequence[str]) -> list[str]:
    """Strip, collapse whitespace, drop duplicates; an empty list or empty phrase is an error."""
    out: list[str] = []
    for phrase in phrases:
        norm = " ".join(phrase.split())
        if not norm:
            raise ValueError("grammar phrase is empty")
        if norm not in out:
            out.append(norm)
    if not out:
        raise ValueError("grammar has no phrases")
    return out


@dataclass(frozen=True, slots=True)
class Grammar:
    phrases: tuple[str, ...]
    with_unk: bool

    def to_json(self) -> str:
        # ensure_ascii=False: Vosk's JSON reader does not decode \\uXXXX escapes, so an
        # ASCII-escaped Korean/Chinese phrase would silently match nothing.
        items = [*self.phrases, UNK] if self.with_unk else list(self.phrases)
        return json.dumps(items, ensure_ascii=False)


def compile_grammar(model: _Vocabulary, model_name: str, phrases: Sequence[str]) -> Grammar:
    """Check every word against the model vocabulary; raise listing any unknown words."""
    norm = normalize_phrases(phrases)
    missing: dict[str, list[str]] = {}
    for phrase in norm:
        unknown = [w for w in phrase.split() if model.vosk_model_find_word(w) < 0]
        if unknown:
            missing[phrase] = unknown
    if missing:
        raise GrammarVocabularyError(model_name, missing)
    return Grammar(tuple(norm), model.vosk_model_find_word(UNK) >= 0)


@dataclass(frozen=True, slots=True)
class GrammarScore:
    text: str
    confidence: float
    matched: bool


def score_result(grammar: Grammar, words: list[dict[str, Any]]) -> GrammarScore:
    """Confidence of a grammar-mode final from Vosk's word list (``word``/``conf``)."""
    heard = [str(w.get("word", "")) for w in words]
    kept = [w for w in heard if w and w != UNK]
    if not heard:
        return GrammarScore("", 0.0, False)
    conf = min(float(w.get("conf", 0.0)) for w in words)
    text = " ".join(kept)
    if len(kept) == len(heard) and text in grammar.phrases:
        return GrammarScore(text, conf, True)
    return GrammarScore(text, conf * OUT_OF_LIST_FACTOR, False)
