"""Errors of the speech-recognition part; each message says what is wrong and what to do."""

from __future__ import annotations


class AsrError(Exception):
    """Base class: a speech-recognition problem with a human-readable reason."""


class ModelNotFoundError(AsrError):
    """No model of that name in the models directory nor in an installed model package."""


class ModelLoadError(AsrError):
    """A model directory exists but is incomplete, corrupt or of an unusable sample rate."""


class GrammarVocabularyError(AsrError, ValueError):
    """Grammar phrases contain words the model cannot recognize (not in its vocabulary)."""

    def __init__(self, model: str, missing: dict[str, list[str]]) -> None:
        self.model = model
        self.missing = missing
        detail = "; ".join(f"{phrase!r}: {', '.join(words)}" for phrase, words in missing.items())
        super().__init__(f"grammar words not in the vocabulary of model {model}: {detail}")


class LocaleUnavailableError(AsrError, KeyError):
    """No loaded model for the requested locale."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "locale unavailable"


class PullError(AsrError):
    """Downloading or installing a model failed; nothing was installed."""
