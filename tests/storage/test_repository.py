"""CallRepository on SQLite and on a real PostgreSQL: the log, the CDR, the views."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

from app.storage import CallRepository, Database

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def start(repo: CallRepository, call_id: str, started_s: float = 0.0, **kw: str) -> None:
    repo.start_call(
        call_id,
        kw.get("hotline_number", "400-800-1234"),
        kw.get("caller_number", "+8613800138000"),
        kw.get("channel", "webrtc"),
        kw.get("locale", "zh"),
        at(started_s),
        kw.get("flow_id", "main"),
    )


def test_concurrent_appends_get_gapless_seq_in_each_writers_order(repo: CallRepository) -> None:
    start(repo, "c-busy")
    start(repo, "c-other")
    writers, per_writer = 6, 15
    returned: dict[int, list[int]] = {w: [] for w in range(writers)}
    barrier = threading.Barrier(writers)

    def write(w: int) -> None:
        barrier.wait()
        for i in range(per_writer):
            event: dict[str, object] = {"type": "transcript", "text": f"w{w} #{i}", "w": w, "i": i}
            returned[w].append(repo.append_event("c-busy", event, at(1 + i)))
            if i % 5 == 0:
                repo.append_event("c-other", {"type": "dtmf", "digit": str(w)}, at(1 + i))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    events = repo.events("c-busy")
    assert [e.seq for e in events] == list(range(1, writers * per_writer + 1))
    for w in range(writers):
        mine = [e for e in events if e.payload["w"] == w]
        assert [e.payload["i"] for e in mine] == list(range(per_writer))
        assert [e.seq for e in mine] == returned[w]
    assert [e.seq for e in repo.events("c-other")] == list(range(1, writers * 3 + 1))


def test_cdr_is_computed_from_the_event_log(repo: CallRepository) -> None:
    start(repo, "c1", started_s=0)
    log: list[tuple[float, dict[str, object]]] = [
        (0.4, {"type": "call_started", "channel": "webrtc"}),
        (0.5, {"type": "node_entered", "node": "welcome"}),
        (1.0, {"type": "prompt_played", "prompt": "welcome"}),
        (3.0, {"type": "transcript", "text": "账单", "is_final": True}),
        (3.1, {"type": "intent", "intent": "billing", "confidence": 0.91}),
        (5.0, {"type": "intent", "intent": "refund", "confidence": 0.8}),
        (6.0, {"type": "intent", "intent": None, "confidence": 0.2}),  # no match: ignored
        (7.0, {"type": "transfer", "queue": "refunds", "reason": "caller asked", "note": ""}),
    ]
    for seconds, event in log:
        repo.append_event("c1", event, at(seconds))
    cdr = repo.end_call("c1", "transferred", at(42.5))
    assert cdr.outcome == "transferred"
    assert cdr.final_intent == "refund"
    assert cdr.handoff_target == "refunds"
    assert cdr.answered_at == at(0.4)
    assert cdr.ended_at == at(42.5)
    assert cdr.duration_s == 42.5
    last = repo.events("c1")[-1]
    assert (last.seq, last.type) == (len(log) + 1, "call_ended")
    assert last.payload["outcome"] == "transferred"


def test_end_call_is_idempotent_and_logs_call_ended_once(repo: CallRepository) -> None:
    start(repo, "c1")
    repo.append_event("c1", {"type": "intent", "intent": "hours", "confidence": 0.9}, at(2))
    first = repo.end_call("c1", "completed", at(10))
    again = repo.end_call("c1", "abandoned", at(99))
    assert again == first
    assert [e.type for e in repo.events("c1")].count("call_ended") == 1

    start(repo, "c2")  # the session logged call_ended itself: no second one
    repo.append_event("c2", {"type": "hangup", "by": "caller"}, at(3))
    repo.append_event("c2", {"type": "call_ended", "outcome": "abandoned"}, at(3))
    cdr = repo.end_call("c2", "abandoned", at(3))
    assert (cdr.outcome, cdr.duration_s, cdr.final_intent) == ("abandoned", 3.0, None)
    assert [e.type for e in repo.events("c2")] == ["hangup", "call_ended"]


def test_in_flight_calls_are_finalized_after_a_crash(db_url: str) -> None:
    before = Database(db_url)
    before.migrate()
    repo = CallRepository(before)
    start(repo, "live-1", started_s=0)
    repo.append_event("live-1", {"type": "call_started"}, at(0.2))
    repo.append_event("live-1", {"type": "intent", "intent": "billing", "confidence": 0.9}, at(4))
    repo.append_event("live-1", {"type": "prompt_played", "prompt": "p"}, at(9.5))
    start(repo, "live-2", started_s=20)  # no event at all
    start(repo, "done", started_s=1)
    repo.end_call("done", "completed", at(5))
    # crash: the process dies, nothing is closed; a new process opens the same database
    after = Database(db_url)
    try:
        after.migrate()
        repo2 = CallRepository(after)
        assert sorted(repo2.finalize_interrupted(at(3600))) == ["live-1", "live-2"]
        assert repo2.finalize_interrupted(at(3700)) == []
        one = repo2.get_call("live-1")
        assert one is not None
        assert (one.cdr.outcome, one.cdr.duration_s) == ("interrupted", 9.5)
        assert one.cdr.ended_at == at(9.5)
        assert one.cdr.final_intent == "billing"
        assert [e.type for e in one.events][-1] == "call_ended"
        assert one.events[-1].payload["finalized_at"] == at(3600).isoformat()
        two = repo2.get_call("live-2")
        assert two is not None and (two.cdr.outcome, two.cdr.duration_s) == ("interrupted", 0.0)
        done = repo2.get_call("done")
        assert done is not None and done.cdr.outcome == "completed"
    finally:
        after.dispose()
        before.dispose()


def test_finalize_can_be_limited_to_one_node(repo: CallRepository) -> None:
    for call_id, node in (("a1", "node-a"), ("b1", "node-b")):
        repo.start_call(call_id, "400", "", "webrtc", "en", at(0), node_id=node)  # no number
    assert repo.finalize_interrupted(at(60), node_id="node-a") == ["a1"]
    assert repo.list_calls(outcome="interrupted").total == 1


def test_list_filters_and_pagination(repo: CallRepository) -> None:
    plan: list[tuple[str, int, str, str, str | None]] = [  # id, start s, number, outcome, intent
        ("k0", 0, "400-1", "completed", "billing"),
        ("k1", 60, "400-1", "transferred", "refund"),
        ("k2", 120, "400-2", "completed", "billing"),
        ("k3", 180, "400-2", "abandoned", None),
        ("k4", 240, "400-1", "completed", "billing"),
    ]
    for call_id, s, number, outcome, intent in plan:
        start(repo, call_id, started_s=s, hotline_number=number)
        if intent:
            repo.append_event(call_id, {"type": "intent", "intent": intent}, at(s + 1))
        repo.end_call(call_id, outcome, at(s + 30))
    start(repo, "live", started_s=300)

    def ids(**kw: object) -> list[str]:
        return [c.id for c in repo.list_calls(**kw).items]  # type: ignore[arg-type]

    assert ids() == ["live", "k4", "k3", "k2", "k1", "k0"]  # newest first
    assert ids(hotline_number="400-2") == ["k3", "k2"]
    assert ids(outcome="completed") == ["k4", "k2", "k0"]
    assert ids(intent="billing", hotline_number="400-1") == ["k4", "k0"]
    assert ids(started_from=at(60), started_to=at(180)) == ["k2", "k1"]  # [from, to)
    tokyo = timezone(timedelta(hours=9))
    assert ids(started_from=at(60).astimezone(tokyo), started_to=at(61)) == ["k1"]
    page = repo.list_calls(limit=2, offset=2)
    assert ([c.id for c in page.items], page.total) == (["k3", "k2"], 6)
    last = repo.list_calls(outcome="completed", limit=2, offset=2)
    assert ([c.id for c in last.items], last.total) == (["k0"], 3)
    assert repo.list_calls(offset=10).items == []
    live = repo.list_calls(limit=1).items[0]
    assert (live.ended_at, live.outcome, live.duration_s) == (None, None, None)


def test_get_call_detail(repo: CallRepository) -> None:
    start(repo, "d1", started_s=10)
    repo.append_event("d1", {"type": "call_started"}, at(10))
    repo.append_event("d1", {"type": "node_entered", "node": "welcome"}, at(10.1))
    repo.append_event("d1", {"type": "sentiment", "score": 0.2, "label": "neutral"}, at(13))
    repo.append_event("d1", {"type": "node_entered", "node": "menu"}, at(14))
    repo.append_event("d1", {"type": "sentiment", "score": -0.7, "label": "negative"}, at(18))
    repo.append_event("d1", {"type": "node_entered", "node": "agent"}, at(19))
    repo.append_events("d1", [
        ({"type": "prompt_played", "text": "您好，请问有什么可以帮您？", "locale": "zh"}, at(19.1)),
        ({"type": "transcript", "text": "我", "is_final": False}, at(19.2)),
        ({"type": "transcript", "text": "我要退款", "is_final": True, "confidence": 0.83},
         at(19.3)),
        ({"type": "transcript", "text": "I can help", "is_final": True, "speaker": "agent",
          "confidence": 0.95}, at(19.4)),
        ({"type": "legacy_thing", "x": 1}, at(19.5)),  # an unknown shape: kept, not in views
    ])
    repo.save_flow_state("d1", {"node": "welcome", "slots": {}})
    repo.add_recording("d1", "d1.wav", 9.5, True)
    repo.end_call("d1", "transferred", at(20),
                  flow_state={"node": "agent", "slots": {"order": "A123"}})

    detail = repo.get_call("d1")
    assert detail is not None
    assert detail.flow_path == ["welcome", "menu", "agent"]
    assert [(p.t_s, p.score, p.label) for p in detail.sentiment] == [
        (3.0, 0.2, "neutral"),
        (8.0, -0.7, "negative"),
    ]
    assert [(t.speaker, t.text, t.seq) for t in detail.turns] == [
        ("bot", "您好，请问有什么可以帮您？", 7),
        ("caller", "我要退款", 9),
        ("agent", "I can help", 10),
    ]
    assert detail.turns[1].confidence == 0.83
    assert detail.cdr.flow_state == {"node": "agent", "slots": {"order": "A123"}}
    assert detail.cdr.duration_s == 10.0
    rec = detail.recordings[0]
    assert (rec.path, rec.duration_s, rec.caller_notified) == ("d1.wav", 9.5, True)
    assert rec.created_at.tzinfo is not None
    assert repo.recordings("d1") == detail.recordings
    assert [e.seq for e in detail.events] == list(range(1, 13))
    body = detail.model_dump(mode="json")  # what the API sends
    assert body["events"][1] == {
        "call_id": "d1", "seq": 2, "at": "2026-03-02T09:00:10.100000Z",
        "type": "node_entered", "payload": {"node": "welcome"},
    }
    assert repo.get_call("nope") is None


def test_events_after_seq_and_timezones(repo: CallRepository) -> None:
    shanghai = timezone(timedelta(hours=8))
    repo.start_call("z1", "400", "+86", "sip", "zh", at(0).astimezone(shanghai))
    for i in range(5):
        repo.append_event("z1", {"type": "dtmf", "digit": str(i)}, at(i).astimezone(shanghai))
    tail = repo.events("z1", after_seq=3)
    assert [(e.seq, e.payload["digit"]) for e in tail] == [(4, "3"), (5, "4")]
    assert tail[0].at == at(3) and tail[0].at.utcoffset() == timedelta(0)
    assert repo.events("z1", after_seq=5) == []
    cdr = repo.list_calls().items[0]
    assert cdr.started_at == at(0) and cdr.started_at.tzinfo is not None
