"""``hotline models pull``: download, verify, unpack and install a Vosk model atomically.

Everything happens in a temporary folder inside ``models/vosk/`` (same filesystem), and the
finished model is moved into place with one ``rename``: a failure at any step (network,
truncated download, wrong checksum, bad zip, invalid model) leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx

from app.asr.errors import ModelLoadError, PullError
from app.asr.manifest import ManifestEntry, valid_model_name
from app.asr.registry import ModelRegistry, validate_model_dir

ProgressFn = Callable[[int, int | None], None]  # (bytes received, total bytes or None)
CHUNK_BYTES = 1 << 16


def _download(url: str, target: Path, progress: ProgressFn | None, timeout_s: float) -> str:
    """Stream ``url`` to ``target``; return the SHA-256. Raise PullError on any failure."""
    digest = hashlib.sha256()
    received = 0
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as resp:
            if resp.status_code != 200:
                raise PullError(f"download failed: {url} answered HTTP {resp.status_code}")
            length = resp.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            with target.open("wb") as fh:
                for block in resp.iter_raw(CHUNK_BYTES):
                    fh.write(block)
                    digest.update(block)
                    received += len(block)
                    if progress is not None:
                        progress(received, total)
    except httpx.HTTPError as exc:
        raise PullError(f"download failed after {received} bytes from {url}: {exc}") from exc
    if total is not None and received != total:
        raise PullError(f"download truncated: got {received} of {total} bytes from {url}")
    return digest.hexdigest()


def _unpack(archive: Path, into: Path) -> Path:
    """Extract safely (no absolute paths, no ``..``); return the model root inside ``into``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                parts = Path(member).parts
                if member.startswith(("/", "\\")) or ".." in parts:
                    raise PullError(f"archive has an unsafe path: {member!r}")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise PullError(f"downloaded file is not a valid zip archive: {exc}") from exc
    entries = [p for p in into.iterdir() if not p.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return into


def _check_request(name: str, entry: ManifestEntry | None, url: str | None,
                   verify: bool) -> tuple[str, str]:
    if not valid_model_name(name):
        raise PullError(f"invalid model name {name!r}")
    if entry is None and url is None:
        raise PullError(f"unknown model {name!r}: not in models/manifest.toml (give --url)")
    if verify and (entry is None or not entry.sha256):
        raise PullError(
            f"no SHA-256 for {name} in models/manifest.toml, so the download cannot be "
            "verified; refusing to install it (re-run with --no-verify to accept that risk)"
        )
    return (url or (entry.url if entry else "")), (entry.sha256 if entry and verify else "")


def pull_model(registry: ModelRegistry, name: str, *, url: str | None = None,
               verify: bool = True, progress: ProgressFn | None = None,
               timeout_s: float = 60.0) -> Path:
    """Install model ``name`` into ``models/vosk/<name>``; return its path."""
    entry = registry.manifest.get(name)
    source, expected_sha = _check_request(name, entry, url, verify)
    dest = registry.vosk_dir / name
    if dest.exists():
        raise PullError(f"{name} is already installed at {dest} (delete it to re-install)")
    registry.vosk_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".pull-{name}-", dir=registry.vosk_dir))
    try:
        archive = tmp / "download.zip"
        sha = _download(source, archive, progress, timeout_s)
        if expected_sha and sha != expected_sha:
            raise PullError(
                f"checksum mismatch for {name}: expected {expected_sha}, got {sha}; "
                "the download was discarded"
            )
        if entry and entry.size_bytes and archive.stat().st_size != entry.size_bytes:
            raise PullError(f"size mismatch for {name}: expected {entry.size_bytes} bytes, "
                            f"got {archive.stat().st_size}")
        unpacked = tmp / "unpacked"
        unpacked.mkdir()
        root = _unpack(archive, unpacked)
        try:
            rate = validate_model_dir(root)
        except ModelLoadError as exc:
            raise PullError(f"downloaded archive is not a usable Vosk model: {exc}") from exc
        if entry and rate != entry.sample_rate_hz:
            raise PullError(f"{name}: archive is a {rate} Hz model, manifest says "
                            f"{entry.sample_rate_hz} Hz")
        try:
            os.rename(root, dest)
        except OSError as exc:
            raise PullError(f"could not move the model into {dest}: {exc}") from exc
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
