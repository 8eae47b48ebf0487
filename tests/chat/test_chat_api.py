"""Chats over the real WebSocket of a real server: the demo hotline, the shipped classifier,
the demo order service, the call record (CDR channel chat, outcome, transcript)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.chat.conftest import DEMO, Chat, Server, connect, record, start_chat
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

pytestmark = needs(have_espeak(), "espeak-ng")  # the server starts its TTS workers


async def test_a_chat_reaches_the_order_lookup_and_is_a_call_in_the_record(
        demo_server: Server) -> None:
    session = await start_chat(demo_server.url, "en-US")
    assert session["locale"] == "en"
    async with connect(demo_server, session) as ws:
        assert ws.subprotocol == "hotline-chat.v1"
        chat = Chat(session, ws)
        ask = await chat.until("ask")
        assert "For English, press 2" in chat.bot_text()
        assert [b["label"] for b in ask["buttons"]] == ["中文", "English", "Talk to an agent"]
        await chat.press(ask, "English")
        ask = await chat.until("ask")
        assert {"Order status", "Returns and refunds", "Talk to an agent"} <= {
            b["label"] for b in ask["buttons"]}
        await chat.text("can you tell me where my package is")  # the classifier: order_status
        ask = await chat.until("ask")
        assert ask["input"] == {"kind": "digits", "min_length": 4, "max_length": 12,
                                "multiline": False}
        assert "order number" in chat.bot_text(after_seq=ask["seq"] - 4)
        await chat.text("4567")
        ask = await chat.until("ask")
        assert "I heard 4 5 6 7" in chat.bot_text(after_seq=ask["seq"] - 4)
        await chat.press(ask, "Yes, that's right")
        ask = await chat.until("ask")
        assert "Your order 4567, a front-load washer, has shipped" in chat.bot_text()
        await chat.press(ask, "No, that's all")
        end = await chat.until("end")
    assert end["outcome"] == "self_service"
    assert "Goodbye" in chat.bot_text()
    seqs = [m["seq"] for m in chat.received]
    assert seqs == list(range(1, len(seqs) + 1))  # every message numbered, none lost
    typing = [m["on"] for m in chat.received if m["type"] == "typing"]
    assert typing[0] is True and typing[1] is False  # the bot showed it was answering

    detail = await record(demo_server.url, chat.call_id)
    cdr = detail["cdr"]
    assert (cdr["channel"], cdr["outcome"], cdr["final_intent"], cdr["locale"]) == (
        "chat", "self_service", "order_status", "en")
    assert cdr["caller_number"] == "anonymous" and cdr["hotline_number"] == DEMO
    turns = [(t["speaker"], t["text"]) for t in detail["turns"]]
    assert ("caller", "can you tell me where my package is") in turns
    assert ("caller", "4567") in turns
    assert any(s == "bot" and "front-load washer" in t for s, t in turns)
    types = [e["type"] for e in detail["events"]]
    for wanted in ("call_started", "intent", "sentiment", "transcript", "dtmf", "webhook",
                   "turn_latency", "hangup", "call_ended"):
        assert wanted in types, wanted
    started = next(e for e in detail["events"] if e["type"] == "call_started")
    assert started["payload"]["channel"] == "chat"
    assert detail["flow_path"][-1] == "goodbye_end" and "order_lookup" in detail["flow_path"]


async def test_asking_for_an_agent_gets_the_queue_then_the_flows_offer(
        demo_server: Server) -> None:
    session = await start_chat(demo_server.url, "zh")
    async with connect(demo_server, session) as ws:
        chat = Chat(session, ws)
        ask = await chat.until("ask")
        await chat.press(ask, "中文")
        await chat.until("ask")
        await chat.text("我要找人工客服")
        ask = await chat.until("ask")
        assert "您是需要转接人工客服吗" in chat.bot_text(after_seq=ask["seq"] - 4)
        assert [b["label"] for b in ask["buttons"]] == ["是", "否"]
        await chat.press(ask, "是")
        queue = await chat.until("queue")
        assert queue["queue"] == "general" and queue["position"] == 1
        assert "您是第1位" in queue["text"]
        await chat.text("我的洗衣机漏水了")  # typed while waiting: kept for the agent
        ask = await chat.until("ask")  # nobody answered (queue_max_wait_s): the offer
        assert "客服暂时都在忙" in chat.bot_text(after_seq=queue["seq"])
        assert [b["label"] for b in ask["buttons"]] == ["预约回电", "留言", "查询订单",
                                                         "人工服务"]
        await chat.press(ask, "留言")
        ask = await chat.until("ask")
        assert ask["input"]["multiline"] is True
        await chat.text("请回电 13800138000，洗衣机漏水")
        end = await chat.until("end")
    assert end["outcome"] == "voicemail"
    detail = await record(demo_server.url, chat.call_id)
    assert detail["cdr"]["handoff_target"] == "general"
    handoff = next(e for e in detail["events"] if e["type"] == "handoff_requested")
    assert handoff["payload"]["intent"] == "talk_to_agent"
    assert any(t["text"] == "我要找人工客服" for t in handoff["payload"]["transcript"])
    types = [e["type"] for e in detail["events"]]
    assert types.index("queue_position") < types.index("queue_timeout")
    assert ("caller", "我的洗衣机漏水了") in [(t["speaker"], t["text"]) for t in detail["turns"]]
    state = detail["cdr"]["flow_state"]
    assert state["slots"]["voicemail"] == "请回电 13800138000，洗衣机漏水"


async def test_leaving_while_queued_is_abandoned(demo_server: Server) -> None:
    session = await start_chat(demo_server.url, "en")
    async with connect(demo_server, session) as ws:
        chat = Chat(session, ws)
        ask = await chat.until("ask")
        await chat.press(ask, "Talk to an agent")  # the agent key: no confirmation
        await chat.until("queue")
        end = await chat.end()
    assert end["outcome"] == "abandoned"
    detail = await record(demo_server.url, chat.call_id)
    assert detail["cdr"]["outcome"] == "abandoned"
    ended = next(e for e in detail["events"] if e["type"] == "call_ended")
    assert ended["payload"]["end_reason"] == "caller_hangup"


async def test_a_reloaded_page_gets_the_whole_chat_and_goes_on(demo_server: Server) -> None:
    session = await start_chat(demo_server.url, "en")
    async with connect(demo_server, session) as ws:
        chat = Chat(session, ws)
        ask = await chat.until("ask")
        await chat.press(ask, "English")
        await chat.until("ask")
    seen = list(chat.received)  # the page goes away, and comes back
    async with connect(demo_server, session) as ws:
        again = Chat(session, ws)
        ask = await again.until("ask")
        while ask["seq"] < seen[-1]["seq"]:
            ask = await again.until("ask")
        assert again.received == seen  # the same messages, from seq 1
        await again.press(ask, "Order status")
        ask = await again.until("ask")
        assert ask["input"]["kind"] == "digits"
        await again.end()


async def test_a_chat_whose_page_never_comes_back_ends_connection_lost(
        demo_server: Server) -> None:
    session = await start_chat(demo_server.url, "zh")
    async with connect(demo_server, session) as ws:
        await Chat(session, ws).until("ask")
    detail = await record(demo_server.url, session["session_id"])  # chat_detach_s = 4
    assert detail["cdr"]["outcome"] == "connection_lost"
    assert detail["cdr"]["channel"] == "chat"


async def test_bad_frames_are_answered_and_the_chat_goes_on(demo_server: Server) -> None:
    session = await start_chat(demo_server.url, "en")
    async with connect(demo_server, session) as ws:
        chat = Chat(session, ws)
        first = await chat.until("ask")
        bad: list[tuple[str | bytes, dict[str, str]]] = [
            ("hello", {"field": "(frame)", "reason": "not JSON: Expecting value: line 1 "
                                                       "column 1 (char 0)"}),
            ("[1, 2]", {"field": "(frame)", "reason": "a JSON object with a type is "
                                                        "expected"}),
            ('{"type": "shout"}', {"field": "type", "reason": "one of text, button, end is "
                                                              "expected"}),
            ('{"type": "text", "text": "hi", "html": "<b>"}',
             {"field": "html", "reason": "unknown field in a text message"}),
            ('{"type": "text", "text": 5}', {"field": "text", "reason": "a string is "
                                                                        "expected"}),
            ('{"type": "text", "text": " \\u0000\\u202e "}',
             {"field": "text", "reason": "the message is empty"}),
            (json.dumps({"type": "text", "text": "x" * 1001}),
             {"field": "text", "reason": "at most 1000 characters, got 1001"}),
            ('{"type": "button", "value": "1; drop"}',
             {"field": "value", "reason": "a button value is keypad keys (0-9 * #)"}),
            ('{"type": "button", "value": "7"}',
             {"field": "value", "reason": "'7' is not one of the offered buttons (1, 2, 0)"}),
            (b"\x00\x01", {"field": "(frame)", "reason": "binary frames are not accepted; "
                                                          "send JSON text"}),
        ]
        for frame, reply in bad:
            await ws.send(frame)
            answer = await chat.next()
            assert answer == {"type": "error", **reply}, frame
        await chat.press(first, "English")
        await chat.until("ask")
        stale = json.dumps({"type": "button", "value": "1", "ask": first["seq"]})
        await ws.send(stale)  # a second press on a question already answered
        answer = await chat.until("error")
        assert answer["field"] == "ask" and "already answered" in answer["reason"]
        await chat.end()


async def test_a_frame_over_the_size_limit_closes_the_socket(demo_server: Server) -> None:
    session = await start_chat(demo_server.url, "en")
    async with connect(demo_server, session, max_size=None) as ws:
        await Chat(session, ws).until("ask")
        await ws.send(json.dumps({"type": "text", "text": "字" * 5000}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with connect(demo_server, session) as ws:  # the chat itself goes on
        chat = Chat(session, ws)
        await chat.until("ask")
        await chat.end()


@pytest.mark.parametrize(("how", "code"), [
    ("wrong token", 4401), ("no token", 4401), ("unknown chat", 4404), ("other origin", 4403),
])
async def test_a_socket_without_the_right_credentials_is_closed(
        demo_server: Server, how: str, code: int) -> None:
    session = await start_chat(demo_server.url, "en")
    target = dict(session)
    protocols = list(session["protocols"])
    headers: dict[str, str] = {}
    if how == "wrong token":
        protocols = ["hotline-chat.v1", "token.not-the-token"]
    elif how == "no token":
        protocols = ["hotline-chat.v1"]
    elif how == "unknown chat":
        target["websocket"] = "/v1/chat/sessions/0123456789abcdef/ws"
    else:
        headers = {"Origin": "http://evil.example"}
    async with connect(demo_server, target, protocols, additional_headers=headers) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    async with connect(demo_server, session) as ws:  # the real visitor is unaffected
        chat = Chat(session, ws)
        await chat.until("ask")
        await chat.end()


async def test_bad_requests_get_the_field_and_the_reason(demo_server: Server) -> None:
    url = f"{demo_server.url}/v1/chat/sessions"
    cases: list[tuple[dict[str, object], int, list[str], str]] = [
        ({"locale": "zh"}, 422, ["body", "hotline_number"], "Field required"),
        ({"hotline_number": "40080<b>"}, 422, ["body", "hotline_number"], "String should match"),
        ({"hotline_number": "4008001235"}, 404, ["body", "hotline_number"],
         "no flow serves hotline number '4008001235' (known: 4008001234)"),
        ({"hotline_number": DEMO, "locale": "fr"}, 422, ["body", "locale"],
         "hotline 4008001234 speaks zh, en, not 'fr'"),
        ({"hotline_number": DEMO, "locale": "<script>"}, 422, ["body", "locale"],
         "String should match"),
        ({"hotline_number": DEMO, "extra": 1}, 422, ["body", "extra"], "Extra inputs"),
    ]
    async with httpx.AsyncClient(timeout=30) as client:
        for body, status, loc, msg in cases:
            response = await client.post(url, json=body)
            assert response.status_code == status, (body, response.text)
            detail = response.json()["detail"][0]
            assert detail["loc"] == loc and detail["msg"].startswith(msg), (body, detail)
        refused = await client.post(url, json={"hotline_number": DEMO},
                                    headers={"Origin": "http://evil.example"})
        assert refused.status_code == 403
        assert refused.json()["detail"][0]["loc"] == ["header", "origin"]
        assert "access-control-allow-origin" not in refused.headers


async def test_cors_lets_only_the_listed_origins_start_chats(demo_server: Server) -> None:
    url = f"{demo_server.url}/v1/chat/sessions"
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    async with httpx.AsyncClient(timeout=30) as client:
        ok = await client.options(url, headers={"Origin": demo_server.host_origin, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == demo_server.host_origin
        bad = await client.options(url, headers={"Origin": "http://evil.example", **preflight})
        assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers
        started = await client.post(url, json={"hotline_number": DEMO},
                                    headers={"Origin": demo_server.host_origin})
        assert started.status_code == 201
        assert started.headers["access-control-allow-origin"] == demo_server.host_origin
        other = await client.options(f"{demo_server.url}/v1/calls",  # no other route opened
                                     headers={"Origin": demo_server.host_origin, **preflight})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.timeout(960)  # schemathesis' own limit (900 s) first
def test_schemathesis_finds_no_server_error_in_the_chat_api(demo_server: Server,
                                                           tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{demo_server.url}/openapi.json",
         "--include-path-regex", "^/v1/chat/", "--checks", "not_a_server_error",
         "--max-examples", "40", "--workers", "1", "--phases", "examples,coverage,fuzzing",
         "--request-timeout", "60", "--generation-database", "none", "--seed", "1",
         "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = run.stdout.split("SUMMARY")[-1]
    assert "POST /v1/chat/sessions" in run.stdout and " failed" not in summary, run.stdout
