"""The access matrix: every route of the app x every role (signed in, and by API token) and
nobody, against a real server. A route added without a line here fails the first test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.auth import Role
from app.auth.deps import declared_routes
from app.main import create_app
from app.sim.cli import serve_in_process
from tests.helpers.auth import SignedIn, sign_in_as_each_role, token_for_each_role
from tests.helpers.live import live_settings

EVERYONE = frozenset({"anonymous", *Role})
SIGNED_IN = frozenset(Role)
A, S, G, N, D = Role.ADMIN, Role.SUPERVISOR, Role.AGENT, Role.ANALYST, Role.DEVELOPER
CALL_READERS = frozenset({A, S, N, D})
DESK_USERS = frozenset({A, S, G})  # the desk: whoever has desk rights and is a routed agent
REPORT_READERS = frozenset({A, S, N})

# "METHOD path" -> who gets through
MATRIX: dict[str, frozenset[str]] = {
    "GET /": EVERYONE,
    "GET /healthz": EVERYONE,
    "GET /readyz": EVERYONE,
    "GET /metrics": frozenset({A, S, D}),
    "GET /openapi.json": EVERYONE,
    "GET /docs": EVERYONE,
    "GET /docs/oauth2-redirect": EVERYONE,
    "GET /redoc": EVERYONE,
    "POST /v1/auth/login": EVERYONE,
    "POST /v1/auth/logout": SIGNED_IN,
    "GET /v1/auth/me": SIGNED_IN,
    "POST /v1/auth/password": SIGNED_IN,
    "GET /v1/users": frozenset({A}),
    "POST /v1/users": frozenset({A}),
    "PATCH /v1/users/{name}": frozenset({A}),
    "GET /v1/tokens": frozenset({A, D}),
    "POST /v1/tokens": frozenset({A, D}),
    "DELETE /v1/tokens/{token_id}": frozenset({A, D}),
    "GET /v1/audit": frozenset({A}),
    "GET /v1/hotlines": EVERYONE,
    "GET /v1/calls": CALL_READERS,
    "GET /v1/calls/{call_id}": CALL_READERS,
    "GET /v1/calls/{call_id}/recording": frozenset({A, S, N}),
    "WS /v1/calls/events": frozenset({A, S, D}),
    "WS /v1/calls/{call_id}/events": CALL_READERS,
    "POST /v1/intents/reload": frozenset({A, N}),
    "GET /v1/reports": REPORT_READERS,
    "GET /v1/reports/{name}": REPORT_READERS,
    "GET /v1/reports/{name}/csv": REPORT_READERS,
    "GET /v1/reports/export/calls.csv": REPORT_READERS,
    "GET /console/login": EVERYONE,
    "GET /static/console/{name}": EVERYONE,
    "GET /console": CALL_READERS,  # signed in, sent to their first page; an agent has none
    "GET /console/reports": REPORT_READERS,
    "GET /console/calls": CALL_READERS,
    "GET /console/calls/{call_id}": CALL_READERS,
    "GET /console/monitor": frozenset({A, S}),
    "GET /v1/monitor": frozenset({A, S}),
    "POST /v1/agents/{agent_id}/state": frozenset({A, S}),
    "POST /v1/calls/{call_id}/supervise": frozenset({A, S}),
    "POST /v1/calls/{call_id}/supervise/mode": frozenset({A, S}),
    "POST /v1/calls/{call_id}/supervise/leave": frozenset({A, S}),
    "GET /v1/alerts": frozenset({A, S}),
    "GET /console/inbox": frozenset({A, N}),
    "GET /v1/inbox": frozenset({A, N}),
    "POST /v1/inbox/labels": frozenset({A, N}),
    "GET /v1/inbox/retrain": frozenset({A, N}),
    "POST /v1/inbox/retrain": frozenset({A, N}),
    "GET /console/intents": frozenset({A, N}),
    "POST /v1/intents/examples": frozenset({A, N}),
    "PATCH /v1/intents/examples": frozenset({A, N}),
    "POST /v1/intents/examples/remove": frozenset({A, N}),
    "GET /v1/intents/report": frozenset({A, N}),
    "GET /v1/intents/models": frozenset({A, N}),
    "POST /v1/intents/models/{version}/activate": frozenset({A, N}),
    "POST /v1/intents/models/rollback": frozenset({A, N}),
    "GET /console/config": frozenset({A}),
    "POST /v1/config/flows/check": frozenset({A}),
    "POST /v1/config/routing": frozenset({A}),
    "GET /console/calendar": frozenset({A}),
    "GET /v1/config/calendar": frozenset({A}),
    "POST /v1/config/calendar/entries": frozenset({A}),
    "DELETE /v1/config/calendar/entries/{day}": frozenset({A}),
    "GET /v1/config/calendar/preview": frozenset({A}),
    "POST /v1/config/flows": frozenset({A}),
    "GET /v1/config/flows/{flow_id}/versions": frozenset({A}),
    "POST /v1/config/flows/{flow_id}/versions/{version}/activate": frozenset({A}),
    "POST /v1/config/flows/{flow_id}/rollback": frozenset({A}),
    "GET /console/prompts": frozenset({A}),
    "GET /v1/config/prompts": frozenset({A}),
    "GET /v1/config/prompts/play": frozenset({A}),
    "POST /v1/config/prompts/{key}/recording": frozenset({A}),
    "DELETE /v1/config/prompts/{key}/recording": frozenset({A}),
    "POST /v1/webrtc/offer": EVERYONE,
    "GET /v1/webrtc/config": EVERYONE,
    "GET /phone": EVERYONE,
    "GET /static/phone/{name}": EVERYONE,
    "GET /demo/orders/{order_number}": EVERYONE,
    "GET /demo/orders": EVERYONE,
    "GET /agent": EVERYONE,
    "GET /static/agent/{name}": EVERYONE,
    "GET /v1/desk/me": DESK_USERS,
    "POST /v1/desk/status": DESK_USERS,
    "POST /v1/desk/ready": DESK_USERS,
    "POST /v1/desk/offers/{offer_id}/media": DESK_USERS,
    "POST /v1/desk/offers/{offer_id}/answer": DESK_USERS,
    "POST /v1/desk/offers/{offer_id}/decline": DESK_USERS,
    "POST /v1/desk/calls/{call_id}/actions/{action}": DESK_USERS,
    "GET /v1/desk/calls/{call_id}/draft": DESK_USERS,
    "POST /v1/desk/calls/{call_id}/wrapup": DESK_USERS,
    "GET /v1/desk/today": DESK_USERS,
    "WS /v1/desk/ws": DESK_USERS,
    "GET /chat": EVERYONE,
    "GET /static/chat/{name}": EVERYONE,
    "POST /v1/chat/sessions": EVERYONE,
    "WS /v1/chat/sessions/{session_id}/ws": EVERYONE,
}
# no intent model here: these answer 503 to whoever gets through
NEED_A_MODEL = frozenset({"POST /v1/intents/reload", "POST /v1/inbox/retrain"})
PATH_VALUES = {"{name}": "nobody", "{token_id}": "999999", "{call_id}": "nope",
               "{order_number}": "4567", "{session_id}": "nope", "{offer_id}": "nope",
               "{action}": "hold", "{agent_id}": "nope", "{flow_id}": "nope", "{version}": "7",
               "{key}": "0123456789abcdef0123"}


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, object]]:
    # every test user is also an agent of the routing: the desk's access rule is what the
    # matrix asserts (a desk user who is no routed agent is refused by the desk itself)
    routing = tmp_path / "routing.yaml"
    agents = "".join(f"  {who}-{role.value}: {{name: {role.value}, languages: [ko]}}\n"
                     for role in Role for who in ("test", "tok"))  # signed in; token users
    routing.write_text(f"version: 1\nagents:\n{agents}", encoding="utf-8")
    settings = live_settings(tmp_path, asr_models={}, auth_login_rate="1000/minute",
                             intent_model_dir=tmp_path / "no-intent-model",
                             routing_file=routing)
    async with serve_in_process(settings) as served:
        yield served.url, served.app


def _target(route: str) -> tuple[str, str]:
    method, path = route.split(" ", 1)
    for key, value in PATH_VALUES.items():
        path = path.replace(key, value)
    return method, path


async def _passes(client: httpx.AsyncClient, url: str, route: str,
                  headers: dict[str, str], cookies: httpx.Cookies | None) -> bool:
    """True when the request got past access control (any answer but 401/403)."""
    method, path = _target(route)
    if method == "WS":
        if cookies is not None:
            headers = {**headers, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        try:
            async with connect(url.replace("http", "ws") + path, additional_headers=headers,
                               open_timeout=30):
                return True
        except InvalidStatus as exc:
            assert exc.response.status_code == 403, exc
            return False
    body = {} if method in ("POST", "PATCH") else None
    client.cookies.clear()
    response = await client.request(method, url + path, headers=headers, json=body,
                                     cookies=cookies)
    # (no intent model here: the reload answers 503 to whoever gets through)
    assert response.status_code < 500 or route in NEED_A_MODEL, (
        route, response.status_code, response.text)
    if response.status_code in (401, 403):
        return False
    if response.headers.get("location", "").startswith("/console/login"):
        return False  # a console page sends a browser that is not signed in to sign in
    return True


def _ordered(routes: list[str]) -> list[str]:
    return sorted(routes, key=lambda r: r == "POST /v1/auth/logout")  # signing out last


def test_every_route_is_in_the_matrix(tmp_path: Path) -> None:
    app = create_app(live_settings(tmp_path))
    declared = {f"{method} {path}" for method, path, _ in declared_routes(app)}
    framework = {"GET /openapi.json", "GET /docs", "GET /docs/oauth2-redirect", "GET /redoc"}
    assert declared | framework == set(MATRIX)


async def test_who_gets_through_every_route(server: tuple[str, object]) -> None:
    url, _ = server
    async with httpx.AsyncClient(timeout=60) as client:
        sessions: dict[Role, SignedIn] = await sign_in_as_each_role(client, url)
        tokens = await token_for_each_role(client, url)
        got: dict[str, set[str]] = {route: set() for route in MATRIX}
        anonymous: dict[str, bool] = {}
        for route in _ordered(list(MATRIX)):
            anonymous[route] = await _passes(client, url, route, {}, None)
            if anonymous[route]:
                got[route].add("anonymous")
            for role, signed in sessions.items():
                by_session = await _passes(client, url, route, signed.headers, signed.cookies)
                by_token = await _passes(client, url, route,
                                         {"Authorization": f"Bearer {tokens[role]}"}, None)
                assert by_session == by_token, (route, role, by_session, by_token)
                if by_session:
                    got[route].add(role)
    wrong = {route: (sorted(got[route]), sorted(MATRIX[route]))
             for route in MATRIX if got[route] != MATRIX[route]}
    assert wrong == {}


async def test_refusals_say_why(server: tuple[str, object]) -> None:
    url, _ = server
    async with httpx.AsyncClient(timeout=60) as client:
        nobody = await client.get(f"{url}/v1/calls")
        assert nobody.status_code == 401 and nobody.headers["www-authenticate"] == "Bearer"
        assert "sign in" in nobody.json()["detail"]
        bad = await client.get(f"{url}/v1/calls", headers={"Authorization": "Bearer hlt_nope"})
        assert bad.status_code == 401 and "invalid" in bad.json()["detail"]
        sessions = await sign_in_as_each_role(client, url)
        agent = sessions[Role.AGENT]
        client.cookies.clear()
        refused = await client.get(f"{url}/v1/calls", cookies=agent.cookies)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "test-agent (agent) lacks calls:read"
