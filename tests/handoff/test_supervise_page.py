"""The monitor page in a real browser (headless Chromium via Selenium, its fake microphone
playing a 1250 Hz tone): a supervisor signs in, sees the live call with its agent, presses
Listen (the page receives the call's audio: energy on its inbound track, while nobody on
the call hears the page), then Whisper (the agent hears the page's tone, the caller does
not), then Leave."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from app.auth import Role
from app.media.audio import write_wav
from tests.handoff.routing import actions_flow, actions_routing
from tests.handoff.test_agent_actions import LI_NA_HZ, connected_call
from tests.handoff.test_agent_page import chromium, pytestmark, until
from tests.handoff.test_supervise import (
    CALLER_HZ,
    SUPERVISOR_HZ,
    next_second,
    tone_share,
    until_heard,
)
from tests.helpers.auth import PASSWORD, create_user
from tests.helpers.tones import tone

__all__ = ["pytestmark"]  # the browser marker and the chromium check, as the desk page's

ENERGY = ("return (async () => { const s = window.hotlineSupervise; if (!s) return 0; "
          "let e = 0; (await s.pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' "
          "&& r.kind === 'audio') e = r.totalAudioEnergy || 0; }); return e; })()")


async def test_monitor_page_listens_then_whispers(make_desk: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    desk = await make_desk(actions_routing(tmp_path), flows_dir=actions_flow(tmp_path))
    agent = desk.agent("li.na")
    caller, call_id, agent_peer = await connected_call(desk, agent)
    async with httpx.AsyncClient() as client:
        await create_user(client, desk.url, "wang.boss", Role.SUPERVISOR)
    fake = tmp_path / "supervisor_mic.wav"
    write_wav(fake, tone(SUPERVISOR_HZ, 60, 48_000), 48_000)

    with chromium(fake) as driver:
        def js(script: str) -> Any:
            return driver.execute_script(script)

        def click(css: str) -> None:
            driver.find_element(By.CSS_SELECTOR, css).click()

        row = f'.live-call[data-call="{call_id}"]'
        await asyncio.to_thread(driver.get, f"{desk.url}/console/login?next=/console/monitor")
        await asyncio.to_thread(lambda: driver.find_element(By.ID, "name").send_keys(
            "wang.boss"))
        await asyncio.to_thread(lambda: driver.find_element(By.ID, "password").send_keys(
            PASSWORD))
        await asyncio.to_thread(click, "#sign-in")
        await until(lambda: driver.find_elements(By.CSS_SELECTOR, f"{row} .supervise-listen"),
                    "the call's row with its supervise buttons")
        await until(lambda: driver.find_element(By.CSS_SELECTOR, f"{row} .agent").text
                    == "☎ li.na", "the agent on the row")
        assert driver.find_element(By.CSS_SELECTOR, f"{row} .supervise-listen").text == "监听"

        await asyncio.to_thread(click, f"{row} .supervise-listen")
        await until(lambda: js(f"return document.querySelector('{row}').dataset.supervise")
                    == "listen", "the page to listen")
        await until(lambda: (js(ENERGY) or 0) > 0.01, "the call's audio in the page")
        await caller.event("supervisor_joined", supervisor="wang.boss", mode="listen")
        assert tone_share(await next_second(agent_peer), SUPERVISOR_HZ) < 0.001

        await asyncio.to_thread(click, f"{row} .supervise-whisper")
        # the page's microphone (Chromium's noise suppression damps a steady tone: a
        # smaller share than an aiortc peer's, still 10x what the caller gets of it)
        heard = await until_heard(agent_peer, CALLER_HZ, SUPERVISOR_HZ, min_share=0.01)
        assert tone_share(heard, CALLER_HZ) > 0.3
        second = await next_second(caller.peer)
        assert tone_share(second, SUPERVISOR_HZ) < 0.001 and tone_share(second, LI_NA_HZ) > 0.3

        await asyncio.to_thread(click, f"{row} .supervise-leave")
        _, left = await caller.event("supervisor_left")
        assert left["supervisor"] == "wang.boss" and left["mode"] == "whisper"
    await agent.action(call_id, "hangup")
    await caller.event("call_ended")
