"""The worker process dies, hangs or is killed: callers get a clear error or a retried answer,
and the worker is replaced. Failure injection: ``tests.fakes.faulty_tts_worker_main`` (the
real worker, made to sleep or exit by markers in the text)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest

from app.media.audio import rms_dbfs
from app.settings import Settings
from app.tts.errors import TtsError
from app.tts.service import TtsService
from tests.fakes import FAULTY_TTS_WORKER
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

pytestmark = needs(have_espeak(), "espeak-ng")


@pytest.fixture
async def faulty(settings: Settings) -> AsyncIterator[TtsService]:
    quick = settings.model_copy(update={"tts_timeout_s": 3.0})
    async with TtsService(quick, worker_entry=FAULTY_TTS_WORKER) as service:
        yield service


async def test_idle_worker_killed_is_restarted_for_the_next_request(settings: Settings) -> None:
    async with TtsService(settings) as tts:  # the real worker, no fakes
        (pid,) = tts.worker_pids
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        pcm = await tts.synthesize("Are you still there?", "en", 8000)
        assert rms_dbfs(pcm.data) > -35
        assert tts.worker_pids[0] not in (None, pid)
        assert tts.worker_stats.restarts == 1


async def test_worker_killed_mid_request_is_replaced_and_the_request_retried(
    faulty: TtsService,
) -> None:
    (pid,) = faulty.worker_pids
    assert pid is not None
    request = asyncio.create_task(faulty.synthesize("[[sleep short]] Hello again.", "en", 16000))
    for _ in range(1000):  # until the request is on the worker's pipe
        if faulty.worker_stats.requests:
            break
        await asyncio.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    pcm = await request
    assert rms_dbfs(pcm.data) > -35 and pcm.duration_s > 0.5
    assert faulty.worker_stats.crashes == 1 and faulty.worker_stats.restarts == 1
    assert faulty.worker_pids[0] not in (None, pid)


async def test_hung_worker_times_out_and_is_replaced(faulty: TtsService) -> None:
    (pid,) = faulty.worker_pids
    with pytest.raises(TtsError, match="longer than 3 s; the worker was replaced") as err:
        await faulty.synthesize("[[sleep long]] Hello.", "en", 16000)
    assert err.value.reason == "timeout"
    assert faulty.worker_pids[0] not in (None, pid)
    pcm = await faulty.synthesize("Hello after the hang.", "en", 16000)
    assert rms_dbfs(pcm.data) > -35


async def test_worker_that_dies_on_a_text_twice_fails_that_request_only(
    faulty: TtsService,
) -> None:
    with pytest.raises(TtsError, match="speech worker died twice") as err:
        await faulty.synthesize("[[exit]] Goodbye.", "en", 16000)
    assert err.value.reason == "worker_failed"
    assert faulty.worker_stats.crashes == 2
    pcm = await faulty.synthesize("Goodbye.", "en", 16000)
    assert rms_dbfs(pcm.data) > -35


async def test_requests_queued_behind_a_slow_one_are_all_answered(faulty: TtsService) -> None:
    slow = faulty.synthesize("[[sleep brief]] First.", "en", 8000)
    rest = [faulty.synthesize(f"Caller {n}.", "en", 8000) for n in range(3)]
    results = await asyncio.gather(slow, *rest)
    assert all(rms_dbfs(p.data) > -35 for p in results)


async def test_stopped_service_refuses_clearly(settings: Settings) -> None:
    tts = TtsService(settings)
    await tts.start()
    await tts.aclose()
    with pytest.raises(TtsError, match="not running") as err:
        await tts.synthesize("Hello.", "en", 8000)
    assert err.value.reason == "closed"


async def test_two_workers_share_the_queue(settings: Settings) -> None:
    async with TtsService(settings.model_copy(update={"tts_workers": 2})) as tts:
        assert len({pid for pid in tts.worker_pids if pid}) == 2
        texts = [f"Agent {n} will be with you shortly." for n in range(4)]
        results = await asyncio.gather(*(tts.synthesize(t, "en", 8000) for t in texts))
        assert all(rms_dbfs(p.data) > -35 for p in results)
        assert tts.worker_stats.requests == 4


async def test_a_failing_sentence_fails_the_whole_utterance(faulty: TtsService) -> None:
    with pytest.raises(TtsError, match="longer than 3 s"):
        await faulty.synthesize("Hello there. [[sleep long]] Still there?", "en", 8000)
    assert (await faulty.synthesize("Hello there.", "en", 8000)).duration_s > 0.3


async def test_an_occasional_silent_render_is_rendered_again(faulty: TtsService) -> None:
    pcm = await faulty.synthesize("[[silent once]] hello there", "en", 16_000)
    assert rms_dbfs(pcm.data) > -40
    assert faulty.stats.silent_renders == 1


async def test_text_that_stays_silent_is_reported_unspeakable(faulty: TtsService) -> None:
    with pytest.raises(TtsError, match="no audible speech"):
        await faulty.synthesize("[[silent always]] hello again", "en", 16_000)
