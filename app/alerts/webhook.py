"""POST each alert to ``alert_webhook_url``: JSON, optionally signed (HMAC-SHA256 of the
body in ``X-Hotline-Signature: sha256=<hex>``), off the caller's path (a queue and one
sender task), retried with doubling back-off; a failure is logged and counted, never
raised."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from typing import Any

import httpx

from app.log import get_logger
from app.metrics import ALERT_WEBHOOKS

SIGNATURE_HEADER = "X-Hotline-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Deliver alert bodies in order; at most ``max_queue`` waiting (beyond: dropped and
    counted)."""

    def __init__(self, http: httpx.AsyncClient, url: str, *, secret: str | None,
                 timeout_s: float, retries: int, backoff_s: float,
                 max_queue: int = 1000) -> None:
        self.http, self.url, self.secret = http, url, secret
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self.log = get_logger(component="alerts")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-webhook")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def send(self, body: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            ALERT_WEBHOOKS.labels(result="dropped").inc()
            self.log.error("alert_webhook_dropped", alert_id=body.get("alert_id"),
                           call_id=body.get("subject", {}).get("call_id"),
                           reason="too many alerts waiting for the webhook")

    async def _run(self) -> None:
        while True:
            body = await self._queue.get()
            await self.deliver(body)

    async def deliver(self, body: dict[str, Any]) -> bool:
        """POST ``body`` until it is taken (2xx) or the retries are spent."""
        data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "X-Hotline-Event": "alert"}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, data)
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = await self.http.post(self.url, content=data, headers=headers,
                                                timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"[:200]
                continue
            if response.is_success:
                ALERT_WEBHOOKS.labels(result="sent").inc()
                return True
            reason = f"HTTP {response.status_code}"
        ALERT_WEBHOOKS.labels(result="failed").inc()
        self.log.error("alert_webhook_failed", alert_id=body.get("alert_id"),
                       call_id=body.get("subject", {}).get("call_id"),
                       tries=self.retries + 1, reason=reason)
        return False
