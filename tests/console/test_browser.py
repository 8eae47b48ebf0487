"""The console in a real browser (headless Chromium via Selenium and the system
chromedriver) on a real server: an analyst signs in, reads a report, searches calls and
opens one, and labels an utterance in the intent inbox. A screenshot of the page is saved
when a step fails (its path is in the failure message)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.nlu.intents import load_intents
from tests.console.conftest import DAY_BEFORE, Console
from tests.helpers.auth import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 60.0
DAY = "start=2026-11-26&end=2026-11-26"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs /usr/bin/chromium and /usr/bin/chromedriver "
                              "(apt chromium chromium-driver)"),
]


@contextmanager
def chromium(lang: str = "en") -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hotline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--lang={lang}",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1200,900",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Browser:
    def __init__(self, driver: Any, url: str, shots: Path) -> None:
        self.driver, self.url, self.shots = driver, url, shots

    def wait(self, check: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                value = check()
            except Exception:  # the page is changing under us: look again
                value = None
            if value:
                return value
            time.sleep(0.1)
        shot = self.shots / f"console-{int(time.time())}.png"
        self.driver.get_screenshot_as_file(str(shot))
        raise AssertionError(f"timed out after {WAIT_S}s waiting for {what} on "
                             f"{self.driver.current_url} (screenshot: {shot})")

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.wait(lambda: self.driver.find_element(By.CSS_SELECTOR, css), css)

    def text(self, css: str = "body") -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def sees(self, text: str, css: str = "body") -> None:
        self.wait(lambda: text in self.text(css), f"{text!r} in {css}")


def test_analyst_reads_searches_and_labels(console: Console, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import Select

    with chromium() as driver:
        b = Browser(driver, console.url, tmp_path)
        driver.get(f"{console.url}/console/reports?{DAY}")
        b.wait(lambda: "/console/login" in driver.current_url, "the sign-in page")
        b.find("#name").send_keys("test-analyst")
        b.find("#password").send_keys(PASSWORD)
        b.find("#sign-in").click()
        b.wait(lambda: driver.current_url.startswith(f"{console.url}/console/reports"),
               "the reports page after signing in")
        b.sees("20.0 %", 'tr[data-key="containment"]')
        b.sees("contained / answered", 'tr[data-key="containment"]')
        b.find('a[data-report="menu_nodes"]').click()
        b.sees("我要退货啊 (2)", "table.rows")
        assert driver.find_elements("css selector", "figure svg rect")

        driver.get(f"{console.url}/console/calls?{DAY}")
        outcome = b.find('input[name="outcome"]')
        outcome.send_keys("abandoned")
        b.find("#apply").click()
        b.wait(lambda: "outcome=abandoned" in driver.current_url, "the filtered search")
        b.sees("2", "#total")
        b.find('tr[data-call="c2"] a').click()
        b.sees("我要退货啊", "#transcript")
        b.sees("transfer", "#events")

        b.find('header a[href="/console/inbox"]').click()
        row = f'tr[data-call="{DAY_BEFORE}c2"]'
        b.wait(lambda: any(r.text.startswith("我要退货啊") for r in driver.find_elements(
            "css selector", row)), "the refused utterance in the inbox")
        item = next(r for r in driver.find_elements("css selector", row)
                    if r.text.startswith("我要退货啊"))
        seq = item.get_attribute("data-seq")
        Select(item.find_element("css selector", "select")).select_by_value("return_exchange")
        item.find_element("css selector", "button").click()
        b.sees("✓ return_exchange", f'{row}[data-seq="{seq}"] .status')
        examples = load_intents(console.intents).intents["return_exchange"].examples["zh"]
        assert "我要退货啊" in examples
        driver.refresh()
        b.find("#inbox")
        assert not driver.find_elements("css selector", f'{row}[data-seq="{seq}"]')


def test_supervisor_watches_a_live_call(console: Console, tmp_path: Path) -> None:
    """A real chat on the test hotline (the same call core as a phone call): the monitor
    shows its conversation live, then the caller waiting in the queue, then the call gone."""
    import httpx
    from websockets.sync.client import connect

    from app.auth import Role
    from app.auth.service import SESSION_COOKIE

    with chromium() as driver:
        b = Browser(driver, console.url, tmp_path)
        driver.get(f"{console.url}/console/login")
        cookie = console.roles[Role.SUPERVISOR].cookies[SESSION_COOKIE]
        driver.add_cookie({"name": SESSION_COOKIE, "value": cookie, "path": "/"})
        driver.get(f"{console.url}/console/monitor")
        b.wait(lambda: driver.execute_script("return document.body.dataset.live") == "open",
               "the live events socket")
        started = httpx.post(f"{console.url}/v1/chat/sessions", timeout=60,
                             json={"hotline_number": "4000000001", "locale": "ko"})
        assert started.status_code == 201, started.text
        session = started.json()
        call = f'.live-call[data-call="{session["session_id"]}"]'
        ws_url = console.url.replace("http://", "ws://") + session["websocket"]
        with connect(ws_url, subprotocols=session["protocols"], open_timeout=60) as ws:
            while json.loads(ws.recv(timeout=60))["type"] != "ask":
                pass
            b.sees("영업시간 또는 상담원", call)  # the bot's menu prompt, live
            ws.send(json.dumps({"type": "text", "text": "상담원"}))
            b.sees("상담원", f"{call} .turns li.caller")
            b.wait(lambda: ["general", "1"] == b.text("#queues tbody tr").split()[:2],
                   "the caller waiting in queue general")
            # waiting longer than the alert threshold (1 s here): the banner names the call,
            # its row and its queue's row are highlighted
            b.sees(session["session_id"], "#alerts.firing #alert-list li.alert")
            assert "Caller waiting too long" in b.text("#alert-list")
            b.find(f"{call}.alerted")
            b.find('#queues tr.alerted[data-queue="general"]')
            ws.send(json.dumps({"type": "end"}))
            while json.loads(ws.recv(timeout=60))["type"] != "end":
                pass
        b.wait(lambda: not driver.find_elements("css selector", call), "the call to end")
        b.wait(lambda: not driver.find_elements("css selector", "#alerts.firing"),
               "the alert cleared when the caller hung up")


def test_admin_changes_a_rule_and_sees_explain_change(console: Console,
                                                       tmp_path: Path) -> None:
    from app.auth import Role
    from app.auth.service import SESSION_COOKIE

    explain = "number=4008001234&caller=%2B8613800138000&at=2026-12-01T10:00"
    with chromium() as driver:
        b = Browser(driver, console.url, tmp_path)
        driver.get(f"{console.url}/console/login")
        cookie = console.roles[Role.ADMIN].cookies[SESSION_COOKIE]
        driver.add_cookie({"name": SESSION_COOKIE, "value": cookie, "path": "/"})
        driver.get(f"{console.url}/console/config?{explain}")
        b.sees("rule 7 'beijing' matched: group beijing", "#plan")
        original = b.find("#routing-yaml").get_attribute("value")
        rule = "  - name: beijing\n    when:\n      province: [北京]\n    target:\n      group: "
        assert original.count(rule + "beijing\n") == 1, original  # as the export writes it
        edited = original.replace(rule + "beijing\n", rule + "nowhere\n")
        driver.execute_script("document.getElementById('routing-yaml').value = arguments[0]",
                              edited)
        b.find("#routing-save").click()
        b.sees("nowhere", "#routing-result")  # refused, with the line
        assert "routing.yaml:" in b.text("#routing-result")
        driver.execute_script("document.getElementById('routing-yaml').value = arguments[0]",
                              original.replace(rule + "beijing\n", rule + "zh_service\n"))
        b.find("#routing-save").click()
        b.sees("rule 7 'beijing' matched: group zh_service", "#plan")  # explain follows
        driver.execute_script("document.getElementById('routing-yaml').value = arguments[0]",
                              original)
        b.find("#routing-save").click()
        b.sees("rule 7 'beijing' matched: group beijing", "#plan")


def test_admin_plays_a_prompt_and_replaces_it_with_a_recording(console: Console,
                                                              tmp_path: Path) -> None:
    """Play renders the greeting through the real TTS into the page's player; an uploaded
    recording is listed, played instead of the voice, then removed."""
    from app.auth import Role
    from app.auth.service import SESSION_COOKIE
    from app.tts.recordings import prompt_key
    from tests.console.test_prompts import tone_wav

    row = f'tr.prompt[data-key="{prompt_key("ko", "안녕하세요 이 통화는 녹음됩니다")}"]'
    take = tmp_path / "greeting.wav"
    take.write_bytes(tone_wav(700, 1.5))
    with chromium() as driver:
        b = Browser(driver, console.url, tmp_path)
        driver.get(f"{console.url}/console/login")
        cookie = console.roles[Role.ADMIN].cookies[SESSION_COOKIE]
        driver.add_cookie({"name": SESSION_COOKIE, "value": cookie, "path": "/"})
        driver.get(f"{console.url}/console/prompts")
        b.find(f'{row} button.play[data-source="call"]').click()
        b.sees("tts", f"{row} .status")
        b.wait(lambda: (b.find(f"{row} audio.preview").get_attribute("src") or ""
                        ).startswith("blob:"), "the rendered prompt in the player")
        b.find(f'{row} input[type="file"]').send_keys(str(take))
        b.find(f"{row} form.upload-recording button").click()
        b.sees("✓ 1.5 s", f"{row} .recorded")  # the page reloaded with it
        b.find(f'{row} button.play[data-source="call"]').click()
        b.sees("recording", f"{row} .status")
        b.find(f"{row} button.remove-recording").click()
        b.wait(lambda: not driver.find_elements("css selector", f"{row} .recorded"),
               "the recording removed")
