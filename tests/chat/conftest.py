"""Chat test rig: a real ``hotline serve`` (its own process, ``tests.helpers.chat_server``)
on the demo hotline with the shipped intent model, and a WebSocket client speaking the chat
protocol."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets

from tests.helpers.auth import ADMIN
from tests.helpers.chat_server import DEMO, Server, start_server, stop_server
from tests.helpers.server import free_port

TIMEOUT_S = 60.0
OTHER_HOTLINE_ROUTING = """\
version: 1
agents:
  li.na: {name: 李娜, languages: [zh], skills: {general: 5}}
groups:
  zh_service: {strategy: sequential, members: [li.na], skills: [general]}
hotlines:
  - number: "4000000001"
    flow: demo_hotline
    default: {group: zh_service}
"""


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo hotline with the shipped intent model; short queue wait and detach time;
    generous rate limits; a second origin (``host_origin``) allowed to embed the chat. The
    routing knows another hotline only, so a handed-over chat waits in the flow's queue
    (routed chats, offered at the desk: ``tests/handoff/test_chat_handoff.py``)."""
    tmp = tmp_path_factory.mktemp("chat_demo")
    routing = tmp / "routing.yaml"
    routing.write_text(OTHER_HOTLINE_ROUTING, encoding="utf-8")
    host_port = free_port()
    origin = f"http://127.0.0.1:{host_port}"
    server = start_server(
        tmp, nlu=True, HOTLINE_QUEUE_MAX_WAIT_S="2", HOTLINE_QUEUE_POSITION_EVERY_S="30",
        HOTLINE_CHAT_DETACH_S="4", HOTLINE_CHAT_ALLOWED_ORIGINS=json.dumps([origin]),
        HOTLINE_CHAT_IP_SESSIONS_PER_MINUTE="10000",
        HOTLINE_CHAT_IP_MESSAGES_PER_MINUTE="100000",
        HOTLINE_CHAT_MESSAGES_PER_MINUTE="10000", HOTLINE_ROUTING_FILE=str(routing),
    )
    server.host_origin = origin
    try:
        asyncio.run(warm_up(server))
        yield server
    finally:
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()[-4000:]


@dataclass
class Chat:
    """One chat over the real WebSocket: ``await chat.until("ask")`` etc."""

    session: dict[str, Any]
    ws: Any
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def call_id(self) -> str:
        return str(self.session["session_id"])

    async def next(self, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))
        self.received.append(message)
        return dict(message)

    async def until(self, *types: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        """The next message of one of ``types``; the ones before it are kept in
        ``received``."""
        while True:
            message = await self.next(timeout_s)
            if message["type"] in types:
                return message

    def bot_text(self, after_seq: int = 0) -> str:
        return " ".join(m["text"] for m in self.received if m["type"] == "message"
                        and m["from"] == "bot" and m.get("seq", 0) > after_seq)

    async def text(self, text: str) -> None:
        await self.ws.send(json.dumps({"type": "text", "text": text}))

    async def press(self, ask: dict[str, Any], label: str) -> None:
        """Press the button labelled ``label`` on question ``ask``."""
        found = [b for b in ask["buttons"] if b["label"] == label]
        assert found, f"no button {label!r} in {ask['buttons']}"
        await self.ws.send(json.dumps({"type": "button", "value": found[0]["value"],
                                       "ask": ask["seq"]}))

    async def end(self, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "end"}))
        return await self.until("end", timeout_s=timeout_s)


async def warm_up(server: Server) -> None:
    """One message in each language, so the classifier's lazy parts are loaded before the
    tests time anything. The first Chinese sentence imports the sentiment model (snownlp) on
    an NLU thread, which holds the GIL: the server answers nothing for seconds (~20 s on a
    loaded box), so this client does not ping."""
    for locale, text in (("zh", "你好"), ("en", "hello")):
        session = await start_chat(server.url, locale)
        async with connect(server, session, ping_interval=None) as ws:
            chat = Chat(session, ws)
            await chat.until("ask", timeout_s=300)
            await chat.text(text)
            answer = await chat.until("ask", "queue", "end", timeout_s=300)
            if answer["type"] != "end":
                await chat.end()


async def start_chat(url: str, locale: str | None = None, **headers: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        response = await client.post(f"{url}/v1/chat/sessions", headers=headers,
                                     json={"hotline_number": DEMO, "locale": locale})
    assert response.status_code == 201, response.text
    return dict(response.json())


def connect(server: Server, session: dict[str, Any], protocols: list[str] | None = None,
            **kwargs: Any) -> Any:
    return websockets.connect(f"{server.ws_url}{session['websocket']}",
                              subprotocols=protocols or session["protocols"], **kwargs)


async def record(url: str, call_id: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """The stored record once the CDR is closed."""
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, headers=ADMIN) as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            response = await client.get(f"/v1/calls/{call_id}")
            if response.status_code == 200 and response.json()["cdr"]["ended_at"]:
                return dict(response.json())
            await asyncio.sleep(0.1)
    raise AssertionError(f"no closed record for chat {call_id}")
