"""One engine step over a copy of the state: enter nodes, handle caller input, global handlers.

``NodeRunner`` is created per ``start``/``step`` call, mutates its own copy of the state and
collects actions and events; ``FlowEngine`` wraps it so nothing escapes as an exception.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from app.flows.conditions import holds
from app.flows.defaults import default_text
from app.flows.match import (
    date_value,
    entity_value,
    normalize,
    phone_value,
    render,
    spaced,
    spoken_digits,
    yes_no,
)
from app.flows.readings import read_as, slot_readings
from app.flows.runtime import (
    Action,
    CallerInput,
    FlowState,
    Hangup,
    Listen,
    Pending,
    Say,
    SetLocale,
    Step,
    Transfer,
    Webhook,
)
from app.flows.schema import (
    AnswerNode,
    BranchNode,
    CallbackNode,
    CollectNode,
    Flow,
    HangupNode,
    MenuNode,
    Node,
    Option,
    Prompt,
    SayNode,
    TransferNode,
    VoicemailNode,
    WebhookNode,
)
from app.pii import SENSITIVE

if TYPE_CHECKING:
    from app.flows.engine import IntentAnswers

MAX_HOPS = 64
GLOBAL_INTENTS = {"talk_to_agent", "goodbye"}


class FlowLoopError(RuntimeError):
    pass


class NodeRunner:
    def __init__(self, flow: Flow, state: FlowState, catalog: IntentAnswers | None) -> None:
        self.flow = flow
        self.state = state
        self.catalog = catalog
        self.actions: list[Action] = []
        self.events: list[dict[str, Any]] = []
        self._said: list[Say] = []
        self._readings = slot_readings(flow)
        self.secrets: list[str] = []

    # -- output ---------------------------------------------------------------------------

    def result(self) -> Step:
        st = self.state
        sensitive = self._sensitive() and st.phase in ("listen", "confirm")
        return Step(state=st, actions=self.actions, events=self.events, sensitive=sensitive,
                    secrets=self.secrets)

    def _sensitive(self) -> bool:
        node = self.flow.nodes.get(self.state.node)
        return isinstance(node, CollectNode) and node.sensitive

    def event(self, decision: str, inp: CallerInput | None = None, **extra: Any) -> None:
        conf = self.state.last_confidence if inp is not None and inp.kind == "speech" else None
        summary = inp.summary() if inp else ""
        if self._sensitive() and inp is not None and inp.kind in ("speech", "dtmf"):
            summary = f"{inp.kind}:{SENSITIVE}"
            extra = {k: SENSITIVE if k == "value" else v for k, v in extra.items()}
        self.events.append({
            "type": "flow_step", "flow": self.flow.id, "node": self.state.node,
            "input": summary, "decision": decision, "confidence": conf,
            "at": self.state.now.isoformat(), **extra,
        })

    def slots(self, **extra: str) -> dict[str, str]:
        region = self.state.caller_region.get(self.state.locale, "")
        st = self.state
        base = {"caller_number": st.caller_number, "region": region, "locale": st.locale,
                "last_text": st.last_text, "intent": st.last_intent or ""}
        return {**base, **self.state.slots, **extra}

    def spoken_slots(self, **extra: str) -> dict[str, str]:
        """The slots as prompts read them (``app.flows.readings``): "4567" -> "4 5 6 7"."""
        loc = self.state.locale
        return {k: read_as(v, self._readings.get(k), loc) for k, v in self.slots(**extra).items()}

    def fill(self, template: str, extra: dict[str, str] | None = None) -> tuple[str, bool]:
        """(the prompt text, whether it may be cached): text filled from the call's slots is
        caller data and never cached."""
        text = render(template, self.spoken_slots(**(extra or {})))
        return text, text == render(template, {})

    def shown(self, template: str, spoken: str, extra: dict[str, str] | None = None
              ) -> str | None:
        """The prompt as a screen shows it (slots as they are), when it differs from
        ``spoken``."""
        text = render(template, self.slots(**(extra or {})))
        return text if text != spoken else None

    def say_text(self, text: str, barge_in: bool = True, extra: dict[str, str] | None = None
                 ) -> None:
        filled, cache = self.fill(text, extra)
        self.emit_say(filled, barge_in, cache, display=self.shown(text, filled, extra))

    def emit_say(self, text: str, barge_in: bool = True, cache: bool = True,
                 wav: str | None = None, display: str | None = None) -> None:
        loc = self.state.locale
        say = Say(text=text, wav=wav, locale=loc, voice=self.flow.voice.get(loc),
                  barge_in=barge_in, cache=cache, display=display)
        self.actions.append(say)
        self._said.append(say)

    def say(self, prompt: Prompt | None, default_key: str | None = None, **extra: str) -> None:
        loc = self.state.locale
        part = prompt.by_locale.get(loc) if prompt is not None else None
        if part is None:
            if default_key is not None:
                text = default_text(default_key, loc) or default_text(default_key, "en")
                if text:
                    self.say_text(text, extra=extra)
            return
        barge = prompt.barge_in if prompt is not None else True
        if isinstance(part, str):
            self.say_text(part, barge_in=barge, extra=extra)
            return
        filled, cache = self.fill(part.text, extra)
        self.emit_say(filled, barge, cache, wav=part.wav,
                      display=self.shown(part.text, filled, extra))

    def listen(self, node: Node, grammar: list[str] | None = None, max_digits: int = 1,
               terminator: str | None = None, timeout_s: float | None = None) -> None:
        alt = node.listen_locales if isinstance(node, MenuNode) else []
        listen = Listen(
            grammar=grammar, timeout_s=timeout_s or node.timeout_s or self.flow.globals.timeout_s,
            max_digits=max_digits, terminator=terminator, locale=self.state.locale,
            alt_locales=[x for x in alt if x != self.state.locale],
            sensitive=isinstance(node, CollectNode) and node.sensitive,
        )
        self.actions.append(listen)
        self.state.last_prompts = list(self._said)
        self.state.last_listen = listen
        self._said = []

    def transfer(self, queue: str, reason: str, note: str = "",
                 prompt: Prompt | None = None, default_key: str | None = None) -> None:
        self.say(prompt, default_key)
        skills = self.flow.queues[queue].skills if queue in self.flow.queues else []
        note_text = render(note, self.slots()) if note else self._auto_note()
        self.actions.append(Transfer(queue=queue, skills=skills, reason=reason, note=note_text))
        self.event(f"transfer:{queue}", reason=reason)
        self._finish("transfer")

    def _auto_note(self) -> str:
        parts = [f"{k}={v}" for k, v in self.state.slots.items()]
        if self.state.last_intent:
            parts.insert(0, f"intent={self.state.last_intent}")
        return ", ".join(parts)

    def hangup(self, outcome: str) -> None:
        self.actions.append(Hangup(outcome=outcome))
        self.event(f"hangup:{outcome}")
        self._finish(outcome)

    def _finish(self, outcome: str) -> None:
        self.state.phase = "done"
        self.state.outcome = outcome

    def escalate(self, reason: str, queue: str | None = None) -> None:
        g = self.flow.globals
        self.transfer(queue or g.talk_to_agent.queue, reason, default_key="escalate")

    # -- walking the graph ----------------------------------------------------------------

    def goto(self, name: str, forward: CallerInput | None = None) -> None:
        for _ in range(MAX_HOPS):
            node = self.flow.nodes[name]
            st = self.state
            st.node, st.phase, st.pending, st.attempts = name, "listen", None, {}
            st.visits[name] = st.visits.get(name, 0) + 1
            st.path.append(name)
            self.event("enter", kind=node.kind)
            if forward is not None and isinstance(node, MenuNode | CollectNode):
                self.handle(forward)
                return
            target = self.enter(node)
            if target is None:
                return
            name = target
        raise FlowLoopError(f"more than {MAX_HOPS} nodes without waiting for the caller")

    def enter(self, node: Node) -> str | None:
        """Run a node; the next node to go to, or None when waiting or finished."""
        if isinstance(node, SayNode):
            self.say(node.prompt)
            return node.next
        if isinstance(node, BranchNode):
            for i, case in enumerate(node.cases):
                if holds(case.when, self.flow, self.state):
                    self.event(f"case:{i}", target=case.next)
                    return case.next
            self.event("default", target=node.default)
            return node.default
        if isinstance(node, AnswerNode):
            return self._answer(node)
        if isinstance(node, WebhookNode):
            self._webhook(node)
        elif isinstance(node, TransferNode):
            self.transfer(node.queue, node.reason, node.note, node.prompt)
        elif isinstance(node, HangupNode):
            self.say(node.prompt)
            self.hangup(node.outcome)
        else:
            self.ask(node)
        return None

    def ask(self, node: Node, reprompt: bool = False) -> None:
        """Say what the current phase asks and listen."""
        st = self.state
        prompt = (node.reprompt or node.prompt) if reprompt else node.prompt
        if isinstance(node, MenuNode):
            self.say(prompt)
            self.listen(node, grammar=self._grammar(node))
        elif isinstance(node, CollectNode):
            if st.phase == "confirm" and st.pending is not None:
                self.say(node.confirm_prompt, "confirm", value=st.pending.value,
                         value_spoken=st.pending.spoken)
                self.listen(node)
                return
            self.say(prompt)
            digits = node.type in ("digits", "phone")
            self.listen(node, max_digits=node.max_length if digits else 1,
                        terminator=node.terminator if digits else None)
        elif isinstance(node, VoicemailNode):
            st.phase = "voicemail"
            self.say(node.prompt)
            self.listen(node, max_digits=1, terminator="#", timeout_s=node.max_s)
        elif isinstance(node, CallbackNode):
            self._callback_ask(node)

    def _grammar(self, node: MenuNode) -> list[str] | None:
        if any(o.intents or o.any_intent for o in node.options):
            return None
        locs = [self.state.locale, *node.listen_locales]
        phrases = [p for o in node.options for loc in locs for p in o.phrases.get(loc, [])]
        return list(dict.fromkeys(phrases)) or None

    def _answer(self, node: AnswerNode) -> str | None:
        intent = node.intent or self.state.last_intent
        text = shown = None
        cache = True
        if intent and self.catalog is not None:
            loc = self.state.locale
            text = self.catalog.render_answer(intent, loc, self.spoken_slots())
            cache = text == self.catalog.render_answer(intent, loc, {})
            shown = self.catalog.render_answer(intent, loc, self.slots())
        if text:
            self.emit_say(text, cache=cache, display=shown if shown != text else None)
            self.event("answered", intent=intent)
            return node.next
        self.event("no_answer", intent=intent)
        if node.fallback:
            return node.fallback
        self.escalate("no_answer")
        return None

    def _webhook(self, node: WebhookNode) -> None:
        self.say(node.prompt)
        slots = self.slots()
        url = re.sub(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}",
                     lambda m: _quote(slots.get(m.group(1), "")), node.url)
        body = {k: render(v, slots) for k, v in node.body.items()}
        self.actions.append(Webhook(url=url, method=node.method, body=body,
                                    timeout_s=node.timeout_s, retries=node.retries))
        self.state.phase = "webhook"
        self.event("webhook", url=url)

    # -- input ----------------------------------------------------------------------------

    def handle(self, inp: CallerInput) -> None:
        st = self.state
        if inp.at is not None:
            st.now = inp.at
        if inp.kind == "queue_timeout":
            self._queue_timeout(inp)
            return
        if st.phase == "done":
            self.event("ignored_after_end", inp)
            return
        if inp.kind == "speech":
            # a yes/no to "shall I transfer you?" or "is that right?" is not what the caller
            # wants: the request it answers stays the call's intent (the handoff note's)
            self._remember(inp, keep_intent=st.phase in ("agent_confirm", "confirm"))
        node = self.flow.nodes[st.node]
        if st.phase == "webhook":
            self._webhook_result(node, inp)
            return
        if inp.kind == "webhook_result":
            self.event("ignored_webhook_result", inp)
            return
        if st.phase == "voicemail" and isinstance(node, VoicemailNode):
            self._voicemail(node, inp)
            return
        if inp.kind == "dtmf" and self.flow.globals.repeat_key == inp.digits:
            self.event("repeat", inp)
            self._repeat()
            return
        if st.phase == "agent_confirm":
            self._agent_confirm(node, inp)
            return
        if inp.kind == "no_input":
            self.retry(node, inp, "no_input")
            return
        if isinstance(node, MenuNode) and st.phase == "listen":
            option = self._match(node, inp)
            if option is not None:
                self._choose(node, option, inp)
                return
        if self._globals(node, inp):
            return
        self._node_input(node, inp)

    def _queue_timeout(self, inp: CallerInput) -> None:
        """Nobody answered the transfer in time: the flow's offer, or an apology and goodbye."""
        node = self.flow.nodes.get(self.state.node)
        target = node.on_timeout if isinstance(node, TransferNode) else None
        target = target or self.flow.globals.queue_timeout
        self.event("queue_timeout", inp, target=target)
        self.state.outcome = None
        if target is None:
            self.say(None, "no_agent")
            self.hangup("no_agent")
            return
        self.goto(target)

    def _remember(self, inp: CallerInput, keep_intent: bool = False) -> None:
        st = self.state
        keep = keep_intent and st.last_intent is not None
        if not keep:
            st.last_text = SENSITIVE if self._sensitive() else inp.text
        if inp.intent is not None and not keep:
            st.last_intent = inp.intent.intent or st.last_intent
            st.last_confidence = inp.intent.confidence
        if inp.sentiment is not None:
            st.sentiment_score = inp.sentiment.score
            st.sentiment_label = inp.sentiment.label

    def _repeat(self) -> None:
        st = self.state
        for say in st.last_prompts:
            self.actions.append(say)
            self._said.append(say)
        if st.last_listen is not None:
            self.actions.append(st.last_listen)
            self._said = []

    def _globals(self, node: Node, inp: CallerInput) -> bool:
        g = self.flow.globals
        intent = inp.intent.intent if inp.intent is not None and inp.kind == "speech" else None
        digit_entry = isinstance(node, CollectNode) and node.type in ("digits", "phone") \
            and node.min_length <= len(inp.digits) and self.state.phase == "listen"
        if inp.kind == "dtmf" and g.agent_key == inp.digits and not digit_entry:
            self.event("agent_key", inp)
            self.transfer(g.talk_to_agent.queue, "caller_request", prompt=g.talk_to_agent.prompt,
                          default_key="agent_transfer")
            return True
        if intent == "talk_to_agent":
            self._agent_request(node, inp)
            return True
        if intent == "goodbye":
            self.event("goodbye", inp)
            self.say(g.goodbye.prompt, "goodbye")
            self.hangup("caller_goodbye")
            return True
        return False

    def _agent_request(self, node: Node, inp: CallerInput) -> None:
        agent = self.flow.globals.talk_to_agent
        st = self.state
        if agent.confirm and not st.agent_confirmed:
            st.agent_confirmed = True
            st.resume_phase = st.phase
            st.phase = "agent_confirm"
            self.event("agent_confirm", inp)
            self.say(agent.confirm_prompt, "agent_confirm")
            self.listen(node)
            return
        self.event("agent_request", inp)
        self.transfer(agent.queue, "caller_request", prompt=agent.prompt,
                      default_key="agent_transfer")

    def _agent_confirm(self, node: Node, inp: CallerInput) -> None:
        answer = yes_no(inp.text, inp.intent, inp.digits)
        agent = self.flow.globals.talk_to_agent
        if answer is False:
            self.event("agent_declined", inp)
            st = self.state
            st.phase = st.resume_phase or "listen"
            st.resume_phase = None
            self.ask(node)
            return
        self.event("agent_confirmed" if answer else "agent_unclear", inp)
        self.transfer(agent.queue, "caller_request", prompt=agent.prompt,
                      default_key="agent_transfer")

    def retry(self, node: Node, inp: CallerInput, kind: str, invalid: bool = False) -> None:
        """No input or no match: reprompt, or escalate after the configured attempts."""
        st = self.state
        st.attempts[kind] = st.attempts.get(kind, 0) + 1
        st.counters[kind] = st.counters.get(kind, 0) + 1
        handler = self.flow.globals.no_input if kind == "no_input" else self.flow.globals.no_match
        limit = handler.max_attempts
        if isinstance(node, CollectNode) and node.max_attempts is not None:
            limit = node.max_attempts
        if st.attempts[kind] >= limit:
            self.event(f"{kind}_limit", inp, attempts=st.attempts[kind])
            self._give_up(node, kind, handler.queue)
            return
        self.event(kind, inp, attempts=st.attempts[kind])
        if invalid and isinstance(node, CollectNode):
            self.say(node.invalid_prompt, "invalid")
        else:
            self.say(handler.prompt, kind)
        self.ask(node, reprompt=True)

    def _give_up(self, node: Node, kind: str, queue: str | None) -> None:
        target: str | None = None
        if isinstance(node, MenuNode):
            target = node.no_input if kind == "no_input" else node.no_match
        elif isinstance(node, CollectNode):
            target = node.on_fail
        if target is not None:
            self.goto(target)
            return
        self.escalate(kind if not isinstance(node, CollectNode) else "collect_failed", queue)

    # -- menus ----------------------------------------------------------------------------

    def _match(self, node: MenuNode, inp: CallerInput) -> Option | None:
        if inp.kind == "dtmf":
            key = inp.digits.rstrip("#")
            return next((o for o in node.options if o.dtmf is not None and o.dtmf == key), None)
        if inp.kind != "speech":
            return None
        locs = [self.state.locale, *node.listen_locales]
        best: tuple[int, Option] | None = None
        text = normalize(inp.text)
        for o in node.options:
            for loc in locs:
                for p in o.phrases.get(loc, []):
                    n = normalize(p)
                    if n and n in text and (best is None or len(n) > best[0]):
                        best = (len(n), o)
        if best is not None:
            return best[1]
        intent = inp.intent.intent if inp.intent is not None else None
        if intent is None:
            return None
        found = next((o for o in node.options if intent in o.intents), None)
        if found is None and intent not in GLOBAL_INTENTS:
            found = next((o for o in node.options if o.any_intent), None)
        return found

    def _choose(self, node: MenuNode, option: Option, inp: CallerInput) -> None:
        self.event("option", inp, target=option.next)
        self.state.slots.update(option.set)
        new_locale = option.set_locale
        if option.any_intent and inp.intent is not None and inp.intent.locale:
            base = inp.intent.locale.split("-")[0].split("_")[0]
            if base in self.flow.locales:
                new_locale = new_locale or base
        if new_locale and new_locale != self.state.locale:
            self.state.locale = new_locale
            self.actions.append(SetLocale(locale=new_locale))
        forward = inp if option.any_intent and inp.kind == "speech" else None
        self.goto(option.next, forward)

    # -- node-specific input ---------------------------------------------------------------

    def _node_input(self, node: Node, inp: CallerInput) -> None:
        st = self.state
        if isinstance(node, CollectNode):
            if st.phase == "confirm":
                self._collect_confirm(node, inp)
            else:
                self._collect(node, inp)
        elif isinstance(node, CallbackNode):
            self._callback_input(node, inp)
        else:
            self.retry(node, inp, "no_match")

    def _collect(self, node: CollectNode, inp: CallerInput) -> None:
        value = self._value(node, inp)
        if value is None:
            self.retry(node, inp, "no_match", invalid=True)
            return
        if node.sensitive:
            self.secrets.append(value)
        if node.confirm and node.type != "yes_no":
            st = self.state
            st.pending = Pending(value=value, spoken=spaced(value))
            st.phase = "confirm"
            self.event("confirm", inp, value=value)
            self.ask(node)
            return
        self._store(node, value, inp)

    def _store(self, node: CollectNode, value: str, inp: CallerInput) -> None:
        self.state.slots[node.slot] = value
        self.event("collected", inp, slot=node.slot, value=value)
        if node.type == "yes_no" and value == "no" and node.on_no:
            self.goto(node.on_no)
        else:
            self.goto(node.next)

    def _collect_confirm(self, node: CollectNode, inp: CallerInput) -> None:
        answer = yes_no(inp.text, inp.intent, inp.digits)
        st = self.state
        if answer is True and st.pending is not None:
            self._store(node, st.pending.value, inp)
            return
        if answer is False:
            st.pending = None
            st.phase = "listen"
            st.attempts["no_match"] = st.attempts.get("no_match", 0) + 1
            self.event("confirm_rejected", inp)
            if node.max_attempts and st.attempts["no_match"] >= node.max_attempts:
                self._give_up(node, "no_match", None)
                return
            self.ask(node, reprompt=True)
            return
        self.retry(node, inp, "no_match")

    def _value(self, node: CollectNode, inp: CallerInput) -> str | None:
        text, digits = inp.text, inp.digits
        if node.type == "yes_no":
            answer = yes_no(text, inp.intent, digits)
            return None if answer is None else ("yes" if answer else "no")
        if node.type == "text":
            return text.strip() or None
        if node.type == "phone":
            return phone_value(text, inp.entities, digits)
        if node.type == "date":
            return date_value(text, inp.entities) if inp.kind == "speech" else None
        if inp.kind == "dtmf":
            raw = digits[:-1] if node.terminator and digits.endswith(node.terminator) else digits
        else:
            raw = entity_value(inp.entities, "digits") or spoken_digits(text)
        ok = raw.isdigit() and node.min_length <= len(raw) <= node.max_length
        if ok and node.pattern is not None:
            ok = re.fullmatch(node.pattern, raw) is not None
        return raw if ok else None

    # -- webhook, voicemail, callback ------------------------------------------------------

    def _webhook_result(self, node: Node, inp: CallerInput) -> None:
        if inp.kind != "webhook_result" or not isinstance(node, WebhookNode):
            self.event("ignored_while_waiting", inp)
            return
        if inp.ok:
            saved = {slot: _dig(inp.data, path) for slot, path in node.save.items()}
            missing = [p for s, p in node.save.items() if saved[s] is None]
            if not missing:
                self.state.slots.update({k: str(v) for k, v in saved.items()})
                self.event("webhook_ok", inp, status=inp.status)
                self.goto(node.next)
                return
            inp = inp.model_copy(update={"ok": False, "error": f"missing {missing}"})
        target = node.on_status.get(inp.status or -1, node.on_failure)
        self.event("webhook_failed", inp, status=inp.status, error=inp.error, target=target)
        self.goto(target)

    def _voicemail(self, node: VoicemailNode, inp: CallerInput) -> None:
        message = inp.text if inp.kind == "speech" else ""
        if message:
            self.state.slots["voicemail"] = message
        self.event("voicemail", inp, message=message)
        self.say(node.thanks)
        self.hangup("voicemail" if message or inp.kind == "dtmf" else "voicemail_empty")

    def _callback_ask(self, node: CallbackNode) -> None:
        st = self.state
        if st.caller_number and st.phase != "callback_number":
            st.phase = "callback_offer"
            self.say(node.prompt, callback_number=spaced(st.caller_number))
            self.listen(node, max_digits=15, terminator="#")
        else:
            st.phase = "callback_number"
            self.say(node.ask_number)
            self.listen(node, max_digits=15, terminator="#")

    def _callback_input(self, node: CallbackNode, inp: CallerInput) -> None:
        st = self.state
        number = phone_value(inp.text, inp.entities, inp.digits)
        if st.phase == "callback_offer" and number is None:
            answer = yes_no(inp.text, inp.intent, inp.digits)
            if answer is True:
                number = st.caller_number
            elif answer is False:
                st.phase = "callback_number"
                self.event("callback_other_number", inp)
                self.ask(node)
                return
        if number is None:
            self.retry(node, inp, "no_match")
            return
        st.slots["callback_number"] = number
        self.event("callback", inp, number=number)
        self.say(node.thanks, callback_number=spaced(number))
        self.hangup("callback_requested")


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _dig(data: Any, path: str) -> Any:
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur
