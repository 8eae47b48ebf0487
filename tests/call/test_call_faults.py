"""A call survives its parts failing, and always ends with one outcome and a stored record.

Real services (Korean test flow and model, espeak, SQLite); failures are made for real where
the machine allows (a read-only database, the database file deleted mid-call, a recordings
folder that cannot be created) and injected at the media leg otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.flows.defaults import default_text
from app.services import open_storage
from app.storage.db import Database
from app.storage.repository import CallRepository
from tests.call.conftest import Rig
from tests.fakes import PipeMedia
from tests.helpers.tones import dominant_hz, tone
from tests.helpers.tools import delete_sqlite_files

KO_APOLOGY = default_text("apology", "ko")


def _prompts(rig: Rig, call_id: str) -> list[str]:
    detail = rig.repo.get_call(call_id)
    assert detail is not None
    return [e.payload.get("text", "") for e in detail.events if e.type == "prompt_played"]


async def test_read_only_database_at_start_apologizes_closes_and_spools_the_record(
        rig: Rig) -> None:
    read_only = Database(f"sqlite:///file:{rig.settings.data_dir / 'hotline.db'}"
                         "?mode=ro&uri=true")
    rig.manager.deps.store = CallRepository(read_only)
    try:
        media = PipeMedia()
        call_id = await rig.start(media)
        assert await rig.manager.wait(call_id, 30) == "error"
    finally:
        read_only.dispose()
    assert media.closed
    assert media.bot_audio_s() > 1.0  # the apology was heard
    spooled = json.loads((rig.settings.spool_dir / f"{call_id}.json").read_text())
    assert spooled["row_created"] is False
    assert "readonly" in spooled["problem"] or "read-only" in spooled["problem"]
    # the next start (the database writable again) stores it
    db, repo = await open_storage(rig.settings)
    try:
        detail = repo.get_call(call_id)
        assert detail is not None and detail.cdr.outcome == "error"
        texts = [e.payload.get("text") for e in detail.events if e.type == "prompt_played"]
        assert texts == [KO_APOLOGY]
        errors = [e.payload for e in detail.events if e.type == "error"]
        assert errors and errors[0]["where"] == "storage"
        assert not rig.settings.spool_dir.joinpath(f"{call_id}.json").exists()
    finally:
        db.dispose()


async def test_database_file_deleted_mid_call_the_call_goes_on_and_is_recorded_later(
        rig: Rig) -> None:
    media = PipeMedia()
    call_id = await rig.start(media)
    await rig.event(call_id, "listen")
    db_file = rig.settings.data_dir / "hotline.db"
    delete_sqlite_files(db_file)
    media.press("1")
    assert await rig.manager.wait(call_id, 60) == "completed"  # the caller was served
    assert (rig.settings.spool_dir / f"{call_id}.json").exists()
    db, repo = await open_storage(rig.settings)  # a new database file: the record replays
    try:
        detail = repo.get_call(call_id)
        assert detail is not None and detail.cdr.outcome == "completed"
        types = [e.type for e in detail.events]
        assert "dtmf" in types and types[-1] == "call_ended"
    finally:
        db.dispose()


async def test_recordings_folder_that_cannot_be_written_still_ends_with_a_record(
        make_rig: Callable[..., Any], tmp_path: Path) -> None:
    rig: Rig = await make_rig()
    rig.settings.recordings_dir.parent.mkdir(parents=True, exist_ok=True)
    rig.settings.recordings_dir.write_text("not a folder")
    media = PipeMedia()
    call_id = await rig.start(media)
    await rig.event(call_id, "listen")
    media.press("1")
    assert await rig.manager.wait(call_id, 60) == "completed"
    detail = rig.repo.get_call(call_id)
    assert detail is not None
    assert detail.cdr.outcome == "completed" and detail.cdr.ended_at is not None
    failed = [e.payload for e in detail.events if e.type == "recording_failed"]
    assert failed and "recordings" in failed[0]["reason"]
    assert detail.recordings == [] and [e.type for e in detail.events][-1] == "call_ended"


async def test_a_broken_media_leg_is_an_error_not_a_hangup_and_the_apology_is_korean(
        rig: Rig) -> None:
    media = PipeMedia()
    call_id = await rig.start(media)
    await rig.event(call_id, "listen")
    media.inbound_error = OSError("socket closed under us")
    assert await rig.manager.wait(call_id, 30) == "error"
    detail = rig.repo.get_call(call_id)
    assert detail is not None and detail.cdr.outcome == "error"
    errors = [e.payload for e in detail.events if e.type == "error"]
    assert errors[0]["where"] == "listen" and "socket closed" in errors[0]["detail"]
    assert _prompts(rig, call_id)[-1] == KO_APOLOGY


async def test_a_call_over_its_max_duration_is_ended_with_that_outcome(
        make_rig: Callable[..., Any]) -> None:
    rig: Rig = await make_rig(call_max_duration_s=2.0)
    media = PipeMedia()
    call_id = await rig.start(media)
    assert await rig.manager.wait(call_id, 30) == "max_duration"
    detail = rig.repo.get_call(call_id)
    assert detail is not None and detail.cdr.outcome == "max_duration"
    assert 2.0 <= (detail.cdr.duration_s or 0) < 15


async def test_a_recorded_wav_prompt_is_played(make_rig: Callable[..., Any],
                                               tmp_path: Path) -> None:
    from app.media.audio import write_wav

    wav = tmp_path / "welcome.wav"
    write_wav(wav, tone(440, 1.5, 8000), 8000)
    flow = tmp_path / "wav_flow.yaml"
    flow.write_text(
        "id: wav_flow\nlocales: [ko]\ndefault_locale: ko\nhotline_numbers: ['4000000002']\n"
        "start: hello\nglobals:\n  talk_to_agent: {queue: general, confirm: false}\n"
        "queues:\n  general: {skills: [general]}\nnodes:\n"
        f"  hello:\n    kind: hangup\n    prompt: {{ko: {{wav: {wav}}}, barge_in: false}}\n"
        "    outcome: completed\n", encoding="utf-8")
    rig: Rig = await make_rig(flows=[flow])
    media = PipeMedia()
    call_id = await rig.start(media, number="4000000002")
    assert await rig.manager.wait(call_id, 30) == "completed"
    played = b"".join(s.chunk.pcm for s in media.sent)
    assert len(played) >= 16000 * 2 * 1.4
    assert abs(dominant_hz(played[: 16000 * 2]) - 440) < 10
    prompts = [e.payload for e in rig.repo.get_call(call_id).events if e.type == "prompt_played"]
    assert [os.path.basename(p["wav"]) for p in prompts] == ["welcome.wav"]
