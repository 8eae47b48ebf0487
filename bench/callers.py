"""The bench's callers and its view of a server process (for ``bench.call_turns``).

``place_calls`` runs in a caller process (a ``ProcessPoolExecutor`` worker), so the callers'
WebRTC work is neither in the server's process nor in the bench's own event loop. The
``/proc`` readers sum a process and its descendants (the server's TTS/ASR worker processes).
"""

from __future__ import annotations

import asyncio
import os
import resource
from pathlib import Path
from typing import Any

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
GRACE_S = 10.0  # a slow bot is still answered: the caller hangs up when it waits this long


def place_calls(url: str, number: str, n: int, pcm: bytes, sample_rate_hz: int, codec: str,
                timeout_s: float) -> dict[str, Any]:
    """Place ``n`` concurrent calls; what each gave, and this process's CPU seconds."""
    from app.log import configure_logging

    configure_logging("ERROR", json_logs=False)
    started = resource.getrusage(resource.RUSAGE_SELF)
    calls = asyncio.run(_place(url, number, n, pcm, sample_rate_hz, codec, timeout_s))
    ended = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (ended.ru_utime - started.ru_utime) + (ended.ru_stime - started.ru_stime)
    return {"calls": calls, "cpu_s": cpu_s}


async def _place(url: str, number: str, n: int, pcm: bytes, sample_rate_hz: int, codec: str,
                 timeout_s: float) -> list[dict[str, Any]]:
    from app.media.audio import Pcm
    from app.sim.caller import place_call

    audio = Pcm(pcm, sample_rate_hz)
    results = await asyncio.gather(
        *(place_call(url, audio, hotline_number=number, codec=codec, record=False,
                     grace_s=GRACE_S, timeout_s=timeout_s) for _ in range(n)),
        return_exceptions=True,
    )
    out: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, BaseException):
            out.append({"error": f"{type(result).__name__}: {result}"[:300]})
            continue
        turns = [e for e in result.events if e.get("type") == "turn_latency"]
        ended = [e for e in result.events if e.get("type") == "call_ended"]
        heard = [e for e in result.events if e.get("type") == "transcript" and e.get("is_final")]
        out.append({
            "ended_by": result.ended_by, "setup_ms": 1000 * result.setup_s,
            "outcome": str(ended[-1].get("outcome")) if ended else "-", "heard": len(heard),
            "duration_s": result.duration_s,
            "turn_ms": [float(e["ms"]) for e in turns],
            "after_endpoint_ms": [float(e["after_endpoint_ms"]) for e in turns],
        })
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant that is alive now."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (fields 14 and 15 of /proc/PID/stat), in seconds."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS_PER_S


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the processes (/proc/PID/statm), in MB."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            continue
    return total * PAGE_BYTES / 1e6
