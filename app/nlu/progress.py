"""Training progress another thread can read: what the inbox's retraining shows.

``TrainingProgress`` implements ``app.nlu.train.Progress`` (the training calls ``start`` at
each phase: embedding the examples, training each locale's heads epoch by epoch; the gate
adds evaluating) and answers ``snapshot()`` from any thread: the phase, its step out of its
total (epochs of the heads, examples embedded, models evaluated), and an overall percent
(phases done plus the current one's share, out of the phases expected; 100 only when
``finish`` is called).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class PhaseDone:
    phase: str
    total: int


@dataclass
class _State:
    phases: int = 1
    phase_index: int = 0  # 1-based once started
    phase: str = ""
    step: int = 0
    total: int = 0
    finished: bool = False
    done: list[PhaseDone] = field(default_factory=list)


class TrainingProgress:
    def __init__(self, phases: int = 1) -> None:
        self._lock = threading.Lock()
        self._state = _State(phases=max(1, phases))

    def expect(self, phases: int) -> None:
        """How many phases the whole run has (for the overall percent)."""
        with self._lock:
            self._state.phases = max(1, phases, self._state.phase_index)

    def start(self, description: str, total: int) -> None:
        with self._lock:
            s = self._state
            if s.phase:
                s.done.append(PhaseDone(s.phase, s.total))
            s.phase_index += 1
            s.phases = max(s.phases, s.phase_index)
            s.phase, s.step, s.total = description, 0, max(0, total)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            s = self._state
            s.step = min(s.total, s.step + n) if s.total else s.step + n

    def finish(self) -> None:
        with self._lock:
            s = self._state
            if s.phase:
                s.done.append(PhaseDone(s.phase, s.total))
            s.step, s.finished = s.total, True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            s = self._state
            share = s.step / s.total if s.total else 0.0
            done = max(0, s.phase_index - 1) + share
            percent = 100.0 if s.finished else min(99.0, 100.0 * done / s.phases)
            return {"phase": s.phase, "phase_index": s.phase_index, "phases": s.phases,
                    "step": s.step, "total": s.total, "percent": round(percent, 1),
                    "finished": s.finished, "done": [asdict(d) for d in s.done]}
