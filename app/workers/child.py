"""The worker-process side: the channel to the server, and the bootstrap that runs an entry.

A worker is forked by the zygote (``app.workers.zygote``) with one end of a private socket
pair. ``run_child`` installs that socket as this process's ``channel()`` and calls the pool's
entry function (``"module:function"``, no arguments); the process exits when it returns. An
entry serves requests with ``channel().recv()`` / ``send()`` until ``recv`` reports the end of
input (the server closed the pool or went away).
"""

from __future__ import annotations

import importlib
import os
import select
import socket
import sys
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from app.workers.protocol import Frame, FrameParser, encode

_READ_BYTES = 1 << 16
_channel: Channel | None = None
_scratch_dir: Path | None = None


class Channel:
    """Blocking framed I/O on the worker's socket (a worker is single-threaded)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.eof = False
        self._parser = FrameParser()
        self._frames: deque[Frame] = deque()

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        """Send a frame; if the server is gone, end this worker quietly (exit code 0)."""
        try:
            self.sock.sendall(encode(header, payload))
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True
            raise SystemExit(0) from None

    def recv(self, timeout_s: float | None = None) -> Frame | None:
        """The next frame; ``None`` at the end of input or when ``timeout_s`` passed first."""
        while not self._frames and not self.eof:
            if not self._fill(wait=True, timeout_s=timeout_s) and timeout_s is not None:
                break
        return self._frames.popleft() if self._frames else None

    def drain(self) -> list[Frame]:
        """Every frame that has arrived, without waiting."""
        while not self.eof and self._fill(wait=False, timeout_s=0.0):
            pass
        frames = list(self._frames)
        self._frames.clear()
        return frames

    def _fill(self, *, wait: bool, timeout_s: float | None) -> bool:
        if wait:
            ready, _, _ = select.select([self.sock], [], [], timeout_s)
            if not ready:
                return False
        try:
            data = self.sock.recv(_READ_BYTES, 0 if wait else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self._frames.extend(self._parser.feed(data))
        return True


def channel() -> Channel:
    """This worker's channel to the server (only inside a worker process)."""
    if _channel is None:
        raise RuntimeError("not a worker process: no channel to the server")
    return _channel


def scratch_dir() -> Path | None:
    """A folder for this worker's files that the server removes once the worker is gone."""
    return _scratch_dir


def resolve(entry: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function."""
    module, _, name = entry.partition(":")
    if not module or not name:
        raise ValueError(f"worker entry {entry!r} is not 'module:function'")
    func = getattr(importlib.import_module(module), name)
    if not callable(func):
        raise ValueError(f"worker entry {entry!r} is not callable")
    return func  # type: ignore[no-any-return]


def run_child(sock: socket.socket, entry: str, scratch: str | None) -> NoReturn:
    """Run ``entry`` as this (freshly forked) process's whole life, then exit."""
    global _channel, _scratch_dir
    _channel = Channel(sock)
    _scratch_dir = Path(scratch) if scratch else None
    code = 0
    try:
        resolve(entry)()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the traceback reaches the server's log through stderr
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
    os._exit(code)
