"""The model manifest (``models/manifest.toml``): downloadable Vosk models and their checksums."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SUPPORTED_RATES_HZ = (8_000, 16_000)


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    name: str
    url: str
    sha256: str  # "" = unverified
    size_bytes: int  # 0 = unknown
    size_label: str
    sample_rate_hz: int
    locale: str
    licence: str = ""

    @property
    def verified(self) -> bool:
        return bool(self.sha256)


def valid_model_name(name: str) -> bool:
    """A model name is a single safe path component (no slashes, no leading dot)."""
    return bool(_NAME_RE.match(name)) and ".." not in name


def _entry(name: str, raw: object) -> ManifestEntry:
    if not isinstance(raw, dict):
        raise ValueError(f"manifest: models.{name} is not a table")
    if not valid_model_name(name):
        raise ValueError(f"manifest: invalid model name {name!r}")

    def field(key: str, kind: type, default: object = None) -> object:
        value = raw.get(key, default)
        if value is None:
            raise ValueError(f"manifest: models.{name} lacks {key!r}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"manifest: models.{name}.{key} must be {kind.__name__}")
        return value

    url = str(field("url", str))
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"manifest: models.{name}.url must be http(s): {url!r}")
    sha = str(field("sha256", str, "")).lower()
    if sha and not _SHA256_RE.match(sha):
        raise ValueError(f"manifest: models.{name}.sha256 is not 64 hex digits")
    size = int(field("size_bytes", int, 0))  # type: ignore[call-overload]
    rate = int(field("sample_rate_hz", int))  # type: ignore[call-overload]
    if rate not in SUPPORTED_RATES_HZ:
        raise ValueError(f"manifest: models.{name}.sample_rate_hz must be 8000 or 16000")
    return ManifestEntry(
        name=name, url=url, sha256=sha, size_bytes=size,
        size_label=str(field("size_label", str, "")), sample_rate_hz=rate,
        locale=str(field("locale", str)), licence=str(field("licence", str, "")),
    )


def load_manifest(path: Path) -> dict[str, ManifestEntry]:
    """Parse the manifest; a missing file is an empty manifest, a bad one raises ValueError."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"manifest {path}: {exc}") from exc
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ValueError(f"manifest {path}: [models] is not a table")
    return {name: _entry(name, raw) for name, raw in models.items()}
