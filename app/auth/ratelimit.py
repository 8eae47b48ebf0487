"""Per-client rate limits (``limits``, moving window, in this process's memory) and callers'
passes to their own call's live events.

The limits are counted in this process, or, with ``redis_url`` set, in Redis shared by every
node (``limits``' async Redis storage on ``redis.asyncio``, ``limits.aio``: a client cannot
multiply its allowance by the number of nodes; each hit is one short Redis round trip that
the event loop awaits, never blocks on). Redis down: fail open, counted
(``hotline_rate_limit_store_failures_total``), and Redis skipped for ``STORE_RETRY_S``.
Callers' passes stay in the process that issued them (a caller's events socket reaches the
node holding the call anyway).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from app.log import get_logger
from app.metrics import RATE_LIMIT_STORE_FAILURES
from app.settings import Settings

STORE_RETRY_S = 5.0  # a shared store (Redis) that failed is skipped this long


class RateLimits:
    """Named limits (``{"login": "10/minute"}``), each counted per key (a client IP)."""

    def __init__(self, rates: dict[str, str], storage_uri: str | None = None) -> None:
        """``storage_uri``: where the counts live (``redis://host:port/db``); None: here."""
        self._items: dict[str, RateLimitItem] = {}
        for name, rate in rates.items():
            try:
                self._items[name] = parse(rate)
            except ValueError as exc:
                raise ValueError(f"rate limit {name}: bad rate {rate!r} (e.g. '30/minute'): "
                                 f"{exc}") from None
        # one node: counted in memory, no I/O (the sync limiter, nothing to await); several:
        # in Redis through redis.asyncio, awaited (limits.aio), never blocking the loop
        self._local = MovingWindowRateLimiter(MemoryStorage()) if storage_uri is None else None
        self._shared = None if storage_uri is None else AsyncMovingWindowRateLimiter(
            AsyncRedisStorage(_async_uri(storage_uri), implementation="redispy",
                              socket_timeout=1.0, socket_connect_timeout=1.0))
        self._down_until = 0.0

    @classmethod
    def for_settings(cls, settings: Settings) -> RateLimits:
        """The limits the settings name: ``login``, ``public``, ``webrtc_offer``."""
        return cls({"login": settings.auth_login_rate, "public": settings.public_rate,
                    "webrtc_offer": settings.webrtc_offer_rate}, settings.redis_url)

    async def hit(self, name: str, key: str) -> float | None:
        """Count one request; None when allowed, else the seconds until it would be."""
        item = self._items[name]
        if self._local is not None:
            if self._local.hit(item, name, key):
                return None
            stats = self._local.get_window_stats(item, name, key)
            return max(1.0, stats.reset_time - time.time())
        assert self._shared is not None
        if time.monotonic() < self._down_until:
            return None  # the shared store failed a moment ago: allow, as below
        try:
            if await self._shared.hit(item, name, key):
                return None
            shared_stats = await self._shared.get_window_stats(item, name, key)
        except (RedisError, OSError) as exc:  # Redis down: fail open (calls matter more)
            self._down_until = time.monotonic() + STORE_RETRY_S
            RATE_LIMIT_STORE_FAILURES.inc()
            get_logger(component="rate_limits").error(
                "rate_limit_store_failed", error=f"{type(exc).__name__}: {exc}",
                effect=f"requests allowed unchecked for {STORE_RETRY_S} s")
            return None
        return max(1.0, shared_stats.reset_time - time.time())


def _async_uri(uri: str) -> str:
    """``redis://...`` as ``limits.aio`` names it (``async+redis://...``)."""
    return uri if uri.startswith("async+") else f"async+{uri}"


@dataclass
class CallerPasses:
    """A caller's pass to follow their own call's events (the softphone's conversation),
    issued with the WebRTC answer and valid for ``ttl_s``."""

    ttl_s: float
    _passes: dict[str, tuple[str, float]] = field(default_factory=dict)

    def issue(self, call_id: str) -> str:
        now = time.monotonic()
        for old in [k for k, (_, until) in self._passes.items() if until <= now]:
            del self._passes[old]
        value = secrets.token_urlsafe(24)
        self._passes[call_id] = (value, now + self.ttl_s)
        return value

    def valid(self, call_id: str, value: str) -> bool:
        found = self._passes.get(call_id)
        if found is None or found[1] <= time.monotonic():
            return False
        return hmac.compare_digest(found[0].encode(), value.encode("utf-8", "replace"))
