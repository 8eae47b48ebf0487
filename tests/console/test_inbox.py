"""The intent inbox on a real server: what callers said that the classifier refused or was
unsure of appears; an analyst's label becomes a training example that the same loader as
``hotline intents`` reads; bad labels are refused with the reason; each label is audited."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from app.auth import Role
from app.main import project_path
from app.nlu.intents import load_intents
from app.reports.inbox import LABELS_FILE
from app.sim.cli import serve_in_process
from tests.console.calls import write_day
from tests.helpers.auth import sign_in_as_each_role
from tests.helpers.live import live_settings


def intents_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "intents"
    shutil.copytree(project_path("intents"), folder)
    return folder


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Any, Path]]:
    intents = intents_copy(tmp_path)
    settings = live_settings(tmp_path, asr_models={}, auth_login_rate="1000/minute",
                             intent_model_dir=tmp_path / "no-intent-model",
                             intents_dir=intents)
    async with serve_in_process(settings) as server:
        # the inbox shows the last 30 days: the hand-made day, moved to yesterday
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        write_day(server.app.state.repo, today - timedelta(days=1))
        yield server.url, server.app, intents


async def test_label_an_utterance(served: tuple[str, Any, Path]) -> None:
    url, _, intents = served
    async with httpx.AsyncClient(timeout=60) as client:
        roles = await sign_in_as_each_role(client, url)
        analyst = roles[Role.ANALYST]
        client.cookies.clear()
        items = (await client.get(f"{url}/v1/inbox", cookies=analyst.cookies)).json()
        said = {(i["call_id"], i["text"], i["guess"]) for i in items}
        # c2: refused (0.2) then unsure (refund 0.45); c1's 0.9 is not asked about
        assert said == {("c2", "我要退货啊", None), ("c2", "退货", "refund")}
        refused = next(i for i in items if i["guess"] is None)
        client.cookies.clear()
        saved = await client.post(f"{url}/v1/inbox/labels", cookies=analyst.cookies,
                                  headers=analyst.headers,
                                  json={"call_id": "c2", "seq": refused["seq"],
                                        "label": "return_exchange"})
        assert saved.status_code == 201, saved.text
        assert saved.json()["locale"] == "zh"
        catalog = load_intents(intents)  # the loader of `hotline intents` reads the label
        assert "我要退货啊" in catalog.intents["return_exchange"].examples["zh"]
        assert "more_examples" in (intents / LABELS_FILE).read_text(encoding="utf-8")
        client.cookies.clear()
        left = (await client.get(f"{url}/v1/inbox", cookies=analyst.cookies)).json()
        assert [i["text"] for i in left] == ["退货"]
        other = left[0]

        async def label(seq: int, name: str) -> httpx.Response:
            client.cookies.clear()
            return await client.post(f"{url}/v1/inbox/labels", cookies=analyst.cookies,
                                     headers=analyst.headers,
                                     json={"call_id": "c2", "seq": seq, "label": name})

        unknown = await label(other["seq"], "refund_everything")
        assert unknown.status_code == 422 and "unknown intent" in unknown.text
        not_intent = await label(1, "refund_request")
        assert not_intent.status_code == 404 and "not an intent event" in not_intent.text
        oos = await label(other["seq"], "out_of_scope")
        assert oos.status_code == 201
        assert "退货" in load_intents(intents).out_of_scope["zh"]
        client.cookies.clear()
        page = await client.get(f"{url}/console/inbox", cookies=analyst.cookies)
        assert page.status_code == 200 and "我要退货啊" not in page.text
        client.cookies.clear()
        audit = await client.get(f"{url}/v1/audit", cookies=roles[Role.ADMIN].cookies)
        labels = [e for e in audit.json()["items"] if e["action"] == "intents.label"]
        assert {e["after"]["label"] for e in labels} == {"return_exchange", "out_of_scope"}
        assert all(e["actor"] == "test-analyst" for e in labels)
