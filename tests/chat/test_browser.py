"""The chat widget in a real browser: headless Chromium (apt) via Selenium and the system
chromedriver, on a real server (the demo hotline, the shipped classifier, the record)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.chat.conftest import DEMO, Server, record
from tests.helpers.server import free_port
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 60.0
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

pytestmark = [
    pytest.mark.browser,
    needs(CHROMIUM.exists() and CHROMEDRIVER.exists(),
          "/usr/bin/chromium and /usr/bin/chromedriver (apt chromium chromium-driver)"),
    needs(have_espeak(), "espeak-ng"),
]


@contextmanager
def chromium(lang: str) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hotline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--lang={lang}",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=900,900",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(check: Callable[[], Any], what: str | Callable[[], str],
         timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for "
                         f"{what() if callable(what) else what}")


class Page:
    """The widget as a visitor uses it: read the chat, press buttons, type."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def js(self, script: str) -> Any:
        return self.driver.execute_script(script)

    def shown(self) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.ID, "log").text)

    def open(self) -> None:
        wait(lambda: self.js("return window.hotlineChat && window.hotlineChat.state") == "open",
             lambda: f"the chat to open (status: {self.js('return document.body.innerText')})")

    def press(self, label: str) -> None:
        """Click the button ``label`` of the newest question."""
        from selenium.webdriver.common.by import By

        def button() -> Any:
            groups = self.driver.find_elements(By.CSS_SELECTOR, "#log li.choices")
            if not groups:
                return None
            found = [b for b in groups[-1].find_elements(By.TAG_NAME, "button")
                     if b.text == label and b.is_enabled()]
            return found[0] if found else None

        wait(button, lambda: f"button {label!r} (chat: {self.shown()[-300:]})").click()

    def type(self, text: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        box = self.driver.find_element(By.ID, "text")
        wait(box.is_enabled, "the text box")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def sees(self, text: str) -> None:
        wait(lambda: text in self.shown(), lambda: f"{text!r} (chat: {self.shown()[-400:]})")

    def messages(self) -> list[dict[str, Any]]:
        return list(self.js("return window.hotlineChat.messages"))

    def ended(self) -> str:
        wait(lambda: self.js("return window.hotlineChat.state") == "ended", "the chat to end")
        return str(self.js("return window.hotlineChat.outcome"))


def _record(server: Server, call_id: str) -> dict[str, Any]:
    return asyncio.run(record(server.url, call_id))


def test_an_english_visitor_looks_up_an_order(demo_server: Server) -> None:
    from selenium.webdriver.common.by import By

    with chromium("en-US") as driver:
        driver.get(f"{demo_server.url}/chat?hotline={DEMO}")
        page = Page(driver)
        page.open()
        assert driver.find_element(By.ID, "title").text == "Chat with us"
        assert driver.find_element(By.ID, "send").text == "Send"
        page.sees("For English, press 2")
        page.press("English")
        page.sees("Tell me briefly how I can help")
        page.type("can you tell me where my package is")
        page.sees("Please enter or say your order number")
        assert page.js("return document.getElementById('text').inputMode") == "numeric"
        page.type("4567")
        page.sees("I heard 4 5 6 7")
        page.press("Yes, that's right")
        page.sees("Your order 4567, a front-load washer, has shipped")
        page.press("No, that's all")
        assert page.ended() == "self_service"
        page.sees("Goodbye")
        call_id = str(page.js("return window.hotlineChat.sessionId"))
        said = [(m["from"], m["text"]) for m in page.messages()]
    assert ("user", "can you tell me where my package is") in said
    assert ("user", "Yes, that's right") in said  # a pressed button shows as the visitor's
    detail = _record(demo_server, call_id)
    assert (detail["cdr"]["channel"], detail["cdr"]["outcome"]) == ("chat", "self_service")
    assert detail["cdr"]["final_intent"] == "order_status"


def test_a_chinese_visitor_asks_for_an_agent(demo_server: Server) -> None:
    from selenium.webdriver.common.by import By

    with chromium("zh-CN") as driver:
        driver.get(f"{demo_server.url}/chat?hotline={DEMO}")
        page = Page(driver)
        page.open()
        assert driver.find_element(By.ID, "title").text == "在线客服"
        assert driver.find_element(By.ID, "send").text == "发送"
        assert page.js("return document.documentElement.lang") == "zh"
        page.press("中文")
        page.type("我要找人工客服")
        page.sees("您是需要转接人工客服吗")
        page.press("是")
        page.sees("您是第1位")  # waiting in the queue
        page.sees("客服暂时都在忙")  # nobody answered (queue_max_wait_s): the flow's offer
        page.press("预约回电")
        page.sees("请输入回电号码")  # a web visitor has no caller number: it is asked
        assert page.js("return document.getElementById('text').inputMode") == "tel"
        page.type("13800138000")
        assert page.ended() == "callback_requested"
        call_id = str(page.js("return window.hotlineChat.sessionId"))
    detail = _record(demo_server, call_id)
    assert detail["cdr"]["handoff_target"] == "general"
    assert detail["cdr"]["flow_state"]["slots"]["callback_number"] == "+8613800138000"
    assert "handoff_requested" in [e["type"] for e in detail["events"]]


def test_html_in_a_message_is_shown_as_text(demo_server: Server) -> None:
    from selenium.webdriver.common.by import By

    with chromium("en-US") as driver:
        driver.get(f"{demo_server.url}/chat?hotline={DEMO}")
        page = Page(driver)
        page.open()
        page.press("English")
        page.sees("Tell me briefly how I can help")
        page.type(XSS)
        page.sees(XSS)
        page.sees("Sorry, I didn't catch that")  # the bot answered after it
        bubbles = driver.find_elements(By.CSS_SELECTOR, "#log li.user")
        assert bubbles[-1].text == XSS
        assert driver.find_elements(By.CSS_SELECTOR, "#log img, #log script") == []
        assert page.js("return window.__xss") is None
        call_id = str(page.js("return window.hotlineChat.sessionId"))
        driver.find_element(By.ID, "end").click()
        page.ended()
    detail = _record(demo_server, call_id)
    assert ("caller", XSS) in [(t["speaker"], t["text"]) for t in detail["turns"]]


@contextmanager
def host_page(port: int, hotline_url: str) -> Iterator[str]:
    """A company's page on another origin (``127.0.0.1:port``) with the embed snippet."""
    html = (f'<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>'
            f'<body><h1>YouJia shop</h1><script src="{hotline_url}/static/chat/embed.js" '
            f'data-hotline="{DEMO}" data-lang="en" async></script></body></html>').encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _open_embedded(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    launcher = wait(lambda: driver.find_elements(By.ID, "hotline-chat-launcher"),
                    "the chat launcher")[0]
    assert launcher.text == "Chat with us"
    launcher.click()
    wait(lambda: driver.find_elements(By.ID, "hotline-chat-frame"), "the chat frame")


def test_the_snippet_embeds_the_chat_on_an_allowed_site_only(demo_server: Server) -> None:
    allowed_port = urlsplit(demo_server.host_origin).port
    assert allowed_port is not None
    with chromium("en-US") as driver, host_page(allowed_port, demo_server.url) as shop:
        _open_embedded(driver, shop)
        driver.switch_to.frame(driver.find_element("id", "hotline-chat-frame"))
        page = Page(driver)
        page.open()
        page.press("English")
        page.sees("Tell me briefly how I can help")
        driver.find_element("id", "end").click()
        assert page.ended() == "caller_hangup"
        driver.switch_to.default_content()
    with chromium("en-US") as driver, host_page(free_port(), demo_server.url) as other:
        _open_embedded(driver, other)

        logs: list[str] = []

        def refused() -> bool:  # the log is handed out once: keep what was read
            logs.extend(str(e.get("message", "")) for e in driver.get_log("browser"))
            return any("frame-ancestors" in line for line in logs)

        wait(refused, "Chromium to refuse framing the chat on a site not allowed")
