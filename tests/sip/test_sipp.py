"""Real SIP clients (sipp) against a real ``hotline serve``: the scenarios in ``scenarios/``."""

from __future__ import annotations

from datetime import UTC, datetime

from app.flows.loader import load_flow
from tests.sip.conftest import DEMO_FLOW, DEMO_NUMBER, KO_NUMBER, SipServer, sipp


def _events(detail: dict[str, object], kind: str) -> list[dict[str, object]]:
    return [e["payload"] for e in detail["events"] if e["type"] == kind]  # type: ignore[index,union-attr]


def test_a_carrier_call_reaches_the_demo_order_lookup(sip_server: SipServer) -> None:
    calendar = load_flow(DEMO_FLOW).calendar
    assert calendar is not None
    menu_key = "1" if calendar.status(datetime.now(UTC)) == "open" else "3"
    before = sip_server.call_ids()
    result = sipp(sip_server, "uac_order_lookup.xml", DEMO_NUMBER, inject=menu_key)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    (call_id,) = sip_server.new_calls(before)
    detail = sip_server.wait_ended(call_id)
    cdr = detail["cdr"]
    assert cdr["channel"] == "sip" and cdr["hotline_number"] == DEMO_NUMBER
    assert cdr["caller_number"] == "+8613900139000"  # P-Asserted-Identity wins over From
    assert cdr["outcome"] == "self_service"
    keys = [e["digit"] for e in _events(detail, "dtmf")]
    assert keys == ["2", menu_key, "4", "5", "6", "7", "#", "1", "2"]  # RFC 4733 + INFO
    lookups = [e for e in _events(detail, "webhook") if e.get("phase") == "result"]
    assert lookups and lookups[0]["ok"] is True and lookups[0]["status"] == 200
    assert "order_result" in detail["flow_path"]
    (ended,) = _events(detail, "call_ended")
    media = ended["media"]  # type: ignore[index]
    assert ended["end_reason"] == "local_close"  # the hotline said goodbye and sent BYE
    assert (media["trunk"], media["codec"]) == ("local", "pcma/8000")  # type: ignore[index]
    assert media["dtmf_rfc4733"] == 8 and media["dtmf_info"] == 1  # type: ignore[index]
    assert media["packets_received"] > 200 and "loss_pct" in media  # type: ignore[operator]
    # sipp replays pcaps recorded apart (own SSRCs and sequence numbers): seen as new sources
    assert media["ssrc_changes"] >= 1  # type: ignore[index]


def test_cancel_before_answer_gets_487_and_starts_no_call(sip_server: SipServer) -> None:
    before = sip_server.call_ids()
    result = sipp(sip_server, "uac_cancel.xml", KO_NUMBER)
    assert result.returncode == 0, result.stdout[-6000:]
    assert sip_server.call_ids() == before


def test_hold_info_and_bye_from_the_caller_over_udp_and_tcp(sip_server: SipServer) -> None:
    for transport in ("u1", "t1"):
        before = sip_server.call_ids()
        result = sipp(sip_server, "uac_hold_info_bye.xml", KO_NUMBER, transport=transport)
        assert result.returncode == 0, transport + result.stdout[-6000:]
        (call_id,) = sip_server.new_calls(before)
        detail = sip_server.wait_ended(call_id)
        assert detail["cdr"]["outcome"] == "caller_hangup"
        assert [e["digit"] for e in _events(detail, "dtmf")] == ["5"]
        (ended,) = _events(detail, "call_ended")
        assert ended["end_reason"] == "caller_hangup"
        assert ended["media"]["dtmf_info"] == 1  # type: ignore[index]


def test_a_burst_over_max_calls_gets_503_and_spares_the_calls_up(sip_server: SipServer) -> None:
    refused_before = sip_server.metric("hotline_sip_rejected_total", 'reason="overload"')
    before = sip_server.call_ids()
    result = sipp(sip_server, "uac_burst.xml", KO_NUMBER, "-r", "30", "-l", "30", calls=30)
    assert result.returncode == 0, result.stdout[-6000:]
    refused = sip_server.metric("hotline_sip_rejected_total", 'reason="overload"') - refused_before
    answered = sip_server.new_calls(before, count=1)
    assert refused >= 30 - 6 and len(answered) == 30 - refused
    for call_id in answered:  # every call that was up ended by the caller's BYE, normally
        assert sip_server.wait_ended(call_id)["cdr"]["outcome"] == "caller_hangup"
