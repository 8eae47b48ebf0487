"""Keypad collection for one listen: single keys, or several ended by a terminator/timeout.

Pure and synchronous (the session feeds it presses and asks when its deadline is), so the
rules are testable as values: a listen for ``max_digits`` keys delivers at that many, at the
``terminator`` (which is not part of the digits), or ``inter_digit_timeout_s`` after the last
key; a terminator alone delivers nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INTER_DIGIT_TIMEOUT_S = 3.0


@dataclass
class KeypadCollector:
    max_digits: int = 1
    terminator: str | None = None
    inter_digit_timeout_s: float = INTER_DIGIT_TIMEOUT_S
    digits: str = field(default="", init=False)
    last_key_at: float | None = field(default=None, init=False)

    def press(self, digit: str, now: float) -> str | None:
        """Add a key pressed at ``now``; the collected digits when complete, else None."""
        if digit == self.terminator:
            return self._deliver() if self.digits else None
        self.digits += digit
        self.last_key_at = now
        if len(self.digits) >= max(1, self.max_digits):
            return self._deliver()
        return None

    def deadline(self) -> float | None:
        """When the digits so far are delivered without more keys (None: no keys yet)."""
        if self.last_key_at is None:
            return None
        return self.last_key_at + self.inter_digit_timeout_s

    def expire(self) -> str | None:
        """The deadline passed: whatever was collected (None when nothing was)."""
        return self._deliver() if self.digits else None

    def _deliver(self) -> str:
        digits, self.digits, self.last_key_at = self.digits, "", None
        return digits
