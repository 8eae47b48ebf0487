"""The console pages over a real server as each role: what each one sees (reports with
formulas and an SVG chart, call search, a call's transcript, events and recording player
only for the roles allowed, each access audited), and a browser that is not signed in is
sent to the sign-in page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from app.auth import Role
from app.sim.cli import serve_in_process
from tests.console.calls import write_day
from tests.helpers.auth import SignedIn, sign_in_as_each_role
from tests.helpers.live import live_settings

DAY = {"start": "2026-11-26", "end": "2026-11-26"}


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    settings = live_settings(tmp_path, asr_models={}, auth_login_rate="1000/minute",
                             intent_model_dir=tmp_path / "no-intent-model")
    async with serve_in_process(settings) as server:
        write_day(server.app.state.repo)
        rec = settings.recordings_dir / "c3.wav"
        rec.parent.mkdir(parents=True, exist_ok=True)
        rec.write_bytes(b"RIFF")
        server.app.state.repo.add_recording("c3", "c3.wav", 40.0, True)
        yield server.url, server.app


async def page(client: httpx.AsyncClient, url: str, who: SignedIn | None,
               lang: str = "en", **params: str) -> httpx.Response:
    client.cookies.clear()
    return await client.get(url, params=params, cookies=who.cookies if who else None,
                            headers={"Accept-Language": lang})


async def test_pages_by_role(served: tuple[str, Any]) -> None:
    url, _ = served
    async with httpx.AsyncClient(timeout=60) as client:
        roles = await sign_in_as_each_role(client, url)
        analyst = roles[Role.ANALYST]
        reports = await page(client, f"{url}/console/reports", analyst, **DAY)
        assert reports.status_code == 200, reports.text
        assert 'data-key="containment"' in reports.text and "20.0 %" in reports.text
        assert "contained / answered" in reports.text and "<svg" in reports.text
        assert "/v1/reports/outcomes/csv?" in reports.text
        zh = await page(client, f"{url}/console/reports", analyst, lang="zh-CN,zh;q=0.9",
                        report="menu_nodes", **DAY)
        assert "报表" in zh.text and "我要退货啊 (2)" in zh.text and "未匹配率" in zh.text
        search = await page(client, f"{url}/console/calls", analyst, outcome="abandoned", **DAY)
        assert search.status_code == 200
        assert 'data-call="c2"' in search.text and 'data-call="c3"' in search.text
        assert 'data-call="c1"' not in search.text and "*******8000" in search.text
        call = await page(client, f"{url}/console/calls/c2", analyst)
        assert "我要退货啊" in call.text and 'data-type="transfer"' in call.text
        played = await page(client, f"{url}/console/calls/c3", analyst)
        assert 'src="/v1/calls/c3/recording?id=' in played.text
        developer = await page(client, f"{url}/console/calls/c3", roles[Role.DEVELOPER])
        assert developer.status_code == 200 and "<audio" not in developer.text
        assert "may not see this" in developer.text
        refused = await page(client, f"{url}/console/reports", roles[Role.AGENT])
        assert refused.status_code == 403 and "lacks reports:read" in refused.text
        nobody = await page(client, f"{url}/console/calls/c2", None)
        assert nobody.status_code == 303
        assert nobody.headers["location"] == "/console/login?next=/console/calls/c2"
        login = await page(client, nobody.headers["location"].join([url, ""]), None)
        assert login.status_code == 200 and 'id="login"' in login.text
        client.cookies.clear()
        audit = await client.get(f"{url}/v1/audit", cookies=roles[Role.ADMIN].cookies,
                                 params={"limit": 200})
        reads = {(e["actor"], e["target"]) for e in audit.json()["items"]
                 if e["action"] == "transcript.read"}
        assert {("test-analyst", "call:c2"), ("test-developer", "call:c3")} <= reads
