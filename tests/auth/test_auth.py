"""Signing in, sessions and their cookie, lockout, rate limits, CSRF, Origin, tokens, the
audit log, role-shaped call data and the caller's pass, on a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.auth import Role
from app.media.audio import Pcm
from app.sim.caller import KeyPress, place_call
from app.sim.cli import serve_in_process
from tests.helpers.auth import (
    ADMIN,
    PASSWORD,
    create_user,
    sign_in,
    sign_in_as_each_role,
    token_for_each_role,
)
from tests.helpers.live import NUMBER, Live, live_settings
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

pytestmark = needs(have_espeak(), "espeak-ng")
CALLER = "+8613800138000"


@pytest_asyncio.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    settings = live_settings(tmp_path, asr_models={}, auth_max_failed_logins=3,
                             auth_login_rate="7/minute",
                             intent_model_dir=tmp_path / "no-intent-model")  # starts fast
    async with serve_in_process(settings) as served:
        yield Live(served.url, served.app, served.settings)


async def _audit(client: httpx.AsyncClient, url: str, **query: str) -> list[dict[str, Any]]:
    page = (await client.get(f"{url}/v1/audit", params=query, headers=ADMIN)).json()
    return list(page["items"])


async def test_sign_in_cookie_lockout_and_rate_limit(live: Live) -> None:
    url = live.url
    async with httpx.AsyncClient(timeout=60) as client:
        await create_user(client, url, "ana", Role.ANALYST)
        ok = await client.post(f"{url}/v1/auth/login", json={"name": "ana",
                                                             "password": PASSWORD})
        assert ok.status_code == 200 and ok.json()["role"] == "analyst"
        cookie = ok.headers["set-cookie"].lower()
        assert "hotline_session=" in cookie and "httponly" in cookie
        assert "samesite=lax" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain HTTP, auth_cookie_secure=auto
        me = await client.get(f"{url}/v1/auth/me")
        assert me.json()["name"] == "ana" and me.json()["csrf_token"] == ok.json()["csrf_token"]
        assert (await client.post(f"{url}/v1/auth/logout",
                                  headers={"X-CSRF-Token": ok.json()["csrf_token"]}
                                  )).status_code == 204
        assert (await client.get(f"{url}/v1/auth/me")).status_code == 401  # session ended
        # three wrong passwords lock the account: then even the right one is refused
        client.cookies.clear()
        for _ in range(3):
            wrong = await client.post(f"{url}/v1/auth/login",
                                      json={"name": "ana", "password": "guess guess guess"})
            assert wrong.status_code == 401
            assert wrong.json()["detail"] == "wrong user name or password"
        locked = await client.post(f"{url}/v1/auth/login",
                                   json={"name": "ana", "password": PASSWORD})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 800
        unknown = await client.post(f"{url}/v1/auth/login",
                                    json={"name": "nobody", "password": PASSWORD})
        assert unknown.status_code == 401  # same answer as a wrong password
        # an admin's new password unlocks it
        reset = await client.patch(f"{url}/v1/users/ana", headers=ADMIN,
                                   json={"password": "another long password"})
        assert reset.status_code == 200 and reset.json()["locked_until"] is None
        await sign_in(client, url, "ana", "another long password")
        # the 8th attempt from this address within a minute is refused before any check
        limited = await client.post(f"{url}/v1/auth/login",
                                    json={"name": "ana", "password": "another long password"})
        assert limited.status_code == 429 and "too many" in limited.json()["detail"]
        actions = [e["action"] for e in await _audit(client, url, target="ana")]
        assert {"auth.login", "auth.login_failed", "auth.login_locked", "auth.logout",
                "user.update"} <= set(actions)
        updated = await _audit(client, url, action="user.update", target="ana")
        assert updated[0]["before"]["name"] == "ana" and updated[0]["after"]["password"]
        assert updated[0]["actor"] == "bootstrap"


async def test_csrf_and_origin_guard_cookie_sessions_and_sockets(live: Live) -> None:
    url = live.url
    async with httpx.AsyncClient(timeout=60) as client:
        sessions = await sign_in_as_each_role(client, url)
        analyst = sessions[Role.ANALYST]
        client.cookies.clear()
        no_token = await client.post(f"{url}/v1/intents/reload", cookies=analyst.cookies)
        assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
        wrong = await client.post(f"{url}/v1/intents/reload", cookies=analyst.cookies,
                                  headers={"X-CSRF-Token": sessions[Role.ADMIN].csrf})
        assert wrong.status_code == 403
        right = await client.post(f"{url}/v1/intents/reload", cookies=analyst.cookies,
                                  headers=analyst.headers)
        assert right.status_code not in (401, 403)
        evil = await client.post(f"{url}/v1/intents/reload", cookies=analyst.cookies,
                                 headers={**analyst.headers, "Origin": "http://evil.example"})
        assert evil.status_code == 403 and "evil.example" in evil.json()["detail"]
        same = await client.post(f"{url}/v1/intents/reload", cookies=analyst.cookies,
                                 headers={**analyst.headers, "Origin": url})
        assert same.status_code not in (401, 403)
        # a cross-site form post cannot sign anyone in either
        forged = await client.post(f"{url}/v1/auth/login", headers={"Origin": "null"},
                                   json={"name": "test-admin", "password": PASSWORD})
        assert forged.status_code == 403
        # live events: the admin token from the wrong origin is refused at the handshake
        ws = url.replace("http", "ws") + "/v1/calls/events"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws, additional_headers=ADMIN, origin="http://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        async with connect(ws, additional_headers=ADMIN, origin=url):  # type: ignore[arg-type]
            pass


async def test_metrics_need_a_token_with_the_scope(live: Live) -> None:
    url = live.url
    async with httpx.AsyncClient(timeout=60) as client:
        assert (await client.get(f"{url}/metrics")).status_code == 401
        tokens = await token_for_each_role(client, url)
        scraper = await client.get(f"{url}/metrics",
                                   headers={"Authorization": f"Bearer {tokens[Role.DEVELOPER]}"})
        assert scraper.status_code == 200 and "hotline_calls_active" in scraper.text
        # scopes are capped by the owner's role, and a revoked token stops at once
        too_much = await client.post(f"{url}/v1/tokens", headers=ADMIN, json={
            "name": "x", "user": "tok-agent", "scopes": ["metrics:read"]})
        assert too_much.status_code == 400 and "does not allow" in too_much.json()["detail"]
        listed = (await client.get(f"{url}/v1/tokens", headers=ADMIN)).json()
        dev = next(t for t in listed if t["user"] == "tok-developer")
        assert "token" not in dev and dev["prefix"].startswith("hlt_")
        revoked = await client.delete(f"{url}/v1/tokens/{dev['id']}", headers=ADMIN)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        gone = await client.get(f"{url}/metrics",
                                headers={"Authorization": f"Bearer {tokens[Role.DEVELOPER]}"})
        assert gone.status_code == 401


async def test_calls_are_shaped_by_role_and_every_read_is_audited(live: Live) -> None:
    url = live.url
    silence = Pcm(b"\x00" * 16_000 * 2 * 8, 16_000)
    seen: list[dict[str, Any]] = []
    result = await place_call(url, silence, hotline_number=NUMBER, caller_number=CALLER,
                              dtmf=[KeyPress("1", 1.0)], timeout_s=40, on_event=seen.append)
    # the caller followed their own call with the pass: the conversation, not the machinery
    types = {e["type"] for e in result.events}
    assert {"call_started", "prompt_played", "dtmf"} <= types
    assert "flow_step" not in types and "node_entered" in types
    async with httpx.AsyncClient(timeout=60) as client:
        detail = await _finished(client, url, result.call_id)
        assert detail["cdr"]["caller_number"] == CALLER  # admin: in pii_clear_roles
        sessions = await sign_in_as_each_role(client, url)
        client.cookies.clear()
        analyst = (await client.get(f"{url}/v1/calls/{result.call_id}",
                                    cookies=sessions[Role.ANALYST].cookies)).json()
        assert analyst["cdr"]["caller_number"] == "+*********8000"
        assert analyst["events"] and analyst["turns"]
        listed = (await client.get(f"{url}/v1/calls",
                                   cookies=sessions[Role.SUPERVISOR].cookies)).json()
        assert listed["items"][0]["caller_number"] == "+*********8000"
        # a token that may read CDRs but not transcripts gets the CDR alone
        narrow = await client.post(f"{url}/v1/tokens", headers=ADMIN, json={
            "name": "cdr only", "user": "test-developer", "scopes": ["calls:read"]})
        bearer = {"Authorization": f"Bearer {narrow.json()['token']}"}
        cdr_only = (await client.get(f"{url}/v1/calls/{result.call_id}", headers=bearer)).json()
        assert cdr_only["events"] == [] and cdr_only["turns"] == []
        assert cdr_only["cdr"]["flow_state"] is None and cdr_only["cdr"]["outcome"]
        wav = await client.get(f"{url}/v1/calls/{result.call_id}/recording",
                               cookies=sessions[Role.SUPERVISOR].cookies)
        assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
        reads = await _audit(client, url, target=f"call:{result.call_id}")
        who = {(e["actor"], e["action"]) for e in reads}
        assert {("test-analyst", "transcript.read"), ("test-supervisor", "recording.read"),
                ("bootstrap", "transcript.read")} <= who
        assert ("test-developer", "transcript.read") not in who  # it got no transcript
        assert all(datetime.fromisoformat(e["at"]) <= datetime.now(UTC) for e in reads)
        assert (await client.get(f"{url}/v1/audit", cookies=sessions[Role.ANALYST].cookies)
                ).status_code == 403
    # a forged pass opens nothing
    ws = url.replace("http", "ws")
    assert seen
    with pytest.raises(InvalidStatus):
        async with connect(f"{ws}/v1/calls/{result.call_id}/events?caller_token=forged"):
            pass
    with pytest.raises(InvalidStatus):
        async with connect(f"{ws}/v1/calls/events?caller_token=forged"):
            pass


async def _finished(client: httpx.AsyncClient, url: str, call_id: str) -> dict[str, Any]:
    for _ in range(200):
        detail: dict[str, Any] = (await client.get(f"{url}/v1/calls/{call_id}",
                                                   headers=ADMIN)).json()
        if detail["cdr"]["outcome"] is not None:
            return detail
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_id} never ended")
