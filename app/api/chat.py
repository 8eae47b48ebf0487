"""Web chat: ``POST /v1/chat/sessions`` starts a chat, its WebSocket carries the messages.

A chat is a call on channel ``chat`` (``app.chat.session.ChatSession``, started through the
``CallManager``): same flows, understanding and record. The WebSocket is
``/v1/chat/sessions/{session_id}/ws``; the client offers the subprotocols
``hotline-chat.v1`` and ``token.<token>`` (the token from the POST answer: it never appears
in a URL or a log line). Messages are described in ``app.chat.protocol``.

Limits: new sessions per client IP, messages per session and per IP (token buckets; a
message over the limit is answered with an ``error`` and dropped), a frame size limit, and
browsers only from this server's own origin or ``chat_allowed_origins`` (CORS for the POST,
an ``Origin`` check for both).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketState

from app.call.conversation import ANONYMOUS
from app.call.manager import UnknownHotlineError
from app.chat.limits import KeyedLimiter
from app.chat.protocol import ChatInputError, EndIn, parse_client
from app.chat.session import PROTOCOL, ChatLink, ChatSession
from app.log import get_logger
from app.metrics import CHAT_MESSAGES
from app.settings import Settings

router = APIRouter(prefix="/v1/chat", tags=["chat"])

MAX_REJECTED = 50  # bad or over-limit frames on one connection before it is closed
CLOSE_NO_CHAT, CLOSE_BAD_TOKEN, CLOSE_ORIGIN, CLOSE_POLICY, CLOSE_TOO_BIG = (
    4404, 4401, 4403, 1008, 1009)


class ChatSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hotline_number: str = Field(min_length=1, max_length=32, pattern=r"^\+?[0-9]{1,31}$",
                                description="the hotline to chat with (its flow answers)")
    locale: str | None = Field(
        default=None, min_length=2, max_length=16,
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$",
        description="the visitor's language (zh, en, zh-CN ...); default: the hotline's")


class ChatSessionOut(BaseModel):
    session_id: str = Field(description="the chat's call_id in the record")
    token: str = Field(description="offer it as the WebSocket subprotocol token.<token>")
    websocket: str = Field(description="path of the chat's WebSocket")
    protocols: list[str] = Field(description="the WebSocket subprotocols to offer")
    hotline_number: str
    locale: str
    message_max_chars: int


@dataclass
class ChatLimits:
    sessions_per_ip: KeyedLimiter
    messages_per_ip: KeyedLimiter
    messages_per_session: KeyedLimiter

    @classmethod
    def from_settings(cls, s: Settings) -> ChatLimits:
        def limiter(per_minute: int) -> KeyedLimiter:
            return KeyedLimiter(per_minute, burst=max(2, math.ceil(per_minute / 3)))

        return cls(limiter(s.chat_ip_sessions_per_minute),
                   limiter(s.chat_ip_messages_per_minute),
                   limiter(s.chat_messages_per_minute))


def chat_limits(state: Any) -> ChatLimits:
    limits = getattr(state, "chat_limits", None)
    if limits is None:
        limits = state.chat_limits = ChatLimits.from_settings(state.settings)
    return limits  # type: ignore[no-any-return]


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """A browser's ``Origin`` may use the chat: this server's own, or a listed one. No
    ``Origin`` at all is not a browser page (curl, a server), which CORS does not concern."""
    if origin is None:
        return True
    wanted = origin.strip().rstrip("/").lower()
    if "*" in allowed or wanted in {a.strip().rstrip("/").lower() for a in allowed}:
        return True
    netloc = urlsplit(wanted).netloc if "://" in wanted else ""
    return bool(netloc) and host is not None and netloc == host.strip().lower()


def _problem(status: int, loc: list[str], msg: str, kind: str,
             headers: dict[str, str] | None = None) -> HTTPException:
    """A 4xx in FastAPI's validation shape: which field, and why."""
    return HTTPException(status, detail=[{"loc": loc, "msg": msg, "type": kind}],
                         headers=headers)


def _client_ip(client: Any) -> str:
    return str(client.host) if client is not None else "unknown"


def _hotline_locale(request: Request, body: ChatSessionIn) -> str | None:
    calls = request.app.state.calls
    try:
        hotline = calls.hotline(body.hotline_number)
    except UnknownHotlineError as exc:
        raise _problem(404, ["body", "hotline_number"], str(exc), "unknown_hotline") from None
    if body.locale is None:
        return None
    for candidate in (body.locale, body.locale.replace("_", "-").split("-")[0].lower()):
        if candidate in hotline.locales:
            return candidate
    raise _problem(422, ["body", "locale"], f"hotline {body.hotline_number} speaks "
                   f"{', '.join(hotline.locales)}, not {body.locale!r}", "unsupported_locale")


@router.post("/sessions", status_code=201, response_model=ChatSessionOut, responses={
    403: {"description": "the page's origin may not use this chat"},
    404: {"description": "no flow serves the hotline number"},
    422: {"description": "a field is missing or wrong (which, and why)"},
    429: {"description": "too many new chats from this address (Retry-After)"},
})
async def start_chat(body: ChatSessionIn, request: Request) -> ChatSessionOut:
    """Start a chat with a hotline's bot; then connect to its WebSocket."""
    state = request.app.state
    settings: Settings = state.settings
    if not origin_allowed(request.headers.get("origin"), request.headers.get("host"),
                          settings.chat_allowed_origins):
        raise _problem(403, ["header", "origin"], "this page's origin may not use the chat "
                       "(settings: chat_allowed_origins)", "origin_not_allowed")
    locale = _hotline_locale(request, body)
    wait_s = chat_limits(state).sessions_per_ip.take(_client_ip(request.client))
    if wait_s > 0:
        retry = str(math.ceil(wait_s))
        raise _problem(429, ["client"], f"too many new chats from this address; try again in "
                       f"{retry} s", "rate_limited", headers={"Retry-After": retry})
    calls = state.calls
    info = calls.new_call(hotline_number=body.hotline_number, caller_number=ANONYMOUS,
                          locale=locale, channel="chat")
    chat = ChatSession(info, calls.deps)
    calls.launch(chat)
    return ChatSessionOut(
        session_id=info.call_id, token=chat.token, hotline_number=info.hotline_number,
        websocket=f"/v1/chat/sessions/{info.call_id}/ws", locale=info.locale,
        protocols=[PROTOCOL, f"token.{chat.token}"],
        message_max_chars=settings.chat_message_max_chars,
    )


@router.websocket("/sessions/{session_id}/ws")
async def chat_socket(websocket: WebSocket, session_id: str) -> None:
    """The chat's messages, both ways (``app.chat.protocol``)."""
    state = websocket.app.state
    settings: Settings = state.settings
    offered = list(websocket.scope.get("subprotocols") or [])
    await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
    token = next((p[len("token."):] for p in offered if p.startswith("token.")), "")
    chat = state.calls.session(session_id)
    if not origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"),
                          settings.chat_allowed_origins):
        await websocket.close(CLOSE_ORIGIN, "origin not allowed")
        return
    if not isinstance(chat, ChatSession) or chat.finished:
        await websocket.close(CLOSE_NO_CHAT, "no such chat (ended or unknown)")
        return
    if not hmac.compare_digest(token.encode(), chat.token.encode()):
        await websocket.close(CLOSE_BAD_TOKEN, "bad or missing token")
        return
    async with chat.attach() as link:
        await _serve(websocket, link, chat, _client_ip(websocket.client))


async def _serve(websocket: WebSocket, link: ChatLink, chat: ChatSession, ip: str) -> None:
    lock = asyncio.Lock()
    writer = asyncio.create_task(_write(websocket, link, lock),
                                 name=f"chat-out-{chat.info.call_id}")
    reader = asyncio.create_task(_read(websocket, link, chat, ip, lock),
                                 name=f"chat-in-{chat.info.call_id}")
    try:
        await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (writer, reader):
            task.cancel()
        await asyncio.gather(writer, reader, return_exceptions=True)
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(1000, "chat ended" if chat.finished else "")


async def _write(websocket: WebSocket, link: ChatLink, lock: asyncio.Lock) -> None:
    while (message := await link.receive()) is not None:
        async with lock:
            await websocket.send_json(message)


async def _read(websocket: WebSocket, link: ChatLink, chat: ChatSession, ip: str,
                lock: asyncio.Lock) -> None:
    settings: Settings = websocket.app.state.settings
    limits = chat_limits(websocket.app.state)
    max_chars = settings.chat_message_max_chars
    max_bytes = 4 * max_chars + 512
    rejected = 0
    while True:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        raw = frame.get("text")
        if raw is None:
            raw_bytes = frame.get("bytes") or b""
            problem: ChatInputError | None = ChatInputError("(frame)", "binary frames are not "
                                                        "accepted; send JSON text")
            size = len(raw_bytes)
        else:
            problem, size = None, len(raw.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            CHAT_MESSAGES.labels("too_large").inc()
            await websocket.close(CLOSE_TOO_BIG, f"frame over {max_bytes} bytes")
            return
        try:
            if problem is not None:
                raise problem
            message = parse_client(str(raw), max_chars)
            if not isinstance(message, EndIn):  # ending is always allowed
                _rate(limits, chat.info.call_id, ip)
            link.submit(message)
        except ChatInputError as exc:
            rejected += 1
            chat.stats["rejected"] += 1
            CHAT_MESSAGES.labels("rate_limited" if exc.field == "(rate)" else "invalid").inc()
            get_logger(call_id=chat.info.call_id).info("chat_input_refused", field=exc.field,
                                                       reason=exc.reason)
            if rejected >= MAX_REJECTED:
                await websocket.close(CLOSE_POLICY, "too many refused messages")
                return
            async with lock:
                await websocket.send_json(exc.reply())
            continue
        CHAT_MESSAGES.labels("accepted").inc()


def _rate(limits: ChatLimits, session_id: str, ip: str) -> None:
    wait_s = max(limits.messages_per_session.take(session_id), limits.messages_per_ip.take(ip))
    if wait_s > 0:
        raise ChatInputError("(rate)", f"too many messages; try again in {math.ceil(wait_s)} s")


class ChatCors:
    """Starlette's ``CORSMiddleware`` for the chat API only (``/v1/chat/``): the origins of
    ``chat_allowed_origins`` may start chats from their pages; no other route is opened."""

    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=allowed_origins, allow_methods=["POST"],
                                   allow_headers=["Content-Type"], max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1/chat/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)

