"""A real browser calls: headless Chromium (apt) via Selenium and the system chromedriver.

Chromium's fake microphone plays a WAV made in the test (``--use-file-for-fake-audio-
capture``, looped); the page is the real softphone at ``/phone`` on the real app.
"""

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

from app.media.audio import write_wav
from tests.helpers.auth import ADMIN
from tests.helpers.speech import espeak_pcm, have_espeak
from tests.helpers.tools import needs

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NUMBER = "4000000001"

pytestmark = [
    pytest.mark.browser,
    needs(CHROMIUM.exists() and CHROMEDRIVER.exists(),
          "/usr/bin/chromium and /usr/bin/chromedriver (apt chromium chromium-driver)"),
    needs(have_espeak(), "espeak-ng"),
]


@contextmanager
def chromium(fake_audio: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hotline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_audio}",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1000,800",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(check: Callable[[], Any], timeout_s: float, what: str | Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for "
                         f"{what() if callable(what) else what}")


def _browser_call(url: str, fake_audio: Path,
                  press: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Open /phone, pick the hotline, call; press ``press`` once the menu listens; wait for
    the server to end the call. Returns the call id and the events the page showed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with chromium(fake_audio) as driver:
        driver.get(f"{url}/phone")
        select = Select(driver.find_element(By.ID, "hotline"))
        _wait(lambda: select.options, 10, "the hotline list")
        select.select_by_value(NUMBER)
        driver.find_element(By.ID, "call").click()
        status = driver.find_element(By.ID, "status")
        _wait(lambda: driver.execute_script("return window.hotlinePhone.state") == "connected",
              20, lambda: f"the call to connect (page says: {status.text})")
        call_id = str(driver.execute_script("return window.hotlinePhone.callId"))

        def events() -> list[dict[str, Any]]:
            return list(driver.execute_script("return window.hotlinePhone.events"))

        if press is not None:
            _wait(lambda: any(e["type"] == "listen" for e in events()), 30, "the menu")
            driver.find_element(By.CSS_SELECTOR, f'.keypad button[data-digit="{press}"]').click()
        _wait(lambda: any(e["type"] == "call_ended" for e in events()), 40, "the call to end")
        _wait(lambda: driver.execute_script("return window.hotlinePhone.state") == "idle", 10,
              "the page to hang up")
        shown = driver.find_element(By.ID, "log").text
        assert "Call ended" in shown
        return call_id, events()


async def _record(url: str, call_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=ADMIN) as client:
        for _ in range(100):
            response = await client.get(f"/v1/calls/{call_id}")
            if response.status_code == 200 and response.json()["cdr"]["ended_at"]:
                return dict(response.json())
            await asyncio.sleep(0.1)
    raise AssertionError(f"no final record for call {call_id}")


async def test_browser_caller_is_heard_and_recognized(live: Any, tmp_path: Path) -> None:
    said = espeak_pcm("배송", "ko", 48_000).data
    fake = tmp_path / "baesong.wav"
    write_wav(fake, bytes(48_000 * 2 * 2) + said + bytes(48_000 * 2), 48_000)
    call_id, events = await asyncio.to_thread(_browser_call, live.url, fake, None)
    heard = [e["text"] for e in events if e["type"] == "transcript" and e.get("is_final")]
    assert "배송" in heard
    record = await _record(live.url, call_id)
    assert record["cdr"]["outcome"] == "completed"
    assert "one" in record["flow_path"]


async def test_browser_keypad_reaches_the_flow(live: Any, tmp_path: Path) -> None:
    fake = tmp_path / "quiet.wav"
    write_wav(fake, bytes(48_000 * 2 * 2), 48_000)
    call_id, events = await asyncio.to_thread(_browser_call, live.url, fake, "1")
    assert [e["digit"] for e in events if e["type"] == "dtmf"] == ["1"]
    record = await _record(live.url, call_id)
    assert record["cdr"]["outcome"] == "completed"
    assert "one" in record["flow_path"]


def _call_through_busy(url: str, fake_audio: Path, node_frees_up: Callable[[], None]) -> str:
    """Call while the node refuses (503 + Retry-After); once the page says the lines are
    busy the node frees up; the page tries again by itself and connects."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with chromium(fake_audio) as driver:
        driver.get(f"{url}/phone")
        select = Select(driver.find_element(By.ID, "hotline"))
        _wait(lambda: select.options, 10, "the hotline list")
        select.select_by_value(NUMBER)
        driver.find_element(By.ID, "call").click()
        status = driver.find_element(By.ID, "status")
        _wait(lambda: "All lines busy" in status.text, 20,
              lambda: f"the busy notice (page says: {status.text})")
        node_frees_up()
        _wait(lambda: driver.execute_script("return window.hotlinePhone.state") == "connected",
              40, lambda: f"the call to connect (page says: {status.text})")
        assert driver.execute_script("return window.hotlinePhone.retries") >= 1
        call_id = str(driver.execute_script("return window.hotlinePhone.callId"))
        driver.find_element(By.ID, "hangup").click()
        _wait(lambda: driver.execute_script("return window.hotlinePhone.state") == "idle", 10,
              "the page to hang up")
        return call_id


async def test_browser_caller_tries_again_after_a_503(live: Any, tmp_path: Path) -> None:
    calls = live.app.state.calls
    calls.draining = True  # full or draining: 503 + Retry-After

    def node_frees_up() -> None:
        calls.draining = False

    fake = tmp_path / "quiet.wav"
    write_wav(fake, bytes(48_000 * 2 * 2), 48_000)
    call_id = await asyncio.to_thread(_call_through_busy, live.url, fake, node_frees_up)
    record = await _record(live.url, call_id)
    assert record["cdr"]["outcome"] == "caller_hangup"  # hung up in the menu
