"""The agent desk page (headless Chromium) taking a web chat: the card says it is a chat,
answering needs no microphone, the visitor's messages appear on the page, the agent types
back (the visitor receives it as text, HTML and all), ends the chat and wraps up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from app.auth import Role
from app.media.audio import write_wav
from tests.handoff.routing import two_agent_routing
from tests.handoff.test_agent_page import CHROMEDRIVER, CHROMIUM, chromium, until
from tests.handoff.test_chat_handoff import Chat, open_chat
from tests.helpers.auth import PASSWORD, create_user
from tests.helpers.tones import tone
from tests.helpers.tools import needs

pytestmark = [
    pytest.mark.browser,
    needs(CHROMIUM.exists() and CHROMEDRIVER.exists(),
          "/usr/bin/chromium and /usr/bin/chromedriver (apt chromium chromium-driver)"),
]


async def test_the_desk_page_answers_a_chat_and_types_with_the_visitor(
        make_desk: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    desk = await make_desk(two_agent_routing(tmp_path))
    async with httpx.AsyncClient() as client:
        await create_user(client, desk.url, "li.na", Role.AGENT)
    fake = tmp_path / "mic.wav"
    write_wav(fake, tone(1000.0, 2, 48_000), 48_000)

    with chromium(fake) as driver:
        def el(element_id: str) -> Any:
            return driver.find_element(By.ID, element_id)

        def js(script: str) -> Any:
            return driver.execute_script(script)

        await asyncio.to_thread(driver.get, f"{desk.url}/agent")
        await asyncio.to_thread(lambda: el("user").send_keys("li.na"))
        await asyncio.to_thread(lambda: el("password").send_keys(PASSWORD))
        await asyncio.to_thread(lambda: el("login").submit())
        await until(lambda: js("return document.body.dataset.view") == "desk", "the desk")
        await asyncio.to_thread(lambda: driver.find_element(
            By.CSS_SELECTOR, '[data-status="available"]').click())
        await until(lambda: js("return document.body.dataset.agentState") == "available",
                    "the agent to be available")

        session, ws_url = await open_chat(desk.url)
        async with websockets.connect(ws_url, subprotocols=session["protocols"]) as ws:
            chat = Chat(session, ws)
            await chat.ask_for_agent()
            await until(lambda: el("card").is_displayed(), "the incoming card")
            assert await asyncio.to_thread(lambda: el("card-title").text) == "在线咨询"
            assert "我要找人工客服" in await asyncio.to_thread(lambda: el("bot-transcript").text)

            await asyncio.to_thread(lambda: el("answer").click())  # no microphone asked
            joined = await chat.until("agent")
            assert joined["event"] == "joined" and joined["name"] == "李娜"
            await until(lambda: el("chat-form").is_displayed(), "the chat input")
            assert not await asyncio.to_thread(lambda: el("hold").is_displayed())

            await chat.text("<b>洗衣机</b>漏水了")
            await until(lambda: "<b>洗衣机</b>漏水了" in el("live").text,
                        "the visitor's message, as text, on the desk")
            await asyncio.to_thread(lambda: el("chat-text").send_keys("<i>马上</i>为您安排"))
            await asyncio.to_thread(lambda: el("chat-send").click())
            said = await chat.until(lambda m: m["type"] == "message" and m["from"] == "agent")
            assert said["text"] == "<i>马上</i>为您安排"
            await until(lambda: "<i>马上</i>为您安排" in el("live").text,
                        "the agent's own message on the desk")

            await asyncio.to_thread(lambda: el("hangup").click())
            end = await chat.until("end")
            assert end["outcome"] == "agent_handled"
        await until(lambda: el("wrapup").is_displayed(), "the wrap-up form")
        await asyncio.to_thread(lambda: Select(el("disposition")).select_by_value("resolved"))
        await asyncio.to_thread(lambda: el("wrapup").submit())
        await until(lambda: not el("wrapup").is_displayed(), "the wrap-up to be saved")

    cdr = await desk.cdr(chat.call_id, lambda c: bool(c.get("disposition")))
    assert cdr["channel"] == "chat" and cdr["answered_by"] == "li.na"
    assert cdr["disposition"] == "resolved" and cdr["outcome"] == "agent_handled"
