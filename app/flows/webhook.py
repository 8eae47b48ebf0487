"""Run a flow's ``Webhook`` action over HTTP; every outcome is a ``webhook_result`` input.

Relative URLs (``/demo/orders/{order_number}``) resolve against the client's ``base_url``.
A timeout, a hang, a connection error or a 5xx is retried ``retries`` times; a 4xx is not.
Non-JSON, a JSON value that is not an object, or an oversized body is a failure with a
reason. ``run_webhook`` never raises (cancellation aside).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from app.flows.runtime import CallerInput, Webhook

MAX_BODY_BYTES = 1_000_000
RETRY_DELAY_S = 0.1


async def run_webhook(action: Webhook, client: httpx.AsyncClient) -> CallerInput:
    attempts = 1 + max(0, action.retries)
    last = CallerInput.webhook_result(False, error="not attempted")
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(RETRY_DELAY_S * attempt)
        last, retry = await _once(action, client)
        if not retry:
            return last
    return last


async def _once(action: Webhook, client: httpx.AsyncClient) -> tuple[CallerInput, bool]:
    """The result and whether another attempt may help."""
    kwargs: dict[str, Any] = {"timeout": action.timeout_s}
    if action.method == "GET":
        kwargs["params"] = action.body
    else:
        kwargs["json"] = action.body
    try:
        async with asyncio.timeout(action.timeout_s):
            response = await client.request(action.method, action.url, **kwargs)
    except TimeoutError:
        return _fail(f"timed out after {action.timeout_s:g} s"), True
    except httpx.TimeoutException:
        return _fail(f"timed out after {action.timeout_s:g} s"), True
    except httpx.HTTPError as exc:
        return _fail(f"{type(exc).__name__}: {exc}"), True
    except (httpx.InvalidURL, ValueError) as exc:
        return _fail(f"bad request: {exc}"), False
    status = response.status_code
    if status >= 500:
        return _fail(f"server error {status}", status), True
    if status >= 400:
        return _fail(f"client error {status}", status, _json_or_empty(response.content)), False
    return _parse(response.content, status), False


def _parse(content: bytes, status: int) -> CallerInput:
    if len(content) > MAX_BODY_BYTES:
        return _fail(f"response larger than {MAX_BODY_BYTES} bytes", status)
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _fail(f"response is not JSON: {exc}", status)
    if not isinstance(data, dict):
        return _fail(f"response is JSON {type(data).__name__}, not an object", status)
    return CallerInput.webhook_result(True, status=status, data=data)


def _json_or_empty(content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _fail(error: str, status: int | None = None, data: dict[str, Any] | None = None
          ) -> CallerInput:
    return CallerInput.webhook_result(False, status=status, data=data, error=error)
