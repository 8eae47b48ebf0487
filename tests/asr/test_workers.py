"""Decoding in worker processes with the real Korean model: the same transcripts as the thread
decoder, a killed or hung worker replaced while its calls go on, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from app.asr.engine import AsrEngine
from app.asr.errors import AsrError
from app.asr.registry import ModelRegistry
from app.asr.remote import RemoteStream
from app.events import AsrWorkerRestarted, SpeechActivity, Transcript
from app.media.audio import Pcm, frames, silence
from app.settings import Settings
from tests.asr.conftest import KO_MODEL
from tests.asr.test_stream import MENU, finals, run, utterances

Speech = Callable[[str, int], Pcm]
Event = Transcript | SpeechActivity | AsrWorkerRestarted


def make_settings(root: Path, decoder: str, **changes: object) -> Settings:
    return Settings(data_dir=root / "data", models_dir=root / "models", log_json=False,
                    asr_models={"ko": KO_MODEL}, asr_decoder=decoder,  # type: ignore[arg-type]
                    **changes)  # type: ignore[arg-type]


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[dict[str, AsrEngine]]:
    """A new engine of each kind (so both start from the same state: no warm recognizers)."""
    # a queue long enough for audio pushed far faster than real time (nothing dropped)
    engines = {mode: AsrEngine(s := make_settings(tmp_path, mode, asr_queue_max_chunks=5000),
                               ModelRegistry(s.models_dir))
               for mode in ("processes", "threads")}
    try:
        for engine in engines.values():
            assert await engine.aload() == {}
        yield engines
    finally:
        for engine in engines.values():
            await engine.aclose()


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsrEngine]:
    settings = make_settings(tmp_path_factory.mktemp("asr1"), "processes", asr_processes=1,
                             asr_worker_timeout_s=8.0)
    engine = AsrEngine(settings, ModelRegistry(settings.models_dir))
    assert engine.load() == {}
    yield engine
    engine.close()


def worker_pid(engine: AsrEngine) -> int:
    assert engine.remote is not None
    (pid,) = engine.remote.pool.pids
    assert pid is not None
    return pid


async def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def words(events: list[Event]) -> list[tuple[str, list[str]]]:
    return [(t.text, [w.word for w in t.words]) for t in finals(events)]  # type: ignore[arg-type]


async def hear(engines: dict[str, AsrEngine], pcm: bytes, rate: int,
               grammar: list[str] | None) -> dict[str, list[Event]]:
    heard: dict[str, list[Event]] = {}
    for mode, engine in engines.items():
        stream = engine.stream("ko", rate, grammar=grammar, call_id=f"same-{mode}")
        assert isinstance(stream, RemoteStream) == (mode == "processes")
        heard[mode] = await run(stream, pcm, rate)  # type: ignore[arg-type]
    return heard


@pytest.mark.parametrize("rate", [8_000, 16_000])
async def test_workers_give_the_thread_decoders_grammar_results(
    fresh: dict[str, AsrEngine], speech: Speech, rate: int,
) -> None:
    pcm = utterances(speech, ["영업시간", "날씨가 좋네요", "아니요"], rate)
    heard = hear(fresh, pcm, rate, MENU)
    got = {mode: finals(events) for mode, events in (await heard).items()}  # type: ignore[arg-type]
    vocabulary = {word for phrase in MENU for word in phrase.split()}
    for mode, heard_finals in got.items():
        texts = [t.text for t in heard_finals]
        # the in-grammar phrases are heard alike; what the out-of-grammar middle sentence is
        # forced into depends on how the audio was batched (Vosk's i-vector weighting follows
        # the decoder calls), so only its staying inside the grammar is asserted
        assert texts[:1] == ["영업시간"], (mode, texts)
        assert texts[-1].split()[-1:] == ["아니요"], (mode, texts)
        assert {w for text in texts for w in text.split()} <= vocabulary, (mode, texts)
    for ours, theirs in ((got["processes"][0], got["threads"][0]),
                         (got["processes"][-1], got["threads"][-1])):
        assert ours.confidence == pytest.approx(theirs.confidence, abs=0.06)


async def test_workers_give_the_thread_decoders_utterances(
    fresh: dict[str, AsrEngine], speech: Speech,
) -> None:
    """Free-form: the same speech edges (VAD and endpointing run per chunk, the same code) and
    the same utterances. Vosk's words may differ where the audio was handed over in other
    batches (its i-vector weighting follows the decoder calls), so they are not compared."""
    rate = 16_000
    pcm = utterances(speech, ["안녕하세요 반갑습니다", "상담원 연결 부탁드립니다"], rate)
    heard = await hear(fresh, pcm, rate, None)
    edges = {mode: [(e.type, e.media_ts_ms) for e in events if isinstance(e, SpeechActivity)]
             for mode, events in heard.items()}
    assert len(edges["processes"]) == 4 and edges["processes"] == edges["threads"]
    said = {mode: [bool(t.text) for t in finals(events)]  # type: ignore[arg-type]
            for mode, events in heard.items()}
    assert said["processes"] and said["processes"] == said["threads"]


async def feed(stream: RemoteStream, pcm: bytes, rate: int) -> None:
    """About four times real time, as a loaded call would arrive in bursts."""
    for i, chunk in enumerate(frames(pcm, rate)):
        stream.push(chunk)
        if i % 10 == 9:
            await asyncio.sleep(0.05)


async def collect(stream: RemoteStream, into: list[Event]) -> None:
    async for event in stream:
        into.append(event)


async def test_a_worker_killed_mid_utterance_is_replaced_and_the_call_goes_on(
    one_worker: AsrEngine, speech: Speech,
) -> None:
    rate = 16_000
    assert one_worker.remote is not None
    restarts = one_worker.remote.pool.stats.restarts
    stream = one_worker.stream("ko", rate, call_id="t-kill")
    assert isinstance(stream, RemoteStream)
    events: list[Event] = []
    reader = asyncio.create_task(collect(stream, events))
    first = silence(300, rate) + speech("안녕하세요 반갑습니다 상담원 연결", rate).data
    half = len(first) // 2 // 640 * 640
    await feed(stream, first[:half], rate)
    await wait_for(lambda: any(getattr(e, "type", "") == "speech_start" for e in events))
    killed = worker_pid(one_worker)
    os.kill(killed, signal.SIGKILL)
    await feed(stream, first[half:] + silence(1000, rate), rate)
    second = speech("상담원 연결 부탁드립니다", rate).data + silence(1000, rate)
    await feed(stream, second, rate)
    stream.end_input()
    await reader
    await stream.aclose()

    notices = [i for i, e in enumerate(events) if isinstance(e, AsrWorkerRestarted)]
    assert len(notices) == 1, events
    notice = events[notices[0]]
    assert isinstance(notice, AsrWorkerRestarted) and notice.gap_ms >= 0
    # the cut utterance was closed before the notice, so speech edges stay paired
    before = [e for e in events[: notices[0]] if isinstance(e, SpeechActivity)]
    assert [e.type for e in before][-1] == "speech_end"
    after = [e for e in events[notices[0] + 1 :] if isinstance(e, Transcript) and e.is_final]
    assert after and any(t.text for t in after)
    # the stream kept its clock: what came after is timed after the first half
    assert after[-1].start_s > half / 2 / rate
    assert worker_pid(one_worker) != killed
    assert one_worker.remote.pool.stats.restarts == restarts + 1


async def test_a_hung_worker_is_killed_after_the_timeout_and_replaced(
    one_worker: AsrEngine, speech: Speech,
) -> None:
    rate = 8_000
    stream = one_worker.stream("ko", rate, call_id="t-hang")
    assert isinstance(stream, RemoteStream)
    events: list[Event] = []
    reader = asyncio.create_task(collect(stream, events))
    await feed(stream, silence(500, rate), rate)
    hung = worker_pid(one_worker)
    os.kill(hung, signal.SIGSTOP)
    await feed(stream, utterances(speech, ["상담원 연결 부탁드립니다"], rate), rate)
    await wait_for(lambda: any(isinstance(e, AsrWorkerRestarted) for e in events))
    await feed(stream, utterances(speech, ["상담원 연결 부탁드립니다"], rate), rate)
    stream.end_input()
    await reader
    await stream.aclose()
    assert one_worker.remote is not None and one_worker.remote.pool.stats.timeouts >= 1
    assert worker_pid(one_worker) != hung
    assert not _alive(hung)
    assert any(isinstance(e, Transcript) and e.is_final and e.text for e in events)


async def test_a_stream_whose_worker_keeps_dying_fails_with_asr_error(
    one_worker: AsrEngine,
) -> None:
    rate = 16_000
    stream = one_worker.stream("ko", rate, call_id="t-poison")
    assert isinstance(stream, RemoteStream)
    events: list[Event] = []
    reader = asyncio.create_task(collect(stream, events))
    for kill in range(3):
        await feed(stream, silence(200, rate), rate)
        pid = worker_pid(one_worker)
        os.kill(pid, signal.SIGKILL)
        if kill < 2:
            await wait_for(lambda n=kill: sum(isinstance(e, AsrWorkerRestarted)  # type: ignore[misc]
                                              for e in events) == n + 1)
    with pytest.raises(AsrError, match="died 3 times in 60 s"):
        await reader
    await stream.aclose()
    # the engine itself goes on: a new call decodes on the replacement
    again = one_worker.stream("ko", rate, call_id="t-after")
    again.end_input()
    assert [e async for e in again] == []
    await again.aclose()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_aclose_leaves_no_worker_process_or_descriptor(
    tmp_path: Path, speech: Speech,
) -> None:
    fds_before = set(os.listdir("/proc/self/fd"))
    settings = make_settings(tmp_path, "processes", asr_processes=2)
    engine = AsrEngine(settings, ModelRegistry(settings.models_dir))
    assert await engine.aload() == {}
    assert engine.remote is not None
    pids = [p for p in engine.remote.pool.pids if p is not None]
    zygote = engine.remote.pool.zygote.pid
    assert len(pids) == 2 and zygote is not None
    streams = [engine.stream("ko", 16_000, call_id=f"t-close-{n}") for n in range(3)]
    for stream in streams:
        for chunk in frames(speech("안녕하세요", 16_000).data, 16_000):
            stream.push(chunk)
    await engine.aclose()  # with audio still queued in the workers
    assert all(s.closed for s in streams)
    assert not any(_alive(pid) for pid in [*pids, zygote])
    assert set(os.listdir("/proc/self/fd")) == fds_before
