"""Versioned intent models on disk: ``<root>/<version>/`` plus a ``current`` pointer file.

Each version folder holds ``manifest.json`` (version, data hash, recipe, encoder, settings,
labels, metrics) and per-locale ``<loc>.vocab.json`` / ``<loc>.head.safetensors``. A version
is written into a temporary folder and renamed; ``current`` is replaced atomically, so a
reader never sees half a model.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.nlu.classifier import read_manifest
from app.nlu.train import TrainedLocale

POINTER = "current"
KEEP_VERSIONS = 3


def current_model_dir(root: Path) -> Path | None:
    """The folder ``current`` names, or ``None`` when there is no usable model."""
    pointer = root / POINTER
    if not pointer.is_file():
        return None
    version = pointer.read_text(encoding="utf-8").strip()
    folder = root / version
    if not version or not (folder / "manifest.json").is_file():
        return None
    return folder


def model_status(root: Path, data_hash: str, recipe: str) -> str | None:
    """``None`` when the current model matches the data and recipe; else why not."""
    folder = current_model_dir(root)
    if folder is None:
        return f"no trained intent model under {root}"
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError) as exc:
        return f"unreadable manifest in {folder}: {exc}"
    if manifest.get("data_hash") != data_hash:
        return "intent data changed since the model was trained"
    if manifest.get("recipe") != recipe:
        return "training recipe or encoder changed since the model was trained"
    return None


def write_model(
    root: Path, trained: dict[str, TrainedLocale], manifest: dict[str, Any]
) -> Path:
    """Write a new version and point ``current`` at it; return its folder."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    version = f"{stamp}-{str(manifest.get('data_hash', ''))[:8]}"
    tmp = root / f".tmp-{version}"
    tmp.mkdir()
    locales = {loc: t.model.save(tmp) for loc, t in trained.items()}
    full = dict(manifest)
    full.update(
        version=version, created_at=datetime.now(UTC).isoformat(), locales=locales,
        metrics={loc: t.metrics for loc, t in trained.items()},
    )
    (tmp / "manifest.json").write_text(
        json.dumps(full, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    folder = root / version
    os.replace(tmp, folder)
    pointer_tmp = root / f".{POINTER}.tmp"
    pointer_tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(pointer_tmp, root / POINTER)
    _prune(root, keep=folder)
    return folder


def _prune(root: Path, keep: Path) -> None:
    versions = sorted(
        p for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()
    )
    for old in versions[:-KEEP_VERSIONS]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
