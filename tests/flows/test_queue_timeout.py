"""Nobody answers a transfer in time: the flow's offer, or an apology and the end."""

from __future__ import annotations

from pathlib import Path

from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.flows.runtime import CallContext, CallerInput

ROOT = Path(__file__).resolve().parents[2]


def test_demo_flow_offers_callback_or_voicemail_when_the_queue_times_out() -> None:
    flows = load_flows([ROOT / "ivr_flows" / "demo_hotline.yaml"])
    engine = FlowEngine(flows)
    step = engine.start("demo_hotline", CallContext(call_id="q1", locale="en"))
    step = engine.step(step.state, CallerInput.dtmf("0"))  # agent at once
    assert step.transfer is not None and step.state.done
    step = engine.step(step.state, CallerInput(kind="queue_timeout"))
    assert not step.state.done
    assert step.state.node == "closed_menu"
    assert "callback" in step.text.lower() and step.listen is not None


def test_without_an_offer_the_caller_hears_an_apology_and_the_call_ends(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(
        "id: f\nlocales: [en]\ndefault_locale: en\nstart: t\nqueues: {general: {}}\n"
        "globals: {talk_to_agent: {queue: general}}\n"
        "nodes:\n  t: {kind: transfer, queue: general, reason: test}\n",
        encoding="utf-8",
    )
    engine = FlowEngine(load_flows([flow]))
    step = engine.start("f", CallContext(call_id="q2"))
    assert step.transfer is not None
    step = engine.step(step.state, CallerInput(kind="queue_timeout"))
    assert step.hangup is not None and step.hangup.outcome == "no_agent"
    assert "busy" in step.text


def test_a_queue_timeout_target_that_does_not_exist_is_rejected(tmp_path: Path) -> None:
    flow = tmp_path / "g.yaml"
    flow.write_text(
        "id: g\nlocales: [en]\ndefault_locale: en\nstart: t\nqueues: {general: {}}\n"
        "globals: {talk_to_agent: {queue: general}, queue_timeout: nowhere}\n"
        "nodes:\n  t: {kind: transfer, queue: general, reason: test}\n",
        encoding="utf-8",
    )
    from app.flows.loader import check_file

    _, errors = check_file(flow)
    assert any("queue_timeout goes to missing node 'nowhere'" in str(e) for e in errors)
    assert any(e.line == 6 for e in errors)
