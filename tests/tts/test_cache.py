"""The on-disk prompt cache: atomic entries, checked on read."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.media.audio import Pcm
from app.tts.cache import PromptCache, cache_key, decode_entry, encode_entry


def test_entry_round_trips() -> None:
    pcm = Pcm(bytes(range(256)) * 10, 8000)
    assert decode_entry(encode_entry(pcm)) == pcm


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:-10], "bytes of audio, header says"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), "checksum mismatch"),
        (lambda b: b"RIFF....WAVEfmt " + b[16:], "bad header"),
        (lambda b: b"no newline at all", "no header line"),
    ],
)
def test_damaged_entries_are_refused(mangle: object, message: str) -> None:
    blob = encode_entry(Pcm(b"\x01\x02" * 500, 16000))
    with pytest.raises(ValueError, match=message):
        decode_entry(mangle(blob))  # type: ignore[operator]


def test_key_changes_with_every_part() -> None:
    base = cache_key("hello", "en-us", 165, 16000)
    assert len({
        base,
        cache_key("hello!", "en-us", 165, 16000),
        cache_key("hello", "en-gb", 165, 16000),
        cache_key("hello", "en-us", 180, 16000),
        cache_key("hello", "en-us", 165, 8000),
    }) == 5


def test_store_is_atomic_and_load_names_the_corrupt_file(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    key = cache_key("hello", "en-us", 165, 16000)
    assert cache.load(key) is None
    path = cache.store(key, Pcm(b"\x10\x00" * 100, 16000))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    assert cache.load(key) == Pcm(b"\x10\x00" * 100, 16000)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match=f"corrupt cache entry {path}"):
        cache.load(key)
