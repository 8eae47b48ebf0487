"""The agents' desks: who is connected, what each is shown, and the stand-in login.

``DeskHub`` fans messages out to each agent's open desk WebSocket(s) (JSON objects with a
``type``: ``offer``, ``offer_ended``, ``agent_state``, ``connected``, ``call_event``...). A desk
that falls behind loses its oldest messages, never blocks a call. ``watching(agent)`` is the
calls an agent is offered or on: the desk WebSocket forwards those calls' live events
(transcript of both sides, sentiment, hold, hand-back results).

``DeskLogins`` is a minimal session login for agents (an agent id from the routing and the
desk password from settings; a cookie session with a CSRF token). The back-office auth work
(``app/auth``: users, roles, sessions) replaces it behind ``app.api.desk.current_agent``.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

MAX_QUEUE = 500


class DeskHub:
    def __init__(self, on_last_gone: Callable[[str], None] | None = None) -> None:
        self._conns: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._watch: dict[str, set[str]] = {}  # agent -> call ids
        self.on_last_gone = on_last_gone
        self.dropped = 0

    def send(self, agent_id: str, message: dict[str, Any]) -> None:
        for queue in list(self._conns.get(agent_id, ())):
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(message)

    def connected(self, agent_id: str) -> bool:
        return bool(self._conns.get(agent_id))

    @asynccontextmanager
    async def connect(self, agent_id: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUE)
        self._conns.setdefault(agent_id, set()).add(queue)
        try:
            yield queue
        finally:
            left = self._conns.get(agent_id, set())
            left.discard(queue)
            if not left:
                self._conns.pop(agent_id, None)
                if self.on_last_gone is not None:
                    self.on_last_gone(agent_id)

    def watch(self, agent_id: str, call_id: str) -> None:
        self._watch.setdefault(agent_id, set()).add(call_id)

    def unwatch(self, agent_id: str, call_id: str) -> None:
        self._watch.get(agent_id, set()).discard(call_id)

    def watching(self, agent_id: str) -> frozenset[str]:
        return frozenset(self._watch.get(agent_id, ()))


@dataclass
class DeskSession:
    agent_id: str
    csrf_token: str
    token: str = field(repr=False, default="")


class DeskLogins:
    """Agent sessions in memory (a restart signs everyone out)."""

    def __init__(self, password: str) -> None:
        self._password = password
        self._sessions: dict[str, DeskSession] = {}

    def login(self, agent_id: str, password: str) -> DeskSession | None:
        if not hmac.compare_digest(password.encode(), self._password.encode()):
            return None
        token = secrets.token_urlsafe(32)
        session = DeskSession(agent_id, secrets.token_urlsafe(24), token)
        self._sessions[token] = session
        return session

    def get(self, token: str | None) -> DeskSession | None:
        return self._sessions.get(token) if token else None

    def logout(self, token: str) -> DeskSession | None:
        return self._sessions.pop(token, None)
