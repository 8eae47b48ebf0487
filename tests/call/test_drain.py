"""Draining (SIGTERM): no new call, the calls up go on until they end or the drain's bound."""

from __future__ import annotations

import pytest

from app.call.manager import CallLimitError, NodeDrainingError
from app.cluster.drain import drain
from app.cluster.leader import LocalLeadership
from tests.call.conftest import Rig
from tests.fakes import PipeMedia


async def test_a_draining_node_refuses_new_calls_and_waits_for_the_calls_up(rig: Rig) -> None:
    first, second = PipeMedia(), PipeMedia()
    call_a = await rig.start(first)
    call_b = await rig.start(second)
    await rig.event(call_a, "listen")
    first.hang_up()  # ends while the node drains: the drain returns without waiting for it
    leadership = LocalLeadership("node-1")
    await leadership.start()
    left = await drain(rig.manager, timeout_s=3, leadership=leadership)
    assert not leadership.leading  # handed over at the start of the drain
    assert left == [call_b]  # still up at the bound; the shutdown ends it interrupted
    with pytest.raises(NodeDrainingError, match="draining") as refused:
        await rig.start(PipeMedia())
    assert isinstance(refused.value, CallLimitError) and refused.value.retry_after_s > 0
    assert rig.repo.get_call(call_a).cdr.outcome == "caller_hangup"
    await rig.services.calls.shutdown()
    assert rig.repo.get_call(call_b).cdr.outcome == "interrupted"
