"""Rate limits for chat: token buckets, one per chat session and one per client IP.

A bucket holds ``burst`` tokens and refills at ``per_minute / 60`` tokens a second; a message
(or a new session) takes one. ``take`` answers 0.0 when allowed, else the seconds until one
token is back (the client is told, and the message is dropped and counted).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    per_minute: float
    burst: float
    tokens: float = -1.0
    updated_s: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs per_minute > 0 and burst >= 1, got "
                             f"{self.per_minute}/min, burst {self.burst}")
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now_s: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds to wait for one."""
        now_s = time.monotonic() if now_s is None else now_s
        rate_per_s = self.per_minute / 60.0
        self.tokens = min(self.burst, self.tokens + (now_s - self.updated_s) * rate_per_s)
        self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate_per_s


class KeyedLimiter:
    """One bucket per key (a client IP), the least recently used dropped beyond ``max_keys``
    (a dropped key starts again with a full bucket: memory stays bounded)."""

    def __init__(self, per_minute: float, burst: float, max_keys: int = 10_000) -> None:
        TokenBucket(per_minute, burst)  # validates
        self.per_minute = per_minute
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now_s: float | None = None) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.per_minute, self.burst)
            if now_s is not None:
                bucket.updated_s = now_s
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now_s)

    def __len__(self) -> int:
        return len(self._buckets)
