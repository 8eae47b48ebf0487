"""The sentence encoder through ONNX Runtime: the same weights, exported once from torch.

Training stays in torch (``SentenceEncoder``); serving one utterance at a time is cheaper
through ONNX Runtime (no autograd/dispatcher overhead, fused kernels, one intra-op thread).
The export (mean pooling and L2 normalisation included) is written once per encoder into a
cache folder (``settings.model_cache_dir/onnx``, one per machine) and reused; it is
~90 MB, so it is never committed.
Embeddings match torch's to ~1e-6 (a test checks it).

``OnnxSentenceEncoder`` also keeps an LRU cache of embeddings by normalised text: callers
repeat themselves ("转人工", "yes") and a hit costs nothing.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.nlu.features import EMBED_BATCH, EMBED_MAX_TOKENS, SentenceEncoder

OPSET = 17


def export_onnx(encoder: SentenceEncoder, target: Path) -> Path:
    """Export ``encoder`` (with pooling + normalisation) to ``target`` atomically."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}.onnx")
    sample = encoder.tokenize(["hello world"])
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(encoder.model).eval(),
            (sample["input_ids"], sample["attention_mask"]), str(tmp),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                          "attention_mask": {0: "batch", 1: "seq"}, "embedding": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )
    os.replace(tmp, target)
    return target


class OnnxSentenceEncoder:
    """``Encoder`` through ONNX Runtime; thread-safe (ORT sessions allow concurrent runs)."""

    def __init__(self, torch_encoder: SentenceEncoder, cache_dir: Path, threads: int = 1,
                 lru_size: int = 4096) -> None:
        import onnxruntime as ort

        self.dim = torch_encoder.dim
        self.identity = torch_encoder.identity  # same embeddings: same cache entries
        self._tokenize = torch_encoder.tokenize
        self.path = cache_dir / f"{torch_encoder.identity}-opset{OPSET}.onnx"
        if not self.path.is_file():
            export_onnx(torch_encoder, self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lru_size = lru_size
        self._lru_lock = threading.Lock()

    def encode_prepared(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lru_lock:
            for i, t in enumerate(texts):
                hit = self._lru.get(t)
                if hit is None:
                    missing.append(i)
                else:
                    self._lru.move_to_end(t)
                    out[i] = hit
        for start in range(0, len(missing), EMBED_BATCH):
            idx = missing[start : start + EMBED_BATCH]
            enc = self._tokenize([texts[i] or " " for i in idx], numpy=True)
            (emb,) = self._session.run(None, {
                "input_ids": enc["input_ids"].astype(np.int64),
                "attention_mask": enc["attention_mask"].astype(np.int64),
            })
            out[idx] = emb
            with self._lru_lock:
                for i, row in zip(idx, emb, strict=True):
                    self._lru[texts[i]] = row
                while len(self._lru) > self._lru_size:
                    self._lru.popitem(last=False)
            if progress is not None:
                progress(len(idx))
        return out


__all__ = ["EMBED_MAX_TOKENS", "OnnxSentenceEncoder", "export_onnx"]
