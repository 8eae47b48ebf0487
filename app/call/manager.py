"""Starts and tracks the process's calls; finalizes them on shutdown.

A call is anything that runs one conversation and keeps one record (``ManagedCall``): a voice
``CallSession`` on a media leg (``start_call``), or a text chat (``app.chat``), which makes
its ``CallInfo`` with ``new_call`` and hands its session to ``launch``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from app.call.eventlog import CallEventLog
from app.call.media import CallMedia
from app.call.session import CallDeps, CallInfo, CallSession
from app.log import get_logger

RETRY_AFTER_S = 10  # what a refused caller is told (HTTP Retry-After, SIP 503 Retry-After)


class UnknownHotlineError(ValueError):
    """No flow serves the dialled number."""


class CallLimitError(RuntimeError):
    """This node already serves ``max_calls`` calls; the caller may retry after a while."""

    def __init__(self, max_calls: int, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(f"this node is at its limit of {max_calls} concurrent calls; "
                         f"try again in {retry_after_s} s")
        self.max_calls = max_calls
        self.retry_after_s = retry_after_s


class NodeDrainingError(CallLimitError):
    """This node is stopping (SIGTERM): it takes no new call; the caller tries another node."""

    def __init__(self, retry_after_s: int = RETRY_AFTER_S) -> None:
        RuntimeError.__init__(self, "this node is draining before it stops: it takes no new "
                              f"call; try another node, or again in {retry_after_s} s")
        self.max_calls = 0
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Hotline:
    number: str
    flow_id: str
    locales: tuple[str, ...]
    default_locale: str
    recording: bool


class ManagedCall(Protocol):
    """One running call of any channel, as the manager tracks it."""

    info: CallInfo
    events: CallEventLog

    async def run(self) -> str:
        """The whole call; returns its outcome, closing its record on every path."""
        ...


class CallManager:
    def __init__(self, deps: CallDeps, hotlines: dict[str, Hotline]) -> None:
        self.deps = deps
        self.hotlines = hotlines
        self._sessions: dict[str, ManagedCall] = {}
        self._tasks: dict[str, asyncio.Task[str]] = {}
        self._log = get_logger()
        self.draining = False  # set once on SIGTERM: no new call (app.cluster.drain)

    def hotline(self, number: str) -> Hotline:
        hotline = self.hotlines.get(number)
        if hotline is None:
            known = ", ".join(sorted(self.hotlines)) or "none"
            raise UnknownHotlineError(f"no flow serves hotline number {number!r} (known: {known})")
        return hotline

    def check_capacity(self) -> None:
        """Raise ``CallLimitError`` when this node already serves ``settings.max_calls``
        voice calls (web chats carry no audio and are not counted); ``NodeDrainingError``
        (a ``CallLimitError``) once the node is draining."""
        if self.draining:
            raise NodeDrainingError()
        max_calls = self.deps.settings.max_calls
        if self.voice_calls() >= max_calls:
            raise CallLimitError(max_calls)

    def voice_calls(self) -> int:
        """Calls up with audio (every transport; web chats are not counted)."""
        return sum(1 for call in self._sessions.values() if call.info.channel != "chat")

    def new_call(self, *, hotline_number: str, caller_number: str, locale: str | None,
                 channel: str) -> CallInfo:
        """What a new call on ``hotline_number`` is (a fresh call_id). Raises
        UnknownHotlineError, or ValueError for a locale the hotline does not speak."""
        hotline = self.hotline(hotline_number)
        if locale is not None and locale not in hotline.locales:
            raise ValueError(
                f"hotline {hotline_number} speaks {', '.join(hotline.locales)}, not {locale!r}"
            )
        return CallInfo(
            call_id=uuid.uuid4().hex, flow_id=hotline.flow_id, hotline_number=hotline_number,
            caller_number=caller_number or "anonymous", locale=locale or hotline.default_locale,
            channel=channel, recording=hotline.recording, default_locale=hotline.default_locale,
        )

    def launch(self, call: ManagedCall) -> str:
        """Run ``call`` as a task of this process; returns its call_id."""
        call_id = call.info.call_id
        task = asyncio.create_task(call.run(), name=f"call-{call_id}")
        self._sessions[call_id] = call
        self._tasks[call_id] = task
        task.add_done_callback(partial(self._done, call_id))
        return call_id

    async def start_call(self, media: CallMedia, *, hotline_number: str, caller_number: str,
                         locale: str | None, channel: str) -> str:
        """Start a voice call on ``media``; returns its call_id. Raises UnknownHotlineError, or
        CallLimitError beyond ``max_calls`` (calls already up are untouched)."""
        self.check_capacity()
        info = self.new_call(hotline_number=hotline_number, caller_number=caller_number,
                             locale=locale, channel=channel)
        return self.launch(CallSession(info, media, self.deps))

    def _done(self, call_id: str, task: asyncio.Task[str]) -> None:
        self._sessions.pop(call_id, None)
        self._tasks.pop(call_id, None)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("call_task_failed", call_id=call_id, error=repr(task.exception()))

    def session(self, call_id: str) -> ManagedCall | None:
        return self._sessions.get(call_id)

    def active(self) -> list[str]:
        return list(self._tasks)

    def task(self, call_id: str) -> asyncio.Task[str] | None:
        return self._tasks.get(call_id)

    async def wait(self, call_id: str, timeout_s: float) -> str:
        task = self._tasks.get(call_id)
        if task is None:
            raise KeyError(call_id)
        async with asyncio.timeout(timeout_s):
            return await asyncio.shield(task)

    async def shutdown(self) -> None:
        """Stop every call; each one finalizes its own record (outcome ``interrupted``)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
