"""The intent model versions on disk (``app.nlu.store``'s ``<root>/<version>/`` folders and
the ``current`` pointer): list them, activate one (atomic pointer switch, only once it
loads and serves), and find the one before the current (roll back).

Versions are named ``YYYYmmdd-HHMMSS-ffffff-<data hash>``: name order is training order, so
"the previous version" is the newest one older than the current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.nlu.classifier import read_manifest
from app.nlu.gate import activate
from app.nlu.pipeline import open_classifier
from app.nlu.store import current_model_dir
from app.settings import Settings


class VersionRefused(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class ModelVersion:
    version: str
    created_at: str
    data_hash: str
    current: bool
    locales: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # the training's figures


def list_versions(root: Path) -> list[ModelVersion]:
    """Every version folder with a readable manifest, newest first."""
    if not root.is_dir():
        return []
    current = current_model_dir(root)
    found: list[ModelVersion] = []
    for folder in sorted(root.iterdir(), reverse=True):
        if folder.name.startswith(".") or not (folder / "manifest.json").is_file():
            continue
        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError):
            continue
        found.append(ModelVersion(
            version=folder.name, created_at=str(manifest.get("created_at", "")),
            data_hash=str(manifest.get("data_hash", "")), current=folder == current,
            locales=sorted(manifest.get("locales", {})),
            metrics=dict(manifest.get("metrics", {}))))
    return found


def previous_version(root: Path) -> str:
    """The newest version older than the current one; ``VersionRefused`` when none."""
    current = current_model_dir(root)
    if current is None:
        raise VersionRefused(409, f"no current intent model under {root}")
    older = [v.version for v in list_versions(root) if v.version < current.name]
    if not older:
        raise VersionRefused(409, f"{current.name} is the oldest version: nothing to roll "
                             "back to")
    return older[0]


def activate_version(root: Path, version: str, settings: Settings) -> str | None:
    """Point ``current`` at ``version`` once it loads with today's settings (encoder,
    features, decision); return the version current before. ``VersionRefused`` with why."""
    folder = root / version
    if version.startswith(".") or "/" in version or not (folder / "manifest.json").is_file():
        raise VersionRefused(404, f"no intent model version {version!r} under {root}")
    try:
        open_classifier(folder, settings)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise VersionRefused(422, f"{version} cannot be served with these settings: "
                             f"{exc}") from None
    before = current_model_dir(root)
    activate(folder, root)
    return None if before is None else before.name
