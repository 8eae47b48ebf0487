"""Bad input on every endpoint of a real ``hotline serve`` (its own process, real HTTP).

A table of bad requests, at least one per route (a route added without cases fails
``test_the_table_covers_every_route``): each gets its 4xx with a reason, never a 500, and the
keep-alive connection stays open. Then the limits (a body too large is refused before it is
read; a 422 never echoes a large input), WebSocket ids too long for a close frame, and
schemathesis over the OpenAPI schema with 0 server errors.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import WebSocketRoute

from app.main import create_app
from app.settings import PROJECT_ROOT, Settings
from tests.helpers.auth import ADMIN, ADMIN_TOKEN
from tests.helpers.sdp import cut_after, replaced
from tests.helpers.server import KO_NUMBER, free_port, serve_ko, wait_ready
from tests.helpers.speech import have_espeak

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

MAX_BODY_BYTES = 1_048_576  # the default http_max_body_bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("bad_input")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    routing = tmp / "routing.yaml"  # the bootstrap administrator is also an agent: the desk
    routing.write_text("version: 1\nagents:\n  bootstrap: {name: Boot, languages: [ko]}\n")
    # copies: the fuzzer may add examples, activate or roll back models through the API
    intents, models = tmp / "intents", tmp / "intent-models"
    shutil.copytree(PROJECT_ROOT / "intents", intents)
    if (PROJECT_ROOT / "models" / "intents").is_dir():
        shutil.copytree(PROJECT_ROOT / "models" / "intents", models)
    proc = serve_ko(tmp, port, HOTLINE_LOG_LEVEL="WARNING", HOTLINE_ROUTING_FILE=str(routing),
                    HOTLINE_INTENTS_DIR=str(intents), HOTLINE_INTENT_MODEL_DIR=str(models))
    try:
        asyncio.run(wait_ready(url, proc))
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = next(tmp.glob("server-*.log")).read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]  # no request crashed inside the server


@dataclass(frozen=True)
class Bad:
    route: str  # "GET /v1/calls/{call_id}", "WS /v1/calls/{call_id}/events"
    target: str  # the URL path and query sent
    status: int
    words: str = ""  # in the detail (or the WebSocket close reason)
    body: Any = None  # JSON-able, or bytes sent as is with Content-Type application/json
    extra: dict[str, str] = field(default_factory=dict)


def offer(sdp: Any, **fields: Any) -> dict[str, Any]:
    return {"sdp": sdp, "type": "offer", "hotline_number": KO_NUMBER, **fields}


LONG_ID = "x" * 200
SDP_BAD = "malformed SDP offer: line "
TABLE: list[Bad] = [
    Bad("GET /", "/?x=%ff%00", 200),
    Bad("GET /healthz", "/healthz?x=%ff%00", 200),
    Bad("GET /readyz", "/readyz?verbose=%ff", 200),
    Bad("GET /metrics", "/metrics?name[]=1", 200),
    Bad("GET /openapi.json", "/openapi.json?x=1", 200),
    Bad("GET /docs", "/docs?x=%ff", 200),
    Bad("GET /docs/oauth2-redirect", "/docs/oauth2-redirect?code=%ff", 200),
    Bad("GET /redoc", "/redoc?x=1", 200),
    Bad("GET /v1/hotlines", "/v1/hotlines?x=%ff", 200),
    Bad("GET /v1/calls", "/v1/calls?started_from=2026-01-01T00:00:00", 422, "timezone"),
    Bad("GET /v1/calls", "/v1/calls?started_to=2026-01-01", 422, "timezone"),
    Bad("GET /v1/calls", "/v1/calls?started_from=yesterday", 422, "datetime"),
    Bad("GET /v1/calls", "/v1/calls?offset=9223372036854775808", 422,
        "less than or equal to 2147483647"),
    Bad("GET /v1/calls", "/v1/calls?offset=-1", 422, "greater than or equal to 0"),
    Bad("GET /v1/calls", "/v1/calls?limit=1e999", 422, "valid integer"),
    Bad("GET /v1/calls", "/v1/calls?number=" + "9" * 100, 422, "at most 64 characters"),
    Bad("GET /v1/calls", "/v1/calls?outcome=%ED%A0%80", 200),  # not UTF-8: no match
    Bad("GET /v1/calls/{call_id}", "/v1/calls/" + LONG_ID, 422, "at most 64 characters"),
    Bad("GET /v1/calls/{call_id}", "/v1/calls/nope%00", 404, "no call nope"),
    Bad("GET /v1/calls/{call_id}/recording", "/v1/calls/nope/recording", 404, "no call"),
    Bad("GET /v1/calls/{call_id}/recording", "/v1/calls/nope/recording?id=-1", 422,
        "greater than or equal to 1"),
    Bad("GET /v1/calls/{call_id}/recording",
        "/v1/calls/nope/recording?id=99999999999999999999", 422, "less than or equal"),
    Bad("WS /v1/calls/events", "/v1/calls/events?x=%ff", 0),  # 0: accepted, stays open
    Bad("WS /v1/calls/{call_id}/events", "/v1/calls/nope/events", 4404, "no call nope"),
    Bad("WS /v1/calls/{call_id}/events", "/v1/calls/" + quote("é" * 60) + "/events", 4404,
        "no call"),  # 128 bytes of reason: cut to fit a close frame
    Bad("WS /v1/calls/{call_id}/events", "/v1/calls/" + LONG_ID + "/events", 1008,
        "at most 64 characters"),
    Bad("POST /v1/intents/reload", "/v1/intents/reload", 200, body=b"{not json"),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 422, "JSON", body=b"{not json"),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 422, "valid dictionary", body=b"[]"),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 422, "valid string",
        body=b'{"sdp": 1e999, "type": "offer", "hotline_number": "4000000001"}'),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 422, "unicode string",
        body=b'{"sdp": "v=0", "type": "offer", "hotline_number": "\\ud800"}'),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 422, "unicode string",
        body=b'{"sdp": "v=0\\r\\ns=\\udfff", "type": "offer", "hotline_number": "4000000001"}'),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 400, "error parsing the body",
        body=b'{"sdp": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 400, SDP_BAD + "28 'a=rtpmap:'",
        body=offer(replaced("a=rtpmap:111", "a=rtpmap:"))),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 400, SDP_BAD + "18 'a=mid:'",
        body=offer(replaced("a=mid:0", "a=mid:"))),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 400, SDP_BAD + "24 'a=msid: '",
        body=offer(replaced("a=msid:", "a=msid: "))),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 400, SDP_BAD + "14 'a=ice-pwd'",
        body=offer(cut_after("a=ice-pwd", "a=ice-pwd"))),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 400, SDP_BAD + "16 'a=fingerprint'",
        body=offer(cut_after("a=fingerprint", "a=fingerprint"))),
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 400, "no DTLS fingerprint",
        body=offer(cut_after("a=ice-options", ""))),  # cut off after the a=ice-pwd line
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 400, "no DTLS role",
        body=offer(cut_after("a=setup", ""))),  # cut off after the a=fingerprint line
    Bad("POST /v1/webrtc/offer", "/v1/webrtc/offer", 422, "at most 16 characters",
        body=offer("v=0", locale="fr" * 20)),
    Bad("GET /v1/webrtc/config", "/v1/webrtc/config?x=%ff", 200),
    Bad("GET /phone", "/phone?x=%ff", 200),
    Bad("GET /static/phone/{name}", "/static/phone/..%2F..%2Fmain.py", 404, "Not Found"),
    Bad("GET /static/phone/{name}", "/static/phone/" + "x" * 2000, 404, "no such file"),
    Bad("GET /demo/orders", "/demo/orders?x=%ff", 200),
    Bad("GET /demo/orders/{order_number}", "/demo/orders/abc", 422, "4 to 12 digits"),
    Bad("GET /demo/orders/{order_number}", "/demo/orders/0000", 404, "order not found"),
    Bad("POST /v1/auth/login", "/v1/auth/login", 422, "JSON", body=b"{not json"),
    Bad("POST /v1/auth/login", "/v1/auth/login", 422, "password",
        body={"name": "admin" * 100}),
    Bad("GET /v1/auth/me", "/v1/auth/me?x=%ff", 200),
    Bad("POST /v1/auth/password", "/v1/auth/password", 422, "valid dictionary", body=b"[]"),
    Bad("GET /v1/users", "/v1/users?x=%ff", 200),
    Bad("POST /v1/users", "/v1/users", 422, "role", body={"name": "x", "role": "nope",
                                                          "password": "long enough pass"}),
    Bad("PATCH /v1/users/{name}", "/v1/users/nobody", 422, "valid dictionary", body=b"[]"),
    Bad("GET /v1/tokens", "/v1/tokens?x=%ff", 200),
    Bad("POST /v1/tokens", "/v1/tokens", 422, "JSON", body=b"{not json"),
    Bad("DELETE /v1/tokens/{token_id}", "/v1/tokens/abc", 422, "valid integer"),
    Bad("GET /v1/audit", "/v1/audit?limit=-1", 422, "greater than"),
    Bad("GET /chat", "/chat?x=%ff", 200),
    Bad("GET /static/chat/{name}", "/static/chat/..%2F..%2Fmain.py", 404, "Not Found"),
    Bad("POST /v1/chat/sessions", "/v1/chat/sessions", 422, "JSON", body=b"{not json"),
    Bad("WS /v1/chat/sessions/{session_id}/ws", "/v1/chat/sessions/nope/ws", 4404,
        "no such chat"),
    Bad("GET /console", "/console?x=%ff", 303),  # to the first page the role may open
    Bad("GET /console/login", "/console/login?next=" + "x" * 300, 422, "at most 256"),
    Bad("GET /console/reports", "/console/reports?start=yesterday", 422, "valid date"),
    Bad("GET /console/reports", "/console/reports?report=nope", 404),  # an HTML page
    Bad("GET /console/reports", "/console/reports?tz=Mars/Base", 422),
    Bad("GET /console/calls", "/console/calls?page=0", 422, "greater than or equal to 1"),
    Bad("GET /console/calls/{call_id}", "/console/calls/nope", 404),
    Bad("GET /console/calls/{call_id}", "/console/calls/" + LONG_ID, 422, "at most 64"),
    Bad("GET /console/monitor", "/console/monitor?x=%ff", 200),
    Bad("GET /console/inbox", "/console/inbox?threshold=2", 422, "less than or equal to 1"),
    Bad("GET /console/config", "/console/config?number=4000000001&at=yesterday", 200),
    Bad("GET /static/console/{name}", "/static/console/..%2F..%2Fmain.py", 404, "Not Found"),
    Bad("GET /static/console/{name}", "/static/console/" + "x" * 2000, 404, "no such file"),
    Bad("GET /v1/reports", "/v1/reports?x=%ff", 200),
    Bad("GET /v1/reports/{name}", "/v1/reports/outcomes?start=2026-01-01T00:00:00", 422,
        "timezone"),
    Bad("GET /v1/reports/{name}", "/v1/reports/nope", 404, "no report 'nope'"),
    Bad("GET /v1/reports/{name}", "/v1/reports/outcomes?tz=Mars/Base", 422,
        "unknown time zone"),
    Bad("GET /v1/reports/{name}/csv", "/v1/reports/outcomes/csv?sla_s=-1", 422,
        "greater than or equal to 0"),
    Bad("GET /v1/reports/export/calls.csv", "/v1/reports/export/calls.csv?start=2026-02-01"
        "T00:00:00Z&end=2026-01-01T00:00:00Z", 422, "must be after start"),
    Bad("GET /v1/monitor", "/v1/monitor?x=%ff", 200),
    Bad("GET /v1/alerts", "/v1/alerts?x=%ff", 200),
    Bad("GET /v1/inbox", "/v1/inbox?threshold=x", 422, "valid number"),
    Bad("POST /v1/inbox/labels", "/v1/inbox/labels", 404, "no call nope",
        body={"call_id": "nope", "seq": 1, "label": "out_of_scope"}),
    Bad("POST /v1/inbox/labels", "/v1/inbox/labels", 422, "valid dictionary", body=b"[]"),
    Bad("GET /v1/inbox/retrain", "/v1/inbox/retrain?x=%ff", 200),
    Bad("POST /v1/inbox/retrain", "/v1/inbox/retrain", 422, "JSON", body=b"{not json"),
    Bad("GET /console/intents", "/console/intents?locale=" + "x" * 9, 422, "at most 3"),
    Bad("POST /v1/intents/examples", "/v1/intents/examples", 422,
        "more_examples of unknown intent 'nope'",
        body={"intent": "nope", "locale": "en", "text": "where is it"}),
    Bad("POST /v1/intents/examples", "/v1/intents/examples", 422, "string_pattern",
        body={"intent": "order_status", "locale": "EN", "text": "x"}),
    Bad("PATCH /v1/intents/examples", "/v1/intents/examples", 404, "has no example",
        body={"intent": "order_status", "locale": "en", "text": "nope", "new_text": "x y"}),
    Bad("POST /v1/intents/examples/remove", "/v1/intents/examples/remove", 422,
        "at most 200 characters", body={"intent": "a", "locale": "en", "text": "x" * 201}),
    Bad("GET /v1/intents/report", "/v1/intents/report?x=%ff", 200),
    Bad("GET /v1/intents/models", "/v1/intents/models?x=%ff", 200),
    Bad("POST /v1/intents/models/{version}/activate", "/v1/intents/models/nope/activate",
        404, "no intent model version 'nope'"),
    Bad("POST /v1/intents/models/rollback", "/v1/intents/models/rollback", 409),
    Bad("POST /v1/config/flows/check", "/v1/config/flows/check", 422, "a flow file ends",
        body={"filename": "x.txt", "text": ""}),
    Bad("POST /v1/config/flows/check", "/v1/config/flows/check", 422, "string_pattern",
        body={"filename": "../x.yaml", "text": ""}),
    Bad("GET /console/calendar", "/console/calendar?day=2027-02-30", 200),  # said on the page
    Bad("GET /v1/config/calendar", "/v1/config/calendar?today=9999-12-31", 422, "2000..2099"),
    Bad("POST /v1/config/calendar/entries", "/v1/config/calendar/entries", 422,
        "valid date", body={"date": "2027-02-30", "kind": "holiday", "name": "x"}),
    Bad("POST /v1/config/calendar/entries", "/v1/config/calendar/entries", 422,
        "2027-01-04 is a Monday", body={"date": "2027-01-04", "kind": "makeup"}),
    Bad("POST /v1/config/calendar/entries", "/v1/config/calendar/entries", 422,
        "a holiday needs a name", body={"date": "2027-01-01", "kind": "holiday"}),
    Bad("POST /v1/config/calendar/entries", "/v1/config/calendar/entries", 422,
        "hours must look like", body={"date": "2027-01-05", "kind": "hours",
                                      "hours": ["9-18"]}),
    Bad("DELETE /v1/config/calendar/entries/{day}", "/v1/config/calendar/entries/tomorrow",
        422, "valid date"),
    Bad("DELETE /v1/config/calendar/entries/{day}", "/v1/config/calendar/entries/2099-07-13",
        404, "no calendar entry on 2099-07-13"),
    Bad("GET /v1/config/calendar/preview", "/v1/config/calendar/preview", 422, "missing"),
    Bad("POST /v1/config/routing", "/v1/config/routing", 422, "routing.yaml:2",
        body={"text": "version: 1\nhotlines: 7\n"}),
    Bad("POST /v1/config/routing", "/v1/config/routing", 422, "at least 1 character",
        body={"text": ""}),
    Bad("POST /v1/config/flows", "/v1/config/flows", 422, "broken.yaml:3: YAML error",
        body={"filename": "broken.yaml", "text": "id: x\nnodes: [\n"}),
    Bad("POST /v1/config/flows", "/v1/config/flows", 422, "letters, digits",
        body={"filename": "a.txt", "text": "id: x\n"}),
    Bad("POST /v1/config/flows", "/v1/config/flows", 422, "string_pattern",
        body={"filename": "../x.yaml", "text": "id: x\n"}),
    Bad("GET /v1/config/flows/{flow_id}/versions", "/v1/config/flows/a%20b/versions", 422,
        "string_pattern"),
    Bad("POST /v1/config/flows/{flow_id}/versions/{version}/activate",
        "/v1/config/flows/nope/versions/0/activate", 422, "greater than or equal to 1"),
    Bad("POST /v1/config/flows/{flow_id}/versions/{version}/activate",
        "/v1/config/flows/nope/versions/3/activate", 422, "flow 'nope' has no version 3"),
    Bad("GET /console/prompts", "/console/prompts?x=%ff%00", 200),
    Bad("GET /v1/config/prompts", "/v1/config/prompts?x=%ff", 200),
    Bad("GET /v1/config/prompts/play", "/v1/config/prompts/play?locale=ko", 422,
        "Field required"),
    Bad("GET /v1/config/prompts/play", "/v1/config/prompts/play?locale=xx&text=hi", 422,
        "unknown_locale"),
    Bad("GET /v1/config/prompts/play", "/v1/config/prompts/play?locale=ko&text=%7Bnope%7D",
        422, "{nope} has no sample value"),
    Bad("GET /v1/config/prompts/play", "/v1/config/prompts/play?locale=ko&text=hi&flow=zz",
        422, "no flow 'zz'"),
    Bad("POST /v1/config/prompts/{key}/recording", "/v1/config/prompts/xyz/recording", 422,
        "at least 20 characters", body={}),
    Bad("POST /v1/config/prompts/{key}/recording",
        "/v1/config/prompts/0123456789abcdef0123/recording", 422, "file", body=b"{}"),
    Bad("DELETE /v1/config/prompts/{key}/recording",
        "/v1/config/prompts/0123456789abcdef0123/recording", 404,
        "has no uploaded recording"),
    Bad("POST /v1/config/flows/{flow_id}/rollback", "/v1/config/flows/nope/rollback", 422,
        "no earlier active version"),
    Bad("GET /agent", "/agent?x=%ff", 200),
    Bad("GET /static/agent/{name}", "/static/agent/..%2F..%2Fmain.py", 404, "Not Found"),
    Bad("GET /static/agent/{name}", "/static/agent/" + "x" * 2000, 404, "no such file"),
    Bad("GET /v1/desk/me", "/v1/desk/me?x=%ff", 200),
    Bad("GET /v1/desk/today", "/v1/desk/today?x=%ff", 200),
    Bad("POST /v1/desk/status", "/v1/desk/status", 422, "JSON", body=b"{not json"),
    Bad("POST /v1/desk/status", "/v1/desk/status", 422, "available", body={"status": "nap"}),
    Bad("POST /v1/desk/status", "/v1/desk/status", 400, "reason", body={"status": "away"}),
    Bad("POST /v1/desk/ready", "/v1/desk/ready", 409, "wrap"),
    Bad("POST /v1/desk/offers/{offer_id}/media", "/v1/desk/offers/nope/media", 422, "sdp",
        body={}),
    Bad("POST /v1/desk/offers/{offer_id}/answer", "/v1/desk/offers/nope/answer", 409,
        "not ringing", body={}),
    Bad("POST /v1/desk/offers/{offer_id}/decline", "/v1/desk/offers/nope/decline", 409,
        "not ringing"),
    Bad("POST /v1/desk/calls/{call_id}/actions/{action}", "/v1/desk/calls/x/actions/dance",
        404, "no action"),
    Bad("POST /v1/desk/calls/{call_id}/actions/{action}", "/v1/desk/calls/x/actions/hold",
        409, "not on call"),
    Bad("POST /v1/desk/calls/{call_id}/actions/{action}",  # a chat message: text required
        "/v1/desk/calls/x/actions/message", 422, "at least 1 character", body={"text": ""}),
    Bad("POST /v1/desk/calls/{call_id}/actions/{action}",  # and within the chat's limit
        "/v1/desk/calls/x/actions/message", 422, "at most 1000 characters",
        body={"text": "x" * 1001}),
    Bad("POST /v1/desk/calls/{call_id}/actions/{action}",
        "/v1/desk/calls/x/actions/message", 409, "not on call", body={"text": "hi"}),
    Bad("GET /v1/desk/calls/{call_id}/draft", "/v1/desk/calls/nope/draft", 404, "no call"),
    Bad("POST /v1/desk/calls/{call_id}/wrapup", "/v1/desk/calls/nope/wrapup", 422,
        "disposition", body={}),
    Bad("WS /v1/desk/ws", "/v1/desk/ws?x=%ff", 0),
    Bad("POST /v1/calls/{call_id}/supervise", "/v1/calls/x/supervise", 422, "mode",
        body={"sdp": "v=0"}),
    Bad("POST /v1/calls/{call_id}/supervise", "/v1/calls/x/supervise", 422, "barge",
        body={"mode": "spy", "sdp": "v=0"}),
    Bad("POST /v1/calls/{call_id}/supervise", "/v1/calls/x/supervise", 422, "sdp",
        body={"mode": "listen", "sdp": ""}),
    Bad("POST /v1/calls/{call_id}/supervise", "/v1/calls/x/supervise", 409,
        "not talking to an agent", body={"mode": "listen", "sdp": "v=0"}),
    Bad("POST /v1/calls/{call_id}/supervise/mode", "/v1/calls/x/supervise/mode", 422,
        "JSON", body=b"{not json"),
    Bad("POST /v1/calls/{call_id}/supervise/mode", "/v1/calls/x/supervise/mode", 409,
        "not talking to an agent", body={"mode": "whisper"}),
    Bad("POST /v1/calls/{call_id}/supervise/leave", "/v1/calls/x/supervise/leave", 409,
        "not talking to an agent"),
    Bad("POST /v1/agents/{agent_id}/state", "/v1/agents/x/state", 422, "state",
        body={"state": "asleep"}),
    Bad("POST /v1/agents/{agent_id}/state", "/v1/agents/x/state", 422, "away needs a reason",
        body={"state": "away"}),
    Bad("POST /v1/agents/{agent_id}/state", "/v1/agents/x/state", 422, "reason goes with away",
        body={"state": "offline", "reason": "break"}),
    Bad("POST /v1/agents/{agent_id}/state", "/v1/agents/nobody/state", 404, "no agent",
        body={"state": "available"}),
    Bad("POST /v1/auth/logout", "/v1/auth/logout?x=%ff", 204),  # last: a token is not a
]  # session, so the admin token stays valid


def _routes() -> set[str]:
    app = create_app(Settings())
    found = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = getattr(context, "path", None) or getattr(route, "path", "")
        if isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
            found.add(f"WS {path}")
        else:
            found |= {f"{m} {path}" for m in getattr(route, "methods", ()) if m != "HEAD"}
    return found


def test_the_table_covers_every_route() -> None:
    missing = _routes() - {case.route for case in TABLE}
    assert not missing, f"routes without bad-input cases: {sorted(missing)}"


def test_every_route_answers_bad_input_with_a_4xx_and_keeps_the_connection(
        server: str) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=server, timeout=60, limits=limits, headers=ADMIN) as client:
        for case in TABLE:
            if case.route.startswith("WS "):
                continue
            method = case.route.split(" ", 1)[0]
            kwargs: dict[str, Any] = {}
            if isinstance(case.body, bytes):
                kwargs = {"content": case.body, "headers": {"content-type": "application/json"}}
            elif case.body is not None:
                kwargs = {"json": case.body}
            response = client.request(method, httpx.URL(case.target), **kwargs)
            where = f"{case.route} {case.target[:80]!r}"
            assert response.status_code == case.status, (where, response.text[:300])
            assert response.headers.get("connection", "") != "close", where
            if case.words:
                detail = response.json()["detail"]
                assert case.words in json.dumps(detail, ensure_ascii=False), (where, detail)
            if response.status_code >= 400:
                assert len(response.content) < 4000, (where, len(response.content))
        assert client.get("/healthz").status_code == 200


async def test_websockets_with_bad_ids_close_with_a_short_reason(server: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    base = "ws" + server.removeprefix("http")
    for case in (c for c in TABLE if c.route.startswith("WS ")):
        async with connect(base + case.target, open_timeout=30, additional_headers=ADMIN) as ws:
            if case.status == 0:  # accepted and stays open (a greeting is fine)
                with pytest.raises(TimeoutError):
                    while True:
                        await asyncio.wait_for(ws.recv(), 0.5)
                continue
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None, case.target
        code, reason = closed.value.rcvd.code, closed.value.rcvd.reason
        assert code == case.status and case.words in reason, (case.target, code, reason)
        assert len(reason.encode("utf-8")) <= 123
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{server}/healthz")).status_code == 200


def _raw_post(server: str, head: str, send: Iterator[bytes]) -> tuple[bytes, int]:
    """POST with a raw socket; stop sending as soon as the server answers. Returns the
    answer's first bytes and how many body bytes went out before it."""
    host, port = server.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + 30
        for piece in send:
            try:
                answer = sock.recv(4096)
                break
            except BlockingIOError:
                pass
            try:
                sent += sock.send(piece)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        while not answer and time.monotonic() < deadline:
            answer = sock.recv(4096)
        return answer, sent


def test_a_body_over_the_limit_gets_413_before_it_is_read(server: str) -> None:
    chunk = b"x" * 65_536
    declared = 200 * 1024 * 1024
    answer, sent = _raw_post(
        server, f"POST /v1/webrtc/offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                f"\r\nContent-Length: {declared}\r\n\r\n", iter([chunk] * (declared // 65_536)))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 1024 * 1024  # answered long before 200 MB went out
    # without a length (chunked), counting stops it at the limit
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    answer, sent = _raw_post(
        server, "POST /v1/webrtc/offer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                "\r\n\r\n", iter([piece] * 512))  # 32 MiB offered
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 1024 * 1024  # the rest of what went out sat in socket buffers


def test_a_422_never_echoes_a_large_input(server: str) -> None:
    big = offer("v=0\r\n" + "a=x:" + "y" * 900_000)
    response = httpx.post(f"{server}/v1/webrtc/offer", json=big, timeout=60)
    assert response.status_code == 422
    assert "at most 64000 characters" in response.text
    assert len(response.content) < 2000


@pytest.mark.timeout(660)  # schemathesis' own limit (600 s) first: a slow box is not a failure
def test_schemathesis_finds_no_server_error(server: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server}/openapi.json",
         "--checks", "not_a_server_error", "--max-examples", "25", "--workers", "1",
         "--phases", "examples,coverage,fuzzing", "--request-timeout", "60",
         "--generation-database", "none", "--seed", "1", "--no-color",
         "--header", f"Authorization: Bearer {ADMIN_TOKEN}",  # as admin: every route's body
         "--exclude-path", "/v1/inbox/retrain"],  # would train a real model in the background
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "generated" in run.stdout and " failed" not in run.stdout.split("SUMMARY")[-1]
