"""The flow engine: pure and synchronous, no I/O; time comes in with the context and input.

``start(flow_id, ctx)`` and ``step(state, input)`` return a ``Step(state, actions, events)``.
The engine never raises in the middle of a call: an internal problem becomes a transfer to
a human with reason ``flow_error`` (and the apology prompt).
"""

from __future__ import annotations

from typing import Any, Protocol

from app.flows.conditions import holds
from app.flows.defaults import default_text
from app.flows.match import caller_region, render
from app.flows.nodes import NodeRunner
from app.flows.runtime import (
    Action,
    CallContext,
    CallerInput,
    FlowState,
    Say,
    Step,
    Transfer,
)
from app.flows.schema import Flow

__all__ = ["FlowEngine", "IntentAnswers", "evaluate_branch"]


class IntentAnswers(Protocol):
    """What the engine needs from ``app.nlu.intents.IntentCatalog``."""

    def names(self) -> set[str]: ...

    def render_answer(self, intent: str, locale: str, slots: dict[str, str]) -> str | None: ...


class FlowEngine:
    def __init__(self, flows: dict[str, Flow], catalog: IntentAnswers | None = None) -> None:
        self.flows = flows
        self.catalog = catalog

    def start(self, flow_id: str, ctx: CallContext) -> Step:
        flow = self.flows.get(flow_id)
        if flow is None:
            state = FlowState(flow_id=flow_id, call_id=ctx.call_id, locale=ctx.locale or "en",
                              node="", now=ctx.now, phase="done", outcome="transfer")
            return Step(state=state, actions=[_error_transfer("default", "unknown flow")],
                        events=[_event(state, "", "flow_error", error="unknown flow")])
        locale = ctx.locale if ctx.locale in flow.locales else flow.default_locale
        state = FlowState(
            flow_id=flow.id, call_id=ctx.call_id, caller_number=ctx.caller_number,
            hotline_number=ctx.hotline_number, locale=locale, node=flow.start, now=ctx.now,
            caller_region=caller_region(ctx.caller_number, flow.locales),
        )
        return self._guard(flow, state, None)

    def step(self, state: FlowState, inp: CallerInput) -> Step:
        flow = self.flows.get(state.flow_id)
        if flow is None:
            bad = state.model_copy(update={"phase": "done", "outcome": "transfer"})
            return Step(state=bad, actions=[_error_transfer("default", "unknown flow")],
                        events=[_event(bad, inp.summary(), "flow_error", error="unknown flow")])
        return self._guard(flow, state, inp)

    def resume_at(self, state: FlowState, node: str) -> Step:
        """Go on at ``node`` (an agent handed the caller back to the bot there); the slots
        and the path so far are kept. ``ValueError`` if the flow has no such node."""
        flow = self.flows.get(state.flow_id)
        if flow is None or node not in flow.nodes:
            raise ValueError(f"flow {state.flow_id!r} has no node {node!r}")
        resumed = state.model_copy(deep=True, update={"phase": "listen", "outcome": None,
                                                      "pending": None, "resume_phase": None})
        try:
            run = NodeRunner(flow, resumed, self.catalog)
            run.goto(node)
            return run.result()
        except Exception as exc:  # never an exception in the middle of a call
            return _error_step(flow, state, None, exc)

    def _guard(self, flow: Flow, state: FlowState, inp: CallerInput | None) -> Step:
        try:
            run = NodeRunner(flow, state.model_copy(deep=True), self.catalog)
            if inp is None:
                run.goto(flow.start)
            else:
                run.handle(inp)
            return run.result()
        except Exception as exc:  # never an exception in the middle of a call
            return _error_step(flow, state, inp, exc)


def _event(state: FlowState, inp: str, decision: str, **extra: Any) -> dict[str, Any]:
    return {"type": "flow_step", "flow": state.flow_id, "node": state.node, "input": inp,
            "decision": decision, "confidence": None, "at": state.now.isoformat(), **extra}


def _error_transfer(queue: str, note: str) -> Transfer:
    return Transfer(queue=queue, reason="flow_error", note=note)


def _error_step(flow: Flow, state: FlowState, inp: CallerInput | None, exc: Exception) -> Step:
    note = f"{type(exc).__name__}: {exc}"[:300]
    done = state.model_copy(deep=True, update={"phase": "done", "outcome": "transfer"})
    if inp is not None and inp.at is not None:
        done.now = inp.at
    queue = flow.globals.talk_to_agent.queue
    prompt = flow.globals.error_prompt
    part = prompt.by_locale.get(done.locale) if prompt else None
    text = part if isinstance(part, str) else default_text("error", done.locale) or ""
    actions: list[Action] = []
    if text:
        actions.append(Say(text=render(text, done.slots), locale=done.locale,
                           voice=flow.voice.get(done.locale), barge_in=False))
    skills = flow.queues[queue].skills if queue in flow.queues else []
    actions.append(Transfer(queue=queue, skills=skills, reason="flow_error", note=note))
    event = _event(done, inp.summary() if inp else "", "flow_error", error=note)
    return Step(state=done, actions=actions, events=[event])


def evaluate_branch(flow: Flow, state: FlowState, node_name: str) -> str:
    """Which target a branch node picks in this state (for tools and tests)."""
    from app.flows.schema import BranchNode

    node = flow.nodes[node_name]
    if not isinstance(node, BranchNode):
        raise ValueError(f"node {node_name!r} is not a branch")
    for case in node.cases:
        if holds(case.when, flow, state):
            return case.next
    return node.default

