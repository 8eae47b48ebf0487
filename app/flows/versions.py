"""Flow versions: upload a flow file (checked like ``hotline flows check``), activate a
version (it becomes the file in the flows folder), roll back to the one active before.

Kept on disk beside the flows, one folder per flow id under ``root``::

    <root>/<flow id>/0001.yaml ...   every uploaded version (and the file found on disk the
                                     first time a flow is versioned: version 1)
    <root>/<flow id>/history.json    {"file": "demo_hotline.yaml", "active": [1, 3, ...],
                                      "versions": {"1": {"at", "by", "sha256"}, ...}}

``active`` is the order versions were activated in (the last one is live); a roll back
activates the one before the last and drops the last from ``active``. Activating writes the
file atomically (a temporary file, then rename) after the whole folder was checked with it,
so a version that clashes with another flow (a number twice) is refused with file, line and
reason and nothing changes. Blocking (file I/O, checks): call it in a thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.flows.loader import check_files, check_text, flow_files
from app.flows.schema import Flow

_FILE = re.compile(r"^[A-Za-z0-9_-]{1,60}\.ya?ml$")


class FlowVersionError(ValueError):
    """A version that cannot be stored or activated; ``errors``: "file:line: reason"."""

    def __init__(self, reason: str, errors: list[str] | None = None) -> None:
        super().__init__(reason)
        self.errors = errors or []


@dataclass(frozen=True)
class Version:
    flow_id: str
    number: int
    file: str
    at: str
    by: str
    sha256: str
    active: bool

    def as_json(self) -> dict[str, Any]:
        return {"flow": self.flow_id, "version": self.number, "file": self.file, "at": self.at,
                "by": self.by, "sha256": self.sha256, "active": self.active}


class FlowVersions:
    """The versions of the flows of ``flows_dir``, stored under ``root``."""

    def __init__(self, flows_dir: Path, root: Path, known_intents: set[str] | None = None,
                 voices: dict[str, str] | None = None) -> None:
        self.flows_dir, self.root = flows_dir, root
        self.known_intents, self.voices = known_intents, voices
        self._lock = threading.Lock()

    # -- reading --------------------------------------------------------------------------

    def _history(self, flow_id: str) -> dict[str, Any]:
        path = self.root / flow_id / "history.json"
        if not path.is_file():
            return {"file": "", "active": [], "versions": {}}
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def versions(self, flow_id: str) -> list[Version]:
        """Every stored version of ``flow_id``, newest first."""
        h = self._history(flow_id)
        live = h["active"][-1] if h["active"] else None
        return sorted((Version(flow_id, int(n), h["file"], v["at"], v["by"], v["sha256"],
                               int(n) == live) for n, v in h["versions"].items()),
                      key=lambda v: -v.number)

    def active(self, flow_id: str) -> int | None:
        h = self._history(flow_id)
        return int(h["active"][-1]) if h["active"] else None

    # -- writing --------------------------------------------------------------------------

    def upload(self, filename: str, text: str, by: str) -> Version:
        """Store ``text`` as a new version of the flow it defines (not active yet);
        ``FlowVersionError`` with every "file:line: reason" when the checker refuses it."""
        if not _FILE.match(filename):
            raise FlowVersionError(f"file name {filename!r}: letters, digits, _ and - then "
                                   ".yaml or .yml")
        flow, errors = check_text(text, Path(filename), self.known_intents, self.voices)
        if errors or flow is None:
            raise FlowVersionError(f"{filename} has {len(errors)} error(s)",
                                   [f"{filename}:{e.line}: {e.reason}" for e in errors])
        with self._lock:
            h = self._history(flow.id)
            on_disk = self._file_of(flow.id)
            if h["file"] and h["file"] != filename:
                raise FlowVersionError(f"flow {flow.id!r} lives in {h['file']}, not {filename}")
            if on_disk is not None and on_disk.name != filename:
                raise FlowVersionError(f"flow {flow.id!r} lives in {on_disk.name}, not "
                                       f"{filename}")
            h["file"] = filename
            if not h["versions"] and on_disk is not None:  # what runs now is version 1
                self._store(h, flow.id, on_disk.read_text(encoding="utf-8"), "(file on disk)")
                h["active"] = [1]
            number = self._store(h, flow.id, text, by)
            self._save(flow.id, h)
        return next(v for v in self.versions(flow.id) if v.number == number)

    def activate(self, flow_id: str, number: int, by: str) -> dict[str, Flow]:
        """Make version ``number`` the live file; returns every flow of the folder as it now
        loads. ``FlowVersionError`` (nothing changed) when unknown or the folder does not
        check with it."""
        with self._lock:
            h = self._history(flow_id)
            if str(number) not in h["versions"]:
                have = ", ".join(sorted(h["versions"], key=int)) or "none"
                raise FlowVersionError(f"flow {flow_id!r} has no version {number} (have: {have})")
            flows = self._write(flow_id, h, number)
            h["active"].append(number)
            self._save(flow_id, h)
            return flows

    def rollback(self, flow_id: str, by: str) -> tuple[int, dict[str, Flow]]:
        """Activate the version that was live before the current one; returns its number."""
        with self._lock:
            h = self._history(flow_id)
            if len(h["active"]) < 2:
                raise FlowVersionError(f"flow {flow_id!r} has no earlier active version to "
                                       "roll back to")
            previous = int(h["active"][-2])
            flows = self._write(flow_id, h, previous)
            h["active"].pop()
            self._save(flow_id, h)
            return previous, flows

    # -- inside ---------------------------------------------------------------------------

    def _file_of(self, flow_id: str) -> Path | None:
        for path in flow_files(self.flows_dir):
            flow, _ = check_text(path.read_text(encoding="utf-8"), path)
            if flow is not None and flow.id == flow_id:
                return path
        return None

    def _store(self, h: dict[str, Any], flow_id: str, text: str, by: str) -> int:
        number = max((int(n) for n in h["versions"]), default=0) + 1
        folder = self.root / flow_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{number:04d}.yaml").write_text(text, encoding="utf-8")
        h["versions"][str(number)] = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"), "by": by,
            "sha256": hashlib.sha256(text.encode()).hexdigest()}
        return number

    def _save(self, flow_id: str, h: dict[str, Any]) -> None:
        _atomic_write(self.root / flow_id / "history.json", json.dumps(h, indent=1))

    def _write(self, flow_id: str, h: dict[str, Any], number: int) -> dict[str, Flow]:
        text = (self.root / flow_id / f"{number:04d}.yaml").read_text(encoding="utf-8")
        target = self.flows_dir / h["file"]
        with tempfile.TemporaryDirectory() as tmp:  # the folder as it would be
            trial = [Path(tmp) / target.name]
            trial[0].write_text(text, encoding="utf-8")
            trial += [p for p in flow_files(self.flows_dir) if p.name != target.name]
            flows, errors = check_files(trial, self.known_intents, self.voices)
            if errors:
                raise FlowVersionError(
                    f"version {number} of {flow_id!r} does not check with the other flows",
                    [f"{e.file.name}:{e.line}: {e.reason}" for e in errors])
        _atomic_write(target, text)
        return flows


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
