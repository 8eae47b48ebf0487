"""Posting a WebRTC offer to one of several Hotline nodes (``hotline call``, tests, benches).

A node that is full or draining answers 503 with ``Retry-After``; a node that is gone does
not answer. ``post_offer`` then tries the next node of the list; when every node refused, it
waits the shortest ``Retry-After`` (at most ``retry_wait_max_s``) and goes round again, at
most ``rounds`` times. Any other refusal (400, 404, 429 ...) is final: another node would
answer the same. The node that answers owns the call: its media, and its events socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx

RETRY_AFTER_DEFAULT_S = 5.0


class OfferRefused(RuntimeError):
    """No node took the offer; the message says who answered what."""


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", RETRY_AFTER_DEFAULT_S)))
    except ValueError:  # an HTTP date: not sent by Hotline; use the default
        return RETRY_AFTER_DEFAULT_S


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        return response.text[:200]


async def post_offer(bases: Sequence[str], body: dict[str, Any], *, rounds: int = 3,
                     retry_wait_max_s: float = 10.0, timeout_s: float = 30.0,
                     note: Callable[[str], None] | None = None
                     ) -> tuple[dict[str, Any], str]:
    """POST ``body`` to ``{base}/v1/webrtc/offer`` node after node; returns (the answer,
    the base URL of the node that took the call). Raises ``OfferRefused``."""
    if not bases:
        raise ValueError("no server to call")
    say = note or (lambda _text: None)
    refusals: list[str] = []
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        for round_no in range(1, rounds + 1):
            waits: list[float] = []
            for base in bases:
                try:
                    response = await client.post(f"{base}/v1/webrtc/offer", json=body)
                except httpx.TransportError as exc:  # the node is gone: the next one
                    refusals.append(f"{base}: no answer ({type(exc).__name__})")
                    say(f"{base} does not answer; trying the next node")
                    continue
                if response.status_code == 200:
                    answer: dict[str, Any] = response.json()
                    return answer, base
                refusals.append(f"{base}: {response.status_code} {_detail(response)}")
                if response.status_code != 503:
                    raise OfferRefused(f"server refused the call ({response.status_code}): "
                                       f"{_detail(response)}")
                waits.append(_retry_after_s(response))
                say(f"{base} is full or draining (503); trying the next node")
            if round_no < rounds:
                wait_s = min([retry_wait_max_s, *waits])
                say(f"no node took the call; trying again in {wait_s:.0f} s")
                await asyncio.sleep(wait_s)
    raise OfferRefused("no node took the call: " + "; ".join(refusals[-len(bases):]))
