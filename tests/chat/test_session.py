"""A chat session in-process, where its faults can be made for real: the database refuses
the record at the start (a read-only SQLite file)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from app.call.bus import EventBus
from app.call.conversation import ANONYMOUS
from app.call.info import CallDeps, CallInfo
from app.chat.protocol import EndIn, TextIn
from app.chat.session import ChatSession
from app.flows.defaults import default_text
from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.routing.waiting import QueueBoard
from app.services import open_storage
from app.settings import PROJECT_ROOT, Settings
from app.storage.db import Database
from app.storage.repository import CallRepository


async def test_a_chat_whose_record_cannot_be_created_apologizes_and_spools_it(
        tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", log_json=False, record_retry_s=0.5,
                        record_start_timeout_s=1.0)
    db, _ = await open_storage(settings)  # the schema exists; then the file is read-only
    db.dispose()
    read_only = Database(f"sqlite:///file:{settings.data_dir / 'hotline.db'}?mode=ro&uri=true")
    async with httpx.AsyncClient() as http:
        deps = CallDeps(settings=settings, store=CallRepository(read_only), bus=EventBus(),
                        engine=FlowEngine(load_flows(PROJECT_ROOT / "ivr_flows")), tts=None,
                        asr=None, nlu=None, http=http, queues=QueueBoard())
        info = CallInfo(call_id="chat-ro", flow_id="demo_hotline", hotline_number="4008001234",
                        caller_number=ANONYMOUS, locale="zh", channel="chat")
        chat = ChatSession(info, deps)
        async with chat.attach() as link:
            outcome = await asyncio.wait_for(chat.run(), 60)
            seen = []
            while (message := await link.receive()) is not None:
                seen.append(message)
    read_only.dispose()
    assert outcome == "error"
    assert [(m["type"], m.get("text")) for m in seen] == [
        ("message", default_text("apology", "zh")), ("end", None)]
    spooled = json.loads((settings.spool_dir / "chat-ro.json").read_text(encoding="utf-8"))
    assert spooled["row_created"] is False and spooled["header"]["channel"] == "chat"
    db, repo = await open_storage(settings)  # writable again: the record is replayed
    try:
        detail = repo.get_call("chat-ro")
        assert detail is not None
        assert (detail.cdr.channel, detail.cdr.outcome) == ("chat", "error")
        errors = [e.payload for e in detail.events if e.type == "error"]
        assert errors and errors[0]["where"] == "storage"
    finally:
        db.dispose()


async def test_a_visitor_who_types_and_ends_in_the_same_instant_gets_the_end_at_once(
        tmp_path: Path) -> None:
    """The end and a message right behind it land in one event-loop step (a burst on a
    loaded box): the chat ends then, as caller_hangup. (On Python 3.11, ``asyncio.wait_for``
    around the inbox read swallowed the chat's cancellation here: the chat went on waiting
    for input until the no-input timeout, and the visitor never got the end.)"""
    settings = Settings(data_dir=tmp_path / "data", log_json=False, chat_no_input_s=120)
    db, repo = await open_storage(settings)
    try:
        async with httpx.AsyncClient() as http:
            deps = CallDeps(settings=settings, store=repo, bus=EventBus(),
                            engine=FlowEngine(load_flows(PROJECT_ROOT / "ivr_flows")),
                            tts=None, asr=None, nlu=None, http=http, queues=QueueBoard())
            info = CallInfo(call_id="chat-burst", flow_id="demo_hotline",
                            hotline_number="4008001234", caller_number=ANONYMOUS,
                            locale="zh", channel="chat")
            chat = ChatSession(info, deps)
            async with chat.attach() as link:
                run = asyncio.create_task(chat.run())
                seen = []
                while (message := await asyncio.wait_for(link.receive(), 30)) is not None:
                    seen.append(message)
                    if message["type"] == "ask":
                        break
                chat.submit(EndIn())
                chat.submit(TextIn(text="hello"))
                outcome = await asyncio.wait_for(run, 10)
                while (message := await link.receive()) is not None:
                    seen.append(message)
        assert outcome == "caller_hangup"
        assert seen[-1]["type"] == "end" and seen[-1]["outcome"] == "caller_hangup"
        detail = repo.get_call("chat-burst")
        assert detail is not None and detail.cdr.outcome == "caller_hangup"
    finally:
        db.dispose()
