"""A minimal worker for the pool tests: answers ``op`` requests, or misbehaves on request.

``echo`` answers with the payload; ``sleep`` waits ``s`` seconds first (a hang, or a window to
kill it in); ``exit`` dies mid-request; ``garbage`` writes bytes that are not a frame.
"""

from __future__ import annotations

import os
import time
from typing import Any

from app.workers.child import channel

PRELOADED: dict[str, Any] = {}


def preload(args: dict[str, Any]) -> dict[str, Any]:
    if args.get("fail"):
        raise ValueError(f"cannot load {args['fail']}")
    PRELOADED.update(args)
    return {"zygote_pid": os.getpid()}


def main() -> None:
    chan = channel()
    chan.send({"ready": True, "pid": os.getpid(), "preloaded": PRELOADED})
    while (frame := chan.recv()) is not None:
        op = frame.header.get("op")
        if op == "sleep":
            time.sleep(float(frame.header["s"]))
        elif op == "exit":
            os._exit(3)
        elif op == "garbage":
            chan.sock.sendall(b"\xff" * 64)
            continue
        chan.send({"id": frame.header["id"], "pid": os.getpid()}, frame.payload)
