"""`hotline flows chat`: a text conversation with a flow in the terminal.

Type what a caller would say, ``#1`` (or ``#4567#``) for keypad presses, ``.`` for silence,
``:q`` to quit. Relative webhook URLs go to the in-process demo order service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from app.events import IntentResult, utc_now
from app.flows.engine import FlowEngine, IntentAnswers
from app.flows.runtime import CallContext, CallerInput, Step, Transfer
from app.flows.schema import Flow
from app.flows.scripts import Understand
from app.flows.webhook import run_webhook

DEMO_BASE = "http://demo"


def parse_line(line: str, locale: str, understand: Understand | None) -> CallerInput | None:
    text = line.strip()
    if text in (".", ""):
        return CallerInput.no_input()
    if text.startswith("#") and len(text) > 1:
        return CallerInput.dtmf(text[1:])
    if text == ":q":
        return None
    if understand is not None:
        return understand(text, locale)
    return CallerInput.speech(text, intent=IntentResult(
        text=text, locale=locale, intent=None, confidence=0.0, reason="model_unavailable"))


async def _webhook(step: Step) -> CallerInput:
    from app.demo.orders import create_demo_app

    hook = step.webhook
    assert hook is not None
    demo = httpx.ASGITransport(app=create_demo_app())
    async with httpx.AsyncClient(base_url=DEMO_BASE, mounts={DEMO_BASE: demo}) as client:
        return await run_webhook(hook, client)


def _show(step: Step, out: Callable[[str], None]) -> None:
    for e in step.events:
        conf = f" ({e['confidence']:.2f})" if e.get("confidence") is not None else ""
        out(f"    · {e['node']}: {e['decision']}{conf}")
    for a in step.actions:
        if a.type == "say":
            out(f"bot> {a.text}" + (f"  [wav {a.wav}]" if a.wav else ""))
        elif a.type == "listen":
            grammar = f" grammar={a.grammar}" if a.grammar else ""
            out(f"    (listening {a.locale}, {a.timeout_s:g}s{grammar})")
        elif isinstance(a, Transfer):
            out(f"    => TRANSFER to {a.queue} ({a.reason}) note: {a.note}")
        else:
            out(f"    => {a.model_dump(exclude={'type'})} [{a.type}]")


def run_chat(
    flow: Flow, catalog: IntentAnswers | None, understand: Understand | None,
    locale: str | None, caller: str, at: datetime | None,
    read: Callable[[str], str] = input, out: Callable[[str], None] = print,
) -> Step:
    engine = FlowEngine({flow.id: flow}, catalog)
    now = at or utc_now()
    step = engine.start(flow.id, CallContext(call_id="chat", caller_number=caller,
                                             locale=locale, now=now))
    while True:
        _show(step, out)
        while step.state.phase == "webhook":
            result = asyncio.run(_webhook(step))
            step = engine.step(step.state, result.model_copy(update={"at": step.state.now}))
            _show(step, out)
        if step.state.done:
            out(f"-- call ended: {step.state.outcome}; path: {' > '.join(step.state.path)}")
            return step
        try:
            line = read("you> ")
        except EOFError:
            line = ":q"
        inp = parse_line(line, step.state.locale, understand)
        if inp is None:
            out(f"-- quit; path: {' > '.join(step.state.path)}")
            return step
        if inp.intent is not None:
            out(f"    intent: {inp.intent.intent} ({inp.intent.confidence:.2f}, "
                f"{inp.intent.reason})")
        now = step.state.now + timedelta(seconds=5)
        step = engine.step(step.state, inp.model_copy(update={"at": now}))
