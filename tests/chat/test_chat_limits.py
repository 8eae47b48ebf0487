"""Rate limits on a real server with tight limits: new chats per address (HTTP 429 with
Retry-After) and messages per chat (an ``error`` frame, the message dropped)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.chat.conftest import DEMO, Chat, Server, connect, start_server, stop_server
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

pytestmark = needs(have_espeak(), "espeak-ng")


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("chat_limits"), nlu=False,
        HOTLINE_CHAT_IP_SESSIONS_PER_MINUTE="2", HOTLINE_CHAT_MESSAGES_PER_MINUTE="2",
        HOTLINE_CHAT_IP_MESSAGES_PER_MINUTE="600",
    )
    try:
        yield server
    finally:
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()[-4000:]


async def test_new_chats_and_messages_over_the_limits_are_refused(tight_server: Server) -> None:
    url = f"{tight_server.url}/v1/chat/sessions"
    async with httpx.AsyncClient(timeout=60) as client:
        started = [await client.post(url, json={"hotline_number": DEMO}) for _ in range(3)]
    assert [r.status_code for r in started] == [201, 201, 429]  # a burst of 2, then 1 / 30 s
    refused = started[2]
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    detail = refused.json()["detail"][0]
    assert detail["loc"] == ["client"] and detail["msg"].startswith("too many new chats")

    session = started[0].json()
    async with connect(tight_server, session) as ws:
        chat = Chat(session, ws)
        await chat.until("ask")
        for text in ("one", "two", "three"):  # a burst of 2 messages, then 1 / 30 s
            await chat.text(text)
        answer = await chat.until("error")
        assert answer["field"] == "(rate)"
        assert answer["reason"].startswith("too many messages; try again in")
        await chat.end()  # always allowed; everything the chat sent comes before its end
    echoed = [m["text"] for m in chat.received if m.get("from") == "user"]
    assert echoed == ["one", "two"]  # the third was dropped, not queued
