"""A web chat that asks for an agent goes through the same routing, offers and desk as a
call: the real app (uvicorn), a chat over the real API + WebSocket, agents signed in through
the desk API. Messages pass both ways, the agent ends the chat and wraps up, the CDR of the
chat has the handoff fields; nobody free ends in the flow's queue-timeout offer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.handoff.conftest import DEMO
from tests.handoff.routing import two_agent_routing

TIMEOUT_S = 60.0


class Chat:
    """One visitor's chat over the WebSocket; ``received`` keeps every server message."""

    def __init__(self, session: dict[str, Any], ws: Any) -> None:
        self.session = session
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    @property
    def call_id(self) -> str:
        return str(self.session["session_id"])

    async def until(self, match: Any, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        """The next message ``match(m)`` holds for (``match`` may be a type name)."""
        test = (lambda m: m["type"] == match) if isinstance(match, str) else match
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))
            self.received.append(message)
            if test(message):
                return dict(message)

    async def text(self, text: str) -> None:
        await self.ws.send(json.dumps({"type": "text", "text": text}))

    async def press(self, ask: dict[str, Any], label: str) -> None:
        found = [b for b in ask["buttons"] if b["label"] == label]
        assert found, f"no button {label!r} in {ask['buttons']}"
        await self.ws.send(json.dumps({"type": "button", "value": found[0]["value"],
                                       "ask": ask["seq"]}))

    async def ask_for_agent(self) -> None:
        """Through the demo flow: Chinese, "I want a human", yes."""
        await self.press(await self.until("ask"), "中文")
        await self.until("ask")
        await self.text("我要找人工客服")
        await self.press(await self.until("ask"), "是")


async def open_chat(url: str) -> tuple[dict[str, Any], str]:
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        response = await client.post(f"{url}/v1/chat/sessions",
                                     json={"hotline_number": DEMO, "locale": "zh"})
    assert response.status_code == 201, response.text
    session = dict(response.json())
    return session, "ws" + url.removeprefix("http") + session["websocket"]


async def test_a_chat_is_offered_at_the_desk_answered_typed_both_ways_and_wrapped_up(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(two_agent_routing(tmp_path, ring_timeout_s=3, max_missed_offers=5))
    first, second = desk.agent("li.na"), desk.agent("zhang.wei")
    await first.login()
    await second.login()
    session, ws_url = await open_chat(desk.url)
    async with websockets.connect(ws_url, subprotocols=session["protocols"]) as ws:
        chat = Chat(session, ws)
        await chat.ask_for_agent()

        _, missed = await first.offer()  # sequential: li.na first; she lets it ring
        assert missed["call_id"] == chat.call_id
        packet = missed["packet"]
        assert packet["channel"] == "chat" and packet["intent"] == "talk_to_agent"
        assert any(t["text"] == "我要找人工客服" for t in packet["transcript"])
        await first.feed.wait(lambda m: m["type"] == "offer_ended"
                              and m["state"] == "timed_out")
        _, offer = await second.offer()
        assert offer["call_id"] == chat.call_id and offer["packet"]["channel"] == "chat"
        await second.post(f"/v1/desk/offers/{offer['offer_id']}/answer", {}, expect=200)
        joined = await chat.until("agent")
        assert joined["event"] == "joined" and joined["name"] == "张伟"
        await second.feed.wait(lambda m: m["type"] == "connected"
                               and m["call_id"] == chat.call_id and m["channel"] == "chat")

        # busy with the chat: the agent's presence says so (max concurrent 1)
        me = await second.client.get("/v1/desk/me")
        assert chat.call_id in me.json()["presence"]["calls"], me.text

        xss = "<img src=x onerror=alert(1)>您好，我是张伟"
        sent = await second.action(chat.call_id, "message", {"text": xss})
        said = await chat.until(lambda m: m["type"] == "message" and m["from"] == "agent")
        assert said["text"] == xss and said["seq"] == sent["seq"]  # as text: the page
        await chat.text("洗衣机漏水了")                         # shows it with textContent
        heard = await second.feed.wait(
            lambda m: m["type"] == "call_event" and m["event"]["type"] == "transcript"
            and m["event"].get("speaker", "caller") == "caller"
            and m["event"]["text"] == "洗衣机漏水了")
        assert heard[1]["event"]["call_id"] == chat.call_id

        too_long = "长" * (desk.app.state.settings.chat_message_max_chars + 1)
        await second.action(chat.call_id, "message", {"text": too_long}, expect=422)
        await second.action(chat.call_id, "message", {"text": " \u202e "}, expect=400)
        await second.action(chat.call_id, "hold", expect=409)  # no audio in a chat
        refused = await second.action(chat.call_id, "handback", {"node": "verify"},
                                      expect=409)
        assert "is a chat" in refused["detail"]
        await first.action(chat.call_id, "message", {"text": "hi"}, expect=409)

        await second.action(chat.call_id, "hangup")
        left = await chat.until("agent")
        assert left["event"] == "left"
        await second.feed.wait(lambda m: m["type"] == "talk_ended"
                               and m["call_id"] == chat.call_id)
        end = await chat.until("end")
    assert end["outcome"] == "agent_handled"

    await second.post(f"/v1/desk/calls/{chat.call_id}/wrapup",
                      {"disposition": "resolved", "notes": "漏水，已派单"})
    cdr = await desk.cdr(chat.call_id, lambda c: bool(c.get("disposition")))
    assert cdr["channel"] == "chat" and cdr["outcome"] == "agent_handled"
    assert cdr["answered_by"] == "zhang.wei" and cdr["disposition"] == "resolved"
    assert [(r["agent_id"], r["outcome"]) for r in cdr["ring_attempts"]] == [
        ("li.na", "no_answer"), ("zhang.wei", "answered")]
    assert cdr["wait_s"] >= 2.5 and cdr["talk_s"] > 0 and not cdr["abandoned"]
    state = await second.client.get("/v1/desk/me")
    assert state.json()["presence"]["calls"] == []  # free again after the chat


async def test_a_chat_nobody_answers_gets_the_flows_queue_timeout_offer(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(two_agent_routing(tmp_path, max_wait_s=3))
    agent = desk.agent("li.na")
    await agent.login(status=None)  # signed in, on a break; zhang.wei is offline
    await agent.post("/v1/desk/status", {"status": "away", "reason": "break"})
    session, ws_url = await open_chat(desk.url)
    async with websockets.connect(ws_url, subprotocols=session["protocols"]) as ws:
        chat = Chat(session, ws)
        await chat.ask_for_agent()
        queue = await chat.until("queue")
        assert queue["position"] == 1 and "您是第1位" in queue["text"]
        await chat.text("我的洗衣机漏水了")  # typed while waiting: recorded for the agent
        ask = await chat.until("ask")
        assert [b["label"] for b in ask["buttons"]] == ["预约回电", "留言", "查询订单",
                                                         "人工服务"]
        bot = " ".join(m["text"] for m in chat.received
                       if m["type"] == "message" and m["from"] == "bot")
        assert "客服暂时都在忙" in bot
        await chat.ws.send(json.dumps({"type": "end"}))
        await chat.until("end")
    cdr = await desk.cdr(chat.call_id, lambda c: bool(c.get("ended_at")))
    assert cdr["channel"] == "chat" and cdr["answered_by"] is None
    assert cdr["wait_s"] >= 2.5 and cdr["queue_group"] == "zh_service"


async def test_a_visitor_leaving_mid_chat_frees_the_agent_for_wrap_up(
        make_desk: Any, tmp_path: Path) -> None:
    desk = await make_desk(two_agent_routing(tmp_path))
    agent = desk.agent("li.na")
    await agent.login()
    session, ws_url = await open_chat(desk.url)
    async with websockets.connect(ws_url, subprotocols=session["protocols"]) as ws:
        chat = Chat(session, ws)
        await chat.ask_for_agent()
        _, offer = await agent.offer()
        await agent.post(f"/v1/desk/offers/{offer['offer_id']}/answer", {"sdp": "v=0"},
                         expect=400)  # a chat has no audio
        await agent.post(f"/v1/desk/offers/{offer['offer_id']}/answer", {})
        await chat.until("agent")
        await chat.ws.send(json.dumps({"type": "end"}))
        end = await chat.until("end")
    assert end["outcome"] == "agent_handled"
    _, ended = await agent.feed.wait(lambda m: m["type"] == "talk_ended")
    assert ended["reason"] == "caller_hangup"
    await agent.action(chat.call_id, "message", {"text": "还在吗"}, expect=409)
    me = await agent.client.get("/v1/desk/me")
    assert me.json()["presence"]["calls"] == []
    await agent.post(f"/v1/desk/calls/{chat.call_id}/wrapup", {"disposition": "information"})
    cdr = await desk.cdr(chat.call_id, lambda c: bool(c.get("disposition")))
    assert cdr["answered_by"] == "li.na" and cdr["outcome"] == "agent_handled"
    assert cdr["disposition"] == "information"
