"""A supervisor forces an agent's state from the live monitor: ``POST
/v1/agents/{agent_id}/state`` with ``available``, ``away`` (with a reason) or ``offline``.

Who: ``agents:state`` (supervisor, admin). An agent ringing or on a call is not forced
offline (409 with the reason; ``away`` stops new offers and the call goes on). The change is
the usual presence event with ``forced_by`` (the agent's desk shows who set it) and is
audited with the state before and after.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ValidationInfo, field_validator

from app.api.desk import handoff_service
from app.auth import CurrentPrincipal, Perm, client_ip, require
from app.handoff.live import DeskError
from app.routing.presence import AWAY_REASONS, AwayReason

router = APIRouter(tags=["monitor"])
AgentId = Annotated[str, Path(min_length=1, max_length=64)]


class StateIn(BaseModel):
    state: Literal["available", "away", "offline"]
    reason: AwayReason | None = None

    @field_validator("reason", mode="after")
    @classmethod
    def _reason_with_away(cls, reason: AwayReason | None, info: ValidationInfo
                          ) -> AwayReason | None:
        state = info.data.get("state")
        if state is not None and state != "away" and reason is not None:
            raise ValueError(f"a reason goes with away, not {state}")
        return reason


@router.post("/v1/agents/{agent_id}/state", dependencies=[require(Perm.AGENTS_STATE)])
async def force_state(agent_id: AgentId, body: StateIn, request: Request,
                      who: CurrentPrincipal) -> dict[str, Any]:
    """Set the agent's chosen status for them; the agent's state after."""
    if body.state == "away" and body.reason is None:
        raise HTTPException(422, [{"loc": ["body", "reason"], "type": "value_error",
                                   "msg": f"away needs a reason ({', '.join(AWAY_REASONS)})"}])
    live = handoff_service(request, "agents' states are").live
    try:
        before, after = await live.force_status(agent_id, body.state, body.reason, who.name)
    except DeskError as exc:
        raise HTTPException(exc.status, exc.detail) from exc
    await request.app.state.auth.audit(
        who, "agent.state", f"agent:{agent_id}", ip=client_ip(request),
        before={"state": before["state"], "chosen": before["chosen"],
                "away_reason": before["away_reason"]},
        after={"state": after["state"], "chosen": after["chosen"],
               "away_reason": after["away_reason"]})
    return after
