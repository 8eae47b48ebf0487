"""A supervisor forces agents' states from the monitor (``POST /v1/agents/{id}/state``) with
real calls and desks: an agent set away gets no offers (the caller goes to the other agent,
then waits), set back available is offered the waiting caller; a ringing agent is not forced
offline; the agent's desk is told who changed its state; each change is audited. An agent is
refused; an unknown agent is 404; a bad state is 422 naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from app.auth import Role
from tests.handoff.conftest import DEMO, SHANGHAI_CALLER, Desk
from tests.handoff.routing import short_flow, two_agent_routing
from tests.handoff.test_routing_paths import ask_for_agent
from tests.handoff.test_supervise import Supervisor
from tests.helpers.auth import ADMIN


def forced(agent_id: str, chosen: str, by: str) -> Any:
    """The agent's desk hears of the change and who made it."""
    return lambda m: (m["type"] == "agent_state" and m.get("agent_id") == agent_id
                      and m.get("chosen") == chosen and m.get("forced_by") == by)


async def test_forced_away_gets_no_offers_and_forced_available_does(
        make_desk: Any, tmp_path: Path) -> None:
    desk: Desk = await make_desk(two_agent_routing(tmp_path, ring_timeout_s=60),
                                 flows_dir=short_flow(tmp_path))
    li, zhang = desk.agent("li.na"), desk.agent("zhang.wei")
    await li.login()
    await zhang.login()
    boss = Supervisor(desk.url, "wang.boss")
    desk.opened.append(boss)
    await boss.login()

    set_away = await boss.post("/v1/agents/li.na/state", {"state": "away", "reason": "meal"})
    assert set_away.status_code == 200, set_away.text
    assert set_away.json()["state"] == "away" and set_away.json()["away_reason"] == "meal"
    await li.feed.wait(forced("li.na", "away", "wang.boss"))  # her desk shows who did it

    caller = desk.caller()
    call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
    await ask_for_agent(caller)
    _, offer = await zhang.offer()  # li.na is first in the group, but away: skipped
    assert offer["call_id"] == call_id

    ringing = await boss.post("/v1/agents/zhang.wei/state", {"state": "offline"})
    assert ringing.status_code == 409 and "ringing" in ringing.json()["detail"], ringing.text
    pulled = await boss.post("/v1/agents/zhang.wei/state", {"state": "away", "reason": "other"})
    assert pulled.status_code == 200 and pulled.json()["state"] == "away", pulled.text
    await zhang.feed.wait(lambda m: m["type"] == "offer_ended" and m["call_id"] == call_id)
    await zhang.feed.wait(forced("zhang.wei", "away", "wang.boss"))
    monitor = (await boss.client.get("/v1/monitor")).json()  # nobody free: the caller waits
    states = {a["agent_id"]: a["state"] for a in monitor["agents"]}
    assert states == {"li.na": "away", "zhang.wei": "away"}
    assert desk.app.state.handoff.live.position(call_id)[0] == 1  # still queued, first
    assert not [e for _, e in caller.events.items if e["type"] == "agent_connected"]
    assert not [m for _, m in li.feed.items if m["type"] == "offer"]

    back = await boss.post("/v1/agents/li.na/state", {"state": "available"})
    assert back.status_code == 200 and back.json()["state"] in ("available", "ringing")
    _, offered = await li.offer()  # available again: the waiting caller is offered to her
    assert offered["call_id"] == call_id
    await caller.close()

    async with httpx.AsyncClient(base_url=desk.url, headers=ADMIN, timeout=30) as admin:
        audit = (await admin.get("/v1/audit", params={"target": "agent:li.na"})).json()
    trail = [(a["actor"], a["action"], (a["before"] or {}).get("state"),
              (a["after"] or {}).get("chosen"), (a["after"] or {}).get("away_reason"))
             for a in reversed(audit["items"])]
    assert trail == [("wang.boss", "agent.state", "available", "away", "meal"),
                     ("wang.boss", "agent.state", "away", "available", None)]  # then rung at once


async def test_agents_unknown_agents_and_bad_states_are_refused(
        make_desk: Any, tmp_path: Path) -> None:
    desk: Desk = await make_desk(two_agent_routing(tmp_path), flows_dir=short_flow(tmp_path))
    li = desk.agent("li.na")
    await li.login()
    refused = await li.client.post("/v1/agents/zhang.wei/state", json={"state": "available"},
                                   headers={"X-CSRF-Token": li.csrf})
    assert refused.status_code == 403, refused.text
    boss = Supervisor(desk.url, "wang.boss")
    desk.opened.append(boss)
    await boss.login(Role.SUPERVISOR)
    unknown = await boss.post("/v1/agents/nobody/state", {"state": "available"})
    assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]
    bad = await boss.post("/v1/agents/li.na/state", {"state": "asleep"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "state"]
    no_reason = await boss.post("/v1/agents/li.na/state", {"state": "away"})
    assert no_reason.status_code == 422, no_reason.text
    detail = no_reason.json()["detail"][0]
    assert detail["loc"] == ["body", "reason"] and "needs a reason" in detail["msg"]
    me = await li.client.get("/v1/desk/me")
    assert me.json()["presence"]["state"] == "available"  # nothing refused changed her state
