"""The agent desk page in a real browser: headless Chromium (apt) via Selenium, its fake
microphone playing a 1000 Hz tone. The agent signs in at /agent, goes available, sees the
incoming card with the packet, answers with the microphone (the caller hears the tone, the
page receives the caller's audio), follows the live transcript of both sides with the
caller's sentiment, hangs up and saves a wrap-up that lands in the CDR."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.auth import Role
from app.media.audio import Pcm, write_wav
from tests.handoff.conftest import DEMO, SHANGHAI_CALLER
from tests.handoff.routing import short_flow, two_agent_routing
from tests.handoff.test_agent_call import hears
from tests.handoff.test_routing_paths import ask_for_agent
from tests.helpers.auth import PASSWORD, create_user
from tests.helpers.desk import play
from tests.helpers.tones import tone
from tests.helpers.tools import needs

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AGENT_HZ, CALLER_HZ = 1000.0, 440.0

pytestmark = [
    pytest.mark.browser,
    needs(CHROMIUM.exists() and CHROMEDRIVER.exists(),
          "/usr/bin/chromium and /usr/bin/chromedriver (apt chromium chromium-driver)"),
]


@contextmanager
def chromium(fake_audio: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hotline-desk-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_audio}", "--lang=zh-CN",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1200,900",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def until(check: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    """Poll ``check`` (a blocking Selenium call, run in a thread) until it is truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def open_streams(desk: Any) -> list[Any]:
    return [s for s in desk.asr.streams if not s.closed]


async def test_agent_page_signs_in_answers_hears_and_wraps_up(make_desk: Any,
                                                              tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    desk = await make_desk(two_agent_routing(tmp_path), flows_dir=short_flow(tmp_path))
    async with httpx.AsyncClient() as client:
        await create_user(client, desk.url, "li.na", Role.AGENT)
    fake = tmp_path / "agent_mic.wav"
    write_wav(fake, tone(AGENT_HZ, 10, 48_000), 48_000)

    with chromium(fake) as driver:
        def el(element_id: str) -> Any:
            return driver.find_element(By.ID, element_id)

        def js(script: str) -> Any:
            return driver.execute_script(script)

        await asyncio.to_thread(driver.get, f"{desk.url}/agent")
        assert await asyncio.to_thread(lambda: el("login").find_element(
            By.TAG_NAME, "h2").text) == "登录"  # labels follow the browser language
        await asyncio.to_thread(lambda: el("user").send_keys("li.na"))
        await asyncio.to_thread(lambda: el("password").send_keys(PASSWORD))
        await asyncio.to_thread(lambda: el("login").submit())
        await until(lambda: js("return document.body.dataset.view") == "desk", "the desk")
        await asyncio.to_thread(lambda: driver.find_element(
            By.CSS_SELECTOR, '[data-status="available"]').click())
        await until(lambda: js("return document.body.dataset.agentState") == "available",
                    "the agent to be available")

        caller = desk.caller()
        call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
        play(caller.peer, Pcm(tone(CALLER_HZ, 60), 16_000))
        await ask_for_agent(caller)
        await until(lambda: el("card").is_displayed(), "the incoming card")
        facts = await asyncio.to_thread(lambda: el("facts").text)
        assert SHANGHAI_CALLER in facts and "上海" in facts and "menu" in facts

        start = len(caller.peer.received)
        await asyncio.to_thread(lambda: el("answer").click())
        await caller.event("agent_connected", agent_id="li.na", device="web")
        await hears(caller.peer, start, AGENT_HZ)  # the browser's microphone, bridged
        energy = "return (async () => { let e = 0; (await window.hotlineDesk.pc.getStats())" \
                 ".forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'audio') " \
                 "e = s.totalAudioEnergy || 0; }); return e; })()"
        await until(lambda: (js(energy) or 0) > 0.01, "the caller's audio in the page")

        streams = open_streams(desk)  # the caller's (listener) and the agent's (talk)
        assert len(streams) == 2
        streams[0].utterances.append(("冰箱坏了，太糟糕了，我很生气", 0.8, 0.95, []))
        streams[1].utterances.append(("您好，我来帮您处理", 0.8, 0.95, []))
        await until(lambda: "冰箱坏了" in el("live").text and "我来帮您" in el("live").text,
                    "both sides in the live transcript")
        await until(lambda: driver.find_elements(By.CSS_SELECTOR, "#live .neg"),
                    "the caller's negative sentiment")

        await asyncio.to_thread(lambda: el("hangup").click())
        await until(lambda: el("wrapup").is_displayed(), "the wrap-up form")
        await asyncio.to_thread(lambda: Select(el("disposition")).select_by_value("complaint"))
        await asyncio.to_thread(lambda: el("notes").send_keys("冰箱维修"))
        await asyncio.to_thread(lambda: el("wrapup").submit())
        await until(lambda: not el("wrapup").is_displayed(), "the wrap-up to be saved")

    cdr = await desk.cdr(call_id, lambda c: bool(c.get("disposition")))
    assert cdr["answered_by"] == "li.na" and cdr["disposition"] == "complaint"
    assert cdr["wrap_notes"] == "冰箱维修" and cdr["outcome"] == "agent_handled"
