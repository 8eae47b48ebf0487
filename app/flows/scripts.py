"""Conversation scripts (``ivr_flows/tests/*.yaml``) and their runner (`hotline flows test`).

A script::

    name: keypad caller checks an order
    flow: demo_hotline
    at: 2026-11-26T10:00:00+08:00        # the call's time (business calendar)
    caller: "+8613800138000"
    start: {node: language, say: [欢迎]}   # expectations for the greeting step
    webhooks: [{status: 500}]              # optional canned answers, in order
    turns:
      - dtmf: "1"
        expect: {node: main_menu}
      - say: 我想查订单                    # speech; intent/confidence make it deterministic,
        intent: order_status               # without them the real NLU is used when present
        expect: {node: order_number, say: [订单号]}
      - silence: true
    outcome: {transfer: orders, reason: order_help}    # or {hangup: self_service}
    channels: [voice]                      # optional; default: voice and chat

A script runs on the voice channel here (the engine stepped directly, as a phone call's
inputs reach it) and on the chat channel in ``app.chat.scripts`` (a real chat session: its
messages, buttons and record). ``channels: [voice]`` marks a script that only makes sense on
the phone (a key that is not a button in chat, such as ``*`` to repeat).

Webhooks without a canned answer go to the demo order service, run in-process through
``httpx.ASGITransport`` (the real ``run_webhook`` and the real service code, no port).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.events import IntentResult, Sentiment
from app.flows.engine import FlowEngine
from app.flows.runtime import CallContext, CallerInput, Step
from app.flows.webhook import run_webhook

Channel = Literal["voice", "chat"]
CHANNELS: tuple[Channel, ...] = ("voice", "chat")
Understand = Callable[[str, str], CallerInput]
"""(text, locale) -> a speech input with intent, entities and sentiment (the real NLU)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _text(value: Any) -> Any:
    """YAML 1.1 reads ``yes``/``no`` as booleans and dates as dates: scripts mean text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | date):
        return str(value)
    return value


class Expect(_Strict):
    node: str | None = None
    phase: str | None = None
    say: list[str] = Field(default_factory=list)
    not_say: list[str] = Field(default_factory=list)
    slots: dict[str, str] = Field(default_factory=dict)
    locale: str | None = None
    grammar: list[str] | None = None
    transfer: str | None = None
    reason: str | None = None
    hangup: str | None = None
    path: list[str] = Field(default_factory=list, description="nodes entered, in order")

    @model_validator(mode="before")
    @classmethod
    def _say_list(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            raw = dict(raw)
            for key in ("say", "not_say"):
                if key in raw and not isinstance(raw[key], list):
                    raw[key] = [raw[key]]
                if isinstance(raw.get(key), list):
                    raw[key] = [_text(v) for v in raw[key]]
            if isinstance(raw.get("slots"), dict):
                raw["slots"] = {k: _text(v) for k, v in raw["slots"].items()}
        return raw


class Turn(_Strict):
    dtmf: str | None = None
    say: str | None = None
    silence: bool = False
    intent: str | None = None
    confidence: float = 0.9
    locale: str | None = None
    sentiment: float | None = Field(default=None, ge=-1, le=1)
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="before")
    @classmethod
    def _texts(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            raw = {k: (_text(v) if k in ("say", "dtmf") else v) for k, v in raw.items()}
        return raw

    @model_validator(mode="after")
    def _one_input(self) -> Turn:
        given = [self.dtmf is not None, self.say is not None, self.silence]
        if sum(given) != 1:
            raise ValueError("a turn is exactly one of dtmf, say, silence")
        return self


class CannedWebhook(_Strict):
    status: int | None = 200
    data: dict[str, Any] = Field(default_factory=dict)
    error: str = ""


class Outcome(_Strict):
    transfer: str | None = None
    reason: str | None = None
    hangup: str | None = None


class Script(_Strict):
    name: str
    flow: str
    at: datetime
    caller: str = ""
    hotline: str = ""
    locale: str | None = None
    start: Expect = Field(default_factory=Expect)
    webhooks: list[CannedWebhook] = Field(default_factory=list)
    turns: list[Turn] = Field(default_factory=list)
    outcome: Outcome | None = None
    channels: list[Channel] = Field(default_factory=lambda: list(CHANNELS), min_length=1,
                                    description="where the script runs (voice, chat)")


class ScriptResult(BaseModel):
    file: str
    name: str
    ok: bool
    channel: Channel = "voice"
    skipped: str = Field(default="", description="why the script did not run on the channel")
    failures: list[str] = Field(default_factory=list)
    transcript: list[str] = Field(default_factory=list)


def load_script(file: Path) -> Script:
    """Raises ``ValueError`` naming the file and the problem."""
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        return Script.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{file}: bad script: {exc}") from exc


def script_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def scripted_speech(turn: Turn, locale: str, understand: Understand | None) -> CallerInput:
    """A speech turn as the engine's input: the script's intent when it gives one (so the
    script does not depend on the classifier), else the real NLU (``understand``)."""
    text = turn.say or ""
    loc = turn.locale or locale
    if turn.intent is None and understand is not None:
        inp = understand(text, loc)
    else:
        intent = IntentResult(text=text, locale=loc, intent=turn.intent,
                              confidence=turn.confidence if turn.intent else 0.0,
                              reason="ok" if turn.intent else "low_confidence")
        inp = CallerInput.speech(text, intent=intent)
    if turn.sentiment is not None:
        label: Literal["negative", "neutral", "positive"] = (
            "negative" if turn.sentiment < -0.3 else
            "positive" if turn.sentiment > 0.3 else "neutral")
        inp = inp.model_copy(update={"sentiment": Sentiment(score=turn.sentiment, label=label)})
    return inp


def check_step(expect: Expect, step: Step, entered: list[str], where: str) -> list[str]:
    """What ``step`` (and the nodes it ``entered``) got wrong against ``expect``."""
    st = step.state
    text = step.text
    fails: list[str] = []
    if expect.node is not None and st.node != expect.node:
        fails.append(f"{where}: expected node {expect.node!r}, got {st.node!r}")
    if expect.phase is not None and st.phase != expect.phase:
        fails.append(f"{where}: expected phase {expect.phase!r}, got {st.phase!r}")
    fails += [f"{where}: expected the bot to say {s!r}; it said {text!r}"
              for s in expect.say if s not in text]
    fails += [f"{where}: the bot said {s!r} but should not have" for s in expect.not_say
              if s in text]
    fails += [f"{where}: slot {k}={st.slots.get(k)!r}, expected {v!r}"
              for k, v in expect.slots.items() if st.slots.get(k) != v]
    if expect.locale is not None and st.locale != expect.locale:
        fails.append(f"{where}: expected locale {expect.locale!r}, got {st.locale!r}")
    listen = step.listen
    if expect.grammar is not None and (listen is None or listen.grammar != expect.grammar):
        fails.append(f"{where}: expected grammar {expect.grammar}, got "
                     f"{listen.grammar if listen else None}")
    fails += check_end(Outcome(transfer=expect.transfer, reason=expect.reason,
                                hangup=expect.hangup), step, where)
    if expect.path and entered[: len(expect.path)] != expect.path:
        fails.append(f"{where}: expected path {expect.path}, got {entered}")
    return fails


def check_end(outcome: Outcome, step: Step, where: str) -> list[str]:
    fails: list[str] = []
    tr, hu = step.transfer, step.hangup
    if outcome.transfer is not None and (tr is None or tr.queue != outcome.transfer):
        fails.append(f"{where}: expected transfer to {outcome.transfer!r}, got "
                     f"{tr.queue if tr else 'no transfer'}")
    if outcome.reason is not None and (tr is None or tr.reason != outcome.reason):
        fails.append(f"{where}: expected transfer reason {outcome.reason!r}, got "
                     f"{tr.reason if tr else 'no transfer'}")
    if outcome.hangup is not None and (hu is None or hu.outcome != outcome.hangup):
        fails.append(f"{where}: expected hangup {outcome.hangup!r}, got "
                     f"{hu.outcome if hu else 'no hangup'}")
    return fails


class _Session:
    """One scripted call: steps the engine, answers webhooks, keeps a transcript."""

    def __init__(self, script: Script, engine: FlowEngine, client: httpx.AsyncClient) -> None:
        self.script, self.engine, self.client = script, engine, client
        self.canned = list(script.webhooks)
        self.transcript: list[str] = []

    async def settle(self, step: Step) -> Step:
        """Answer webhooks until the engine waits for the caller or ends."""
        merged = step
        for _ in range(10):
            hook = merged.webhook if merged.state.phase == "webhook" else None
            if hook is None:
                break
            if self.canned:
                c = self.canned.pop(0)
                ok = not c.error and c.status is not None and 200 <= c.status < 300
                result = CallerInput.webhook_result(ok, c.status, c.data, c.error)
            else:
                result = await run_webhook(hook, self.client)
            self.transcript.append(f"  [webhook {hook.url} -> {result.summary()}]")
            nxt = self.engine.step(merged.state, result.model_copy(update={"at": merged.state.now}))
            merged = Step(state=nxt.state, actions=[*merged.actions, *nxt.actions],
                          events=[*merged.events, *nxt.events])
        for a in merged.says:
            self.transcript.append(f"  bot: {a.text}")
        return merged


async def run_script(
    script: Script, engine: FlowEngine, file: str = "", understand: Understand | None = None,
    client: httpx.AsyncClient | None = None,
) -> ScriptResult:
    own = client is None
    if client is None:
        from app.demo.orders import create_demo_app

        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_demo_app()),
                                   base_url="http://demo")
    try:
        return await _run(script, engine, file, understand, client)
    finally:
        if own:
            await client.aclose()


async def _run(script: Script, engine: FlowEngine, file: str, understand: Understand | None,
               client: httpx.AsyncClient) -> ScriptResult:
    session = _Session(script, engine, client)
    if "voice" not in script.channels:
        return ScriptResult(file=file, name=script.name, ok=True,
                            skipped=f"channels: {', '.join(script.channels)}")
    if script.flow not in engine.flows:
        return ScriptResult(file=file, name=script.name, ok=False,
                            failures=[f"unknown flow {script.flow!r}"])
    ctx = CallContext(call_id=f"script:{script.name}", caller_number=script.caller,
                      hotline_number=script.hotline, locale=script.locale, now=script.at)
    step = await session.settle(engine.start(script.flow, ctx))
    fails = check_step(script.start, step, entered_nodes(step), "start")
    for i, turn in enumerate(script.turns, 1):
        if step.state.done:
            fails.append(f"turn {i}: the call already ended ({step.state.outcome})")
            break
        at = step.state.now + timedelta(seconds=5)
        if turn.dtmf is not None:
            inp = CallerInput.dtmf(turn.dtmf)
            session.transcript.append(f"caller: #{turn.dtmf}")
        elif turn.silence:
            inp = CallerInput.no_input()
            session.transcript.append("caller: (silence)")
        else:
            inp = scripted_speech(turn, step.state.locale, understand)
            got = inp.intent.intent if inp.intent else None
            session.transcript.append(f"caller: {turn.say}  [{got}]")
        step = await session.settle(engine.step(step.state, inp.model_copy(update={"at": at})))
        fails += check_step(turn.expect, step, entered_nodes(step), f"turn {i}")
    if script.outcome is not None:
        fails += check_end(script.outcome, step, "outcome")
        if not step.state.done:
            fails.append(f"outcome: the call had not ended (at node {step.state.node!r})")
    return ScriptResult(file=file, name=script.name, ok=not fails, failures=fails,
                        transcript=session.transcript)


def entered_nodes(step: Step) -> list[str]:
    return [e["node"] for e in step.events if e.get("decision") == "enter"]
