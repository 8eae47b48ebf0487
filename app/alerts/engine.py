"""The alert engine of one node: evaluates every ``alert_check_every_s`` (the rolling service
level from the database, the callers waiting in this node's queues) and at once on the
relevant live events (a sentiment turn; a caller leaving a queue or hanging up). Each raised
or cleared alert is published on the live bus as an ``alert`` event (the monitor's wall),
kept for ``GET /v1/alerts``, and POSTed to the webhook when one is set.

Each node alerts on its own calls and queues; the service level is read from the shared
database, so on several nodes each node raises its own (``node_id`` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from app.alerts.rules import Alert, AlertBook, sentiment_falling, sla_breached
from app.alerts.webhook import WebhookSender
from app.call.bus import LiveBus
from app.call.manager import CallManager
from app.events import utc_now
from app.log import get_logger
from app.metrics import ALERTS_RAISED
from app.reports.calls import Context, service_level_counts
from app.reports.filters import ReportFilter
from app.reports.sql import cdr_columns
from app.settings import Settings
from app.storage.db import Database

ServiceLevel = Callable[[datetime], "tuple[int, int] | None"]
HOLD_ENDS = frozenset({"queue_left", "queue_exit", "agent_connected", "call_ended"})


def rolling_service_level(db: Database, settings: Settings) -> ServiceLevel:
    """(answered within ``alert_sla_s``, handed off) of the calls started in the window up
    to ``now``: the waits report's service level (blocking: run it in a thread)."""
    window = timedelta(seconds=settings.alert_sla_window_s)

    def counts(now: datetime) -> tuple[int, int] | None:
        ctx = Context(backend=db.backend, columns=cdr_columns(db), sla_s=settings.alert_sla_s)
        with db.session() as s:
            return service_level_counts(s, ReportFilter(start=now - window, end=now), ctx)

    return counts


class AlertEngine:
    def __init__(self, settings: Settings, bus: LiveBus, calls: CallManager,
                 service_level: ServiceLevel, http: httpx.AsyncClient,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.settings, self.bus, self.calls = settings, bus, calls
        self.service_level, self.clock = service_level, clock
        self.book = AlertBook(settings.alert_recent_max)
        self.scores: dict[str, list[float]] = {}  # live call -> its sentiment scores
        self.transferred: dict[str, datetime] = {}  # live call -> its last transfer event
        secret = settings.alert_webhook_secret
        self.webhook = WebhookSender(
            http, settings.alert_webhook_url, timeout_s=settings.alert_webhook_timeout_s,
            secret=secret.get_secret_value() if secret else None,
            retries=settings.alert_webhook_retries, backoff_s=settings.alert_webhook_backoff_s,
        ) if settings.alert_webhook_url else None
        self._tasks: list[asyncio.Task[None]] = []
        self.log = get_logger(component="alerts")

    # -- life ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Follow the bus (subscribed before this returns), then check periodically."""
        ready = asyncio.Event()
        self._tasks = [asyncio.create_task(self._follow(ready), name="alerts-follow"),
                       asyncio.create_task(self._every(), name="alerts-every")]
        if self.webhook is not None:
            self.webhook.start()
        await ready.wait()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.webhook is not None:
            await self.webhook.aclose()

    async def _every(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # a database hiccup: logged, the next round retries
                self.log.error("alert_check_failed", reason=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.alert_check_every_s)

    async def _follow(self, ready: asyncio.Event) -> None:
        async with self.bus.subscribe(None) as queue:
            ready.set()
            while True:
                event = await queue.get()
                try:
                    self.on_event(event)
                except Exception as exc:  # a malformed event never stops the alerts
                    self.log.error("alert_event_failed", call_id=event.get("call_id"),
                                   reason=f"{type(exc).__name__}: {exc}")

    # -- checks -------------------------------------------------------------------------------
    async def check(self) -> None:
        await self.check_sla()
        self.check_holds()

    async def check_sla(self) -> None:
        s = self.settings
        if not s.alert_sla_enabled:
            return
        now = self.clock()
        counts = await asyncio.to_thread(self.service_level, now)
        if counts is None:  # no agent columns: no service level
            return
        within, handed = counts
        key = "sla:all"
        on, level = sla_breached(within, handed, target_pct=s.alert_sla_target_pct,
                                 clear_pct=s.alert_sla_clear_pct,
                                 min_calls=s.alert_sla_min_calls, active=key in self.book.active)
        if level is None:
            return
        if on:
            self._raise(Alert("sla", key, None, None, level, s.alert_sla_target_pct, "%", now,
                              detail=f"{within} of {handed} handed-off calls of the last "
                              f"{s.alert_sla_window_s:g} s answered within {s.alert_sla_s:g} s"))
        else:
            self._clear(key, now, level)

    def queued(self, now: datetime) -> dict[str, tuple[str, float]]:
        """This node's waiting callers: call id -> (queue, seconds since its transfer
        event, as the monitor's longest wait)."""
        found: dict[str, tuple[str, float]] = {}
        for queue, members in self.calls.deps.queues.waiting().items():
            for call_id in members:
                since = self.transferred.get(call_id)
                if since is not None:
                    found[call_id] = (queue, round((now - since).total_seconds(), 1))
        return found

    def check_holds(self) -> None:
        s = self.settings
        if not s.alert_hold_enabled:
            return
        now = self.clock()
        queued = self.queued(now)
        for call_id, (queue, waited) in queued.items():
            if waited > s.alert_hold_max_s:
                self._raise(Alert("hold", f"hold:{call_id}", queue, call_id, waited,
                                  s.alert_hold_max_s, "s", now,
                                  detail=f"waiting in {queue} for {waited:.0f} s"))
        for key in self.book.keys("hold"):
            call_id = self.book.active[key].call_id or ""
            if call_id not in queued:
                self._clear(key, now)

    def on_sentiment(self, call_id: str, score: float) -> None:
        s = self.settings
        if self.bus.shared and self.calls.session(call_id) is None:
            return  # another node's call: that node alerts
            return
        scores = self.scores.setdefault(call_id, [])
        scores.append(score)
        why = sentiment_falling(scores, below=s.alert_sentiment_below,
                                drop=s.alert_sentiment_drop)
        key, now = f"sentiment:{call_id}", self.clock()
        if why is None:
            self._clear(key, now, score)
            return
        queue = next((q for q, members in self.calls.deps.queues.waiting().items()
                      if call_id in members), None)
        self._raise(Alert("sentiment", key, queue, call_id, score, s.alert_sentiment_below,
                          "score", now, detail=why))

    def on_event(self, event: dict[str, Any]) -> None:
        kind, call_id = event.get("type"), event.get("call_id")
        if kind == "alert" or not isinstance(call_id, str):
            return
        if kind == "sentiment" and self.settings.alert_sentiment_enabled:
            self.on_sentiment(call_id, float(event["score"]))
        if kind == "transfer" and isinstance(event.get("at"), str):
            self.transferred[call_id] = datetime.fromisoformat(event["at"])
        if kind == "call_ended":
            self.scores.pop(call_id, None)
            self.transferred.pop(call_id, None)
            self._clear(f"sentiment:{call_id}", self.clock())
        if kind in HOLD_ENDS and f"hold:{call_id}" in self.book.active:
            self.check_holds()

    # -- publishing ---------------------------------------------------------------------------
    def _raise(self, alert: Alert) -> None:
        raised = self.book.raise_(replace(alert, node_id=self.settings.node_id))
        if raised is not None:
            ALERTS_RAISED.labels(kind=raised.kind).inc()
            self.log.warning("alert_raised", call_id=raised.call_id, alert_id=raised.key,
                             queue=raised.queue, value=raised.value,
                             threshold=raised.threshold, detail=raised.detail)
            self._publish(raised)

    def _clear(self, key: str, now: datetime, value: float | None = None) -> None:
        cleared = self.book.clear(key, now, value)
        if cleared is not None:
            self.log.info("alert_cleared", call_id=cleared.call_id, alert_id=key,
                          value=cleared.value)
            self._publish(cleared)

    def _publish(self, alert: Alert) -> None:
        event = alert.event()
        self.bus.publish(event)
        if self.webhook is not None:
            self.webhook.send(event)
