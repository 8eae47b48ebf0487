"""Retrain with a gate: a candidate model is trained beside the serving one and activated
only if it does not regress on the held-out test files (``<intents>/tests/*.yaml``): for
every locale, in-scope accuracy and out-of-scope recall at least the current model's and at
least the configured floors. Otherwise it stays a candidate, with the reason.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.nlu.evaluate import evaluate, load_eval_files, summary
from app.nlu.intents import load_intents
from app.nlu.pipeline import DEFAULT_CONFIG, open_classifier, train_folder
from app.nlu.progress import TrainingProgress
from app.nlu.store import POINTER, current_model_dir
from app.settings import Settings

GATED = ("in_scope_accuracy", "oos_recall")
TOLERANCE = 1e-9


@dataclass
class GateResult:
    activated: bool
    candidate: str  # the candidate's version folder
    reason: str
    current_version: str | None
    figures: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # figures[locale][metric] = {"current": x, "candidate": y, "floor": z}


def _floors(settings: Settings) -> dict[str, float]:
    return {"in_scope_accuracy": settings.intent_min_accuracy,
            "oos_recall": settings.intent_min_oos_recall}


def by_locale(model: Path, heldout: Any, settings: Settings) -> dict[str, dict[str, float]]:
    figures: dict[str, Any] = summary(evaluate(open_classifier(model, settings), heldout))
    return {loc: {k: float(m[k]) for k in GATED} for loc, m in figures["by_locale"].items()}


def train_gated(data_dir: Path, model_root: Path, candidates_root: Path,
                settings: Settings, progress: TrainingProgress | None = None) -> GateResult:
    """Train ``data_dir`` into ``candidates_root``, compare with ``model_root``'s current
    model on the held-out files, and activate the candidate if it does not regress.
    ``progress`` follows it: embedding, training each locale, evaluating. The caller calls
    ``progress.finish()`` when its whole job has ended (the inbox loads the new model first),
    so 100 % is never shown while the job still runs."""
    progress = progress or TrainingProgress()
    files = sorted((data_dir / "tests").glob("*.y*ml"))
    if not files:
        raise ValueError(f"no held-out test files under {data_dir / 'tests'}: nothing to "
                         "gate a new model on")
    heldout = load_eval_files(files)
    catalog = load_intents(data_dir)
    progress.expect(int(DEFAULT_CONFIG.use_embeddings) + len(catalog.locales()) + 1)
    folder = train_folder(data_dir, candidates_root, settings, progress=progress,
                          catalog=catalog)
    serving = current_model_dir(model_root)
    progress.start("evaluating on the held-out files", 1 + (serving is not None))
    candidate = by_locale(folder, heldout, settings)
    progress.advance()
    current = by_locale(serving, heldout, settings) if serving is not None else {}
    progress.advance()
    floors = _floors(settings)
    figures: dict[str, dict[str, dict[str, float]]] = {}
    problems: list[str] = []
    for loc, got in sorted(candidate.items()):
        for metric in GATED:
            before = current.get(loc, {}).get(metric)
            figures.setdefault(loc, {})[metric] = {
                "candidate": got[metric], "floor": floors[metric],
                **({"current": before} if before is not None else {})}
            if before is not None and got[metric] < before - TOLERANCE:
                problems.append(f"{loc} {metric} {got[metric]:.3f} < current {before:.3f}")
            if got[metric] < floors[metric] - TOLERANCE:
                problems.append(f"{loc} {metric} {got[metric]:.3f} < floor "
                                f"{floors[metric]:.3f}")
    result = GateResult(activated=not problems, candidate=folder.name,
                        reason="; ".join(problems) or "no regression on the held-out files",
                        current_version=serving.name if serving else None, figures=figures)
    if result.activated:
        activate(folder, model_root)
    return result


def activate(folder: Path, model_root: Path) -> None:
    """Copy a version folder under ``model_root`` and point ``current`` at it."""
    model_root.mkdir(parents=True, exist_ok=True)
    target = model_root / folder.name
    if not target.exists():
        tmp = model_root / f".tmp-{folder.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(folder, tmp)
        os.replace(tmp, target)
    pointer = model_root / f".{POINTER}.tmp"
    pointer.write_text(folder.name + "\n", encoding="utf-8")
    os.replace(pointer, model_root / POINTER)
