"""What access control and personal-data masking cost.

1. Masking one call event at emit (``Redactor.json``) beside serializing it alone
   (``event_payload``), over the events of a typical call.
2. One JSON log line with and without the masking processor.
3. A request through a real server: an open route (no credentials, the baseline) beside the
   same server answering ``/v1/auth/me`` for an API token and for a session cookie.

    python -m bench.auth_pii [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import structlog

from app.pii import Redactor, mask_log_event
from app.record import (
    CallStarted,
    DtmfPressed,
    FlowStep,
    IntentDetected,
    Listening,
    PromptPlayed,
    TranscriptHeard,
    event_payload,
)

EVENTS = [
    CallStarted(hotline_number="4008001234", caller_number="+8613800138000", channel="webrtc",
                locale="zh", flow_id="demo_hotline"),
    PromptPlayed(text="您好，欢迎致电，查询订单请按1，人工服务请按0。", locale="zh"),
    Listening(timeout_s=6.0),
    DtmfPressed(digit="1"),
    FlowStep(flow="demo_hotline", node="main_menu", input="dtmf:1", decision="option",
             target="order_lookup"),
    TranscriptHeard(text="我想查一下订单 四五六七", is_final=True, confidence=0.91),
    IntentDetected(intent="order_status", confidence=0.93),
    PromptPlayed(text="I heard 4 5 6 7, is that right? Press 1 for yes, 2 for no.",
                 locale="en"),
    TranscriptHeard(text="my card is 4539 1488 0343 6467", is_final=True, confidence=0.8),
]


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def bench_events(repeat: int) -> None:
    redactor = Redactor(secrets={"4567"})

    def serialize() -> None:
        for event in EVENTS:
            event_payload(event)

    def serialize_and_mask() -> None:
        for event in EVENTS:
            redactor.json(event_payload(event))

    base = per_call_us(serialize, repeat) / len(EVENTS)
    masked = per_call_us(serialize_and_mask, repeat) / len(EVENTS)
    print(f"event serialize (baseline): {base:7.1f} us/event")
    print(f"event serialize + mask     : {masked:7.1f} us/event  (+{masked - base:.1f} us)")


def bench_logs(repeat: int) -> None:
    def logger(processors: list[object]) -> object:
        structlog.configure(processors=[*processors, structlog.processors.JSONRenderer()],
                            logger_factory=structlog.PrintLoggerFactory(io.StringIO()),
                            cache_logger_on_first_use=True)
        return structlog.get_logger().bind(call_id="c1")

    plain = logger([])
    masking = logger([mask_log_event])
    base = per_call_us(lambda: plain.info("turn", text="order 4567", ms=512.3),  # type: ignore[attr-defined]
                       repeat)
    masked = per_call_us(lambda: masking.info("turn", text="order 4567", ms=512.3),  # type: ignore[attr-defined]
                         repeat)
    structlog.reset_defaults()
    print(f"log line (baseline)        : {base:7.1f} us/line")
    print(f"log line + masking         : {masked:7.1f} us/line  (+{masked - base:.1f} us)")


async def bench_requests(n: int) -> None:
    from app.sim.cli import serve_in_process
    from tests.helpers.auth import ADMIN, sign_in_as_each_role, token_for_each_role
    from tests.helpers.live import live_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = live_settings(Path(tmp), asr_models={}, public_rate="100000/minute",
                                 intent_model_dir=Path(tmp) / "none")
        async with serve_in_process(settings) as served, \
                httpx.AsyncClient(timeout=30) as client:
            url = served.url
            from app.auth import Role

            sessions = await sign_in_as_each_role(client, url)
            tokens = await token_for_each_role(client, url)
            cases = {
                "open route, no credentials (baseline)": (f"{url}/v1/hotlines", {}, None),
                "/v1/auth/me, bootstrap token": (f"{url}/v1/auth/me", ADMIN, None),
                "/v1/auth/me, API token": (f"{url}/v1/auth/me", {
                    "Authorization": f"Bearer {tokens[Role.SUPERVISOR]}"}, None),
                "/v1/auth/me, session cookie": (f"{url}/v1/auth/me", {},
                                                sessions[Role.SUPERVISOR].cookies),
            }
            for name, (target, headers, cookies) in cases.items():
                times: list[float] = []
                for _ in range(n):
                    client.cookies.clear()
                    start = time.perf_counter()
                    response = await client.get(target, headers=headers, cookies=cookies)
                    times.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, response.text
                times.sort()
                print(f"{name:<40} p50 {statistics.median(times):6.2f} ms  "
                      f"p95 {times[int(0.95 * (n - 1))]:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per case (<= 5000)")
    args = parser.parse_args()
    bench_events(2000)
    bench_logs(5000)
    asyncio.run(bench_requests(min(args.requests, 5000)))


if __name__ == "__main__":
    main()
