"""Seed a fresh models folder from the models shipped with the code.

The Docker image mounts ``/srv/hotline/models`` as a volume, empty the first time: the
trained demo intent model (``models/intents``) ships outside it (``models_seed_dir``) and is
copied in when the volume has none, so ``hotline serve`` starts without ~40 s of training
and can still retrain into the volume later. (The model manifest is read from the shipped
copy directly: ``Settings.manifest_path``.)
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from app.settings import Settings

CURRENT = "current"


def _has_model(intents_dir: Path) -> bool:
    pointer = intents_dir / CURRENT
    if not pointer.is_file():
        return False
    version = pointer.read_text(encoding="utf-8").strip()
    return bool(version) and (intents_dir / version).is_dir()


def seed_intent_model(settings: Settings) -> Path | None:
    """Copy the shipped intent model into ``intent_model_path`` when that has none; return
    the folder copied to, or None when nothing was done. Atomic: a temp folder renamed."""
    seed = settings.seed_dir
    target = settings.intent_model_path
    if seed is None or not _has_model(seed / "intents") or _has_model(target):
        return None
    if target.resolve() == (seed / "intents").resolve():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".seed-intents-", dir=target.parent))
    try:
        staged = tmp / "intents"
        shutil.copytree(seed / "intents", staged)
        if target.exists():  # an empty or half-made folder without a model
            for child in sorted(staged.iterdir(), key=lambda c: c.name == CURRENT):
                dest = target / child.name
                if not dest.exists():
                    child.rename(dest)
        else:
            staged.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
