"""Calls classify on the NLU service's own sized executor, not the event loop's default pool."""

from __future__ import annotations

import asyncio
import threading

from app.nlu.service import NluService
from app.settings import Settings


async def test_aunderstand_runs_on_its_own_sized_threads(settings: Settings) -> None:
    service = NluService(settings.model_copy(update={"nlu_workers": 3}))
    seen: set[str] = set()
    score = service.sentiment.score

    def watched(text: str, locale: str) -> object:
        seen.add(threading.current_thread().name)
        return score(text, locale)

    service.sentiment.score = watched  # type: ignore[method-assign,assignment]
    try:
        texts = [f"my card 4567 was charged twice on {n} May, I am very angry" for n in range(8)]
        got = await asyncio.gather(*(service.understand_async(t, "en") for t in texts))
        assert seen and all(name.startswith("nlu") for name in seen)
        assert service._executor._max_workers == 3
        assert [u.entities for u in got] == [service.understand(t, "en").entities for t in texts]
        assert got[0].sentiment.label == "negative"
    finally:
        service.close()
