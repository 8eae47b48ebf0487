"""The wrap-up: dispositions of a hotline, and the bot's drafted proposal.

``draft(...)`` proposes a disposition and a two-line summary from the call's record with
simple rules, each named in ``reasons`` so the agent sees why: a completed transfer is
``escalated``; the agent promising a call back or a follow-up (their own words) is
``follow_up``; a caller whose last sentiment is negative and falling is ``follow_up``; else
``resolved``. The intent is the classifier's reading of what the caller said to the agent
(the bot's last intent when nothing was transcribed); when the bot has an answer for that
intent, it proposes "the bot should have handled this". The agent confirms or corrects;
the correction is kept in the ``wrap_up`` event (``corrected``, the right ``intent``) for
intent training.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from app.record import (
    AgentConnected,
    AgentDisconnected,
    AgentTransfer,
    CallEvent,
    HandoffRequested,
    SentimentScored,
    TranscriptHeard,
)

DEFAULT_DISPOSITIONS: dict[str, str] = {
    "resolved": "已解决 / Resolved",
    "follow_up": "需跟进 / Follow-up needed",
    "escalated": "已转交 / Escalated",
    "information": "咨询 / Information given",
    "complaint": "投诉 / Complaint logged",
    "wrong_number": "打错电话 / Wrong number",
    "other": "其他 / Other",
}
FOLLOW_UP = re.compile(r"回电|回复您|跟进|稍后|再联系|call you back|follow[ -]?up|get back to "
                       r"you|ring you back", re.IGNORECASE)
NEGATIVE_AT = -0.3


class Draft(BaseModel):
    disposition: str
    summary: str  # two lines
    intent: str | None = None
    bot_should_handle: bool = False
    reasons: list[str] = Field(default_factory=list)


def _talk(typed: list[tuple[int, CallEvent]], agent_id: str) -> tuple[list[str], list[str],
                                                                        list[float], float]:
    """(caller lines, agent lines, caller sentiment scores, talk_s) of ``agent_id``'s part."""
    caller: list[str] = []
    agent: list[str] = []
    scores: list[float] = []
    talk_s, on = 0.0, False
    for _, e in typed:
        if isinstance(e, AgentConnected):
            on = e.agent_id == agent_id
        elif isinstance(e, AgentDisconnected) and e.agent_id == agent_id:
            talk_s += e.talk_s
            on = False
        elif on and isinstance(e, TranscriptHeard) and e.is_final:
            (agent if e.speaker == "agent" else caller).append(e.text)
        elif on and isinstance(e, SentimentScored):
            scores.append(e.score)
    return caller, agent, scores, talk_s


def draft(typed: list[tuple[int, CallEvent]], agent_id: str, *, dispositions: dict[str, str],
          caller_intent: str | None, bot_answers: bool) -> Draft:
    """The proposal for ``agent_id``'s wrap-up (``caller_intent``: the classifier's reading
    of the caller's words to the agent; ``bot_answers``: the bot has an answer for it)."""
    caller, agent, scores, talk_s = _talk(typed, agent_id)
    handoff = next((e for _, e in reversed(typed) if isinstance(e, HandoffRequested)), None)
    reasons: list[str] = []
    transferred = any(isinstance(e, AgentTransfer) and e.agent_id == agent_id
                      and e.outcome == "completed" for _, e in typed) or any(
        isinstance(e, AgentDisconnected) and e.agent_id == agent_id and e.reason in (
            "transfer", "warm_done") for _, e in typed)
    promise = next((line for line in agent if FOLLOW_UP.search(line)), None)
    if transferred:
        disposition = "escalated"
        reasons.append("the call was transferred on")
    elif promise is not None:
        disposition = "follow_up"
        reasons.append(f"the agent said: “{promise}”")
    elif len(scores) >= 2 and scores[-1] <= NEGATIVE_AT and scores[-1] < scores[0]:
        disposition = "follow_up"
        reasons.append(f"the caller ended upset (sentiment {scores[0]:+.2f} → {scores[-1]:+.2f})")
    else:
        disposition = "resolved"
        reasons.append("no transfer, no follow-up promised, the caller did not end upset")
    if disposition not in dispositions:
        reasons.append(f"{disposition!r} is not in this hotline's list: “other”")
        disposition = "other" if "other" in dispositions else next(iter(dispositions))
    intent = caller_intent or (handoff.intent if handoff else None)
    if caller_intent:
        reasons.append(f"intent {caller_intent} from what the caller told the agent")
    elif intent:
        reasons.append(f"intent {intent}: the bot's reading before the handoff")
    should = bool(bot_answers and intent)
    if should:
        reasons.append(f"the bot has an answer for {intent}")
    why = handoff.reason if handoff else "transfer"
    said = caller[0] if caller else (handoff.transcript[-1].text if handoff and
                                     handoff.transcript else "")
    line1 = f"{intent or why}: {said[:80]}" if said else f"{intent or why}"
    mood = f"sentiment {scores[0]:+.1f}→{scores[-1]:+.1f}" if scores else "no sentiment"
    line2 = (f"{agent_id} talked {int(talk_s // 60)}:{int(talk_s % 60):02d}, "
             f"{len(caller)} caller / {len(agent)} agent lines, {mood}; {disposition}")
    return Draft(disposition=disposition, summary=f"{line1}\n{line2}", intent=intent,
                 bot_should_handle=should, reasons=reasons)


def dispositions_of(hotline: Any) -> dict[str, str]:
    """The hotline's wrap-up list (``dispositions:`` in the routing), else the built-in."""
    found = getattr(hotline, "dispositions", None) if hotline is not None else None
    return dict(found) if found else dict(DEFAULT_DISPOSITIONS)
