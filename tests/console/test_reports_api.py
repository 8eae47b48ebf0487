"""The reports API on a real server: the figures as JSON with their formulas, CSV tables,
the streamed CDR export (masked for roles that may not see phone numbers), refusals."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from app.auth import Role
from app.sim.cli import serve_in_process
from tests.console.calls import DAY_START, write_day
from tests.helpers.auth import SignedIn, sign_in_as_each_role
from tests.helpers.live import live_settings

RANGE = {"start": DAY_START.isoformat(), "end": (DAY_START.replace(day=27)).isoformat()}


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    settings = live_settings(tmp_path, asr_models={}, auth_login_rate="1000/minute",
                             intent_model_dir=tmp_path / "no-intent-model")
    async with serve_in_process(settings) as server:
        write_day(server.app.state.repo)
        yield server.url, server.app


async def _get(client: httpx.AsyncClient, url: str, who: SignedIn,
               **params: str) -> httpx.Response:
    client.cookies.clear()
    return await client.get(url, params={**RANGE, **params}, cookies=who.cookies)


async def test_reports_as_json_and_csv(served: tuple[str, Any]) -> None:
    url, _ = served
    async with httpx.AsyncClient(timeout=60) as client:
        roles = await sign_in_as_each_role(client, url)
        analyst = roles[Role.ANALYST]
        got = await _get(client, f"{url}/v1/reports/outcomes", analyst)
        assert got.status_code == 200, got.text
        figures = {f["key"]: f for f in got.json()["figures"]}
        assert figures["containment"]["shown"] == "20.0 %"
        assert figures["containment"]["formula"] == "contained / answered"
        assert figures["answer_rate"]["label_zh"] == "接通率"
        assert figures["agent_answer_rate"]["shown"] == "n/a"
        table = await _get(client, f"{url}/v1/reports/menu_nodes/csv", analyst)
        assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(table.text.lstrip("\ufeff"))))
        assert rows[0][0] == "node" and rows[1][0] == "menu" and "我要退货啊 (2)" in rows[1]
        narrowed = await _get(client, f"{url}/v1/reports/outcomes", analyst, locale="en")
        assert {f["key"]: f["value"] for f in narrowed.json()["figures"]}["offered"] == 1
        bad = await _get(client, f"{url}/v1/reports/outcomes", analyst, tz="Mars/Base")
        assert bad.status_code == 422 and "unknown time zone" in bad.text
        unknown = await _get(client, f"{url}/v1/reports/nope", analyst)
        assert unknown.status_code == 404 and "outcomes" in unknown.json()["detail"]
        agent = await _get(client, f"{url}/v1/reports/outcomes", roles[Role.AGENT])
        assert agent.status_code == 403


async def test_cdr_export_is_streamed_masked_and_audited(served: tuple[str, Any]) -> None:
    url, _ = served
    async with httpx.AsyncClient(timeout=60) as client:
        roles = await sign_in_as_each_role(client, url)
        for role, caller in ((Role.ANALYST, "*******8000"), (Role.ADMIN, "13800138000")):
            client.cookies.clear()
            async with client.stream("GET", f"{url}/v1/reports/export/calls.csv",
                                     params=RANGE, cookies=roles[role].cookies) as response:
                assert response.status_code == 200
                assert "content-length" not in response.headers  # streamed
                text = "".join([chunk async for chunk in response.aiter_text()])
            rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
            assert [r["id"] for r in rows] == ["c1", "c2", "c3", "c4", "c5"]
            assert {r["caller_number"] for r in rows} == {caller}
            assert rows[1]["outcome"] == "abandoned" and rows[3]["handoff_target"] == "support"
        client.cookies.clear()
        audit = await client.get(f"{url}/v1/audit", cookies=roles[Role.ADMIN].cookies)
        assert audit.status_code == 200, audit.text
        assert any(e["action"] == "calls.export" and e["actor"] == "test-analyst"
                   for e in audit.json()["items"])
