"""kill -9 a process while it appends events; a fresh process finalizes the call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from app.settings import PROJECT_ROOT
from app.storage import CallRepository, Database

WRITER = """
import sys
from datetime import UTC, datetime
from app.storage import CallRepository, Database

db = Database(sys.argv[1])
db.migrate()
repo = CallRepository(db)
repo.start_call("crash-1", "400-800", "+8613800138000", "webrtc", "zh", datetime.now(UTC))
i = 0
while True:
    i += 1
    event = {"type": "transcript", "text": f"word {i}", "is_final": i % 5 == 0}
    seq = repo.append_event("crash-1", event, datetime.now(UTC))
    print(seq, flush=True)  # reported only once append_event returned (durable)
"""

FINALIZER = """
import json, sys
from datetime import UTC, datetime
from app.storage import CallRepository, Database

db = Database(sys.argv[1])
db.migrate()
print(json.dumps(CallRepository(db).finalize_interrupted(datetime.now(UTC))))
db.dispose()
"""


def _python(code: str, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", code, url], cwd=PROJECT_ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_kill_9_while_appending_then_fresh_process_finalizes(db_url: str) -> None:
    writer = _python(WRITER, db_url)
    assert writer.stdout is not None
    reported: list[int] = []
    try:
        while len(reported) < 40:
            line = writer.stdout.readline()
            assert line, f"writer died early: {writer.stderr.read() if writer.stderr else ''}"
            reported.append(int(line))
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    # the lines readline() already buffered: communicate() would read the raw pipe past them
    rest = writer.stdout.read()
    writer.stdout.close()
    if writer.stderr is not None:
        writer.stderr.close()
    assert writer.returncode == -signal.SIGKILL
    reported += [int(line) for line in rest.split()]

    finalizer = _python(FINALIZER, db_url)
    out, err = finalizer.communicate(timeout=120)
    assert finalizer.returncode == 0, err
    assert json.loads(out) == ["crash-1"]

    db = Database(db_url)
    try:
        detail = CallRepository(db).get_call("crash-1")
        assert detail is not None
        logged = [e for e in detail.events if e.type == "transcript"]
        seqs = [e.seq for e in logged]
        assert set(reported) <= set(seqs)  # every append that returned is there
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) - max(reported) in (0, 1)  # at most the one in flight at the kill
        assert [e.payload["text"] for e in logged] == [f"word {s}" for s in seqs]
        ended = detail.events[-1]
        assert (ended.type, ended.seq, ended.payload["outcome"]) == (
            "call_ended", len(seqs) + 1, "interrupted"
        )
        assert detail.cdr.outcome == "interrupted"
        assert detail.cdr.ended_at == logged[-1].at
        assert detail.cdr.duration_s == (logged[-1].at - detail.cdr.started_at).total_seconds()
    finally:
        db.dispose()
