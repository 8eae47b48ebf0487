"""The zygote: one fresh interpreter that loads what every worker needs once, then forks them.

The server never forks itself (it holds torch, Vosk and executor threads). It starts this
process instead (``python -m app.workers.zygote``), which runs the pool's ``preload`` function
(e.g. loads the Vosk models: ~0.5 GB and 4 s for the Korean one) while it is still
single-threaded, then serves fork requests on a private control socket (SOCK_SEQPACKET: one
message per request). Each request carries one end of a fresh socket pair (SCM_RIGHTS); the
forked child runs the pool's entry with it. So a worker starts in milliseconds with the models
already in memory, and every worker shares those pages with the zygote (copy-on-write).

The zygote and its workers end on their own when the server goes away: each of them sees the
end of its socket. Children are reaped by the kernel (SIGCHLD ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from app.settings import PROJECT_ROOT
from app.workers.child import resolve, run_child

_MSG_BYTES = 1 << 16
STOP_WAIT_S = 5.0


class WorkerStartError(RuntimeError):
    """The zygote or a worker could not be started; the message says why."""


def _reply(ctrl: socket.socket, doc: dict[str, Any]) -> None:
    ctrl.send(json.dumps(doc).encode())


def main() -> None:
    """``python -m app.workers.zygote CTRL_FD CONFIG_JSON`` (started by ``Zygote.start``)."""
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    config = json.loads(sys.argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when workers stop
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked workers are reaped by the kernel
    info: Any = None
    try:
        if config.get("preload"):
            info = resolve(config["preload"])(config.get("preload_args") or {})
    except Exception as exc:  # reported to the server, which says why workers cannot start
        _reply(ctrl, {"ok": False, "message": f"{type(exc).__name__}: {exc}"})
        return
    _reply(ctrl, {"ok": True, "pid": os.getpid(), "info": info})
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(ctrl, _MSG_BYTES, 1)
        except OSError:
            return
        if not msg:
            return  # the server closed the pool or went away
        if not fds:
            _reply(ctrl, {"ok": False, "message": "fork request without a socket"})
            continue
        request = json.loads(msg)
        pid = os.fork()
        if pid == 0:
            ctrl.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            run_child(socket.socket(fileno=fds[0]), config["entry"], request.get("scratch"))
        os.close(fds[0])
        _reply(ctrl, {"ok": True, "pid": pid})


@dataclass
class Zygote:
    """Server side: start the zygote, ask it for workers, stop it. Thread-safe, blocking."""

    name: str
    entry: str
    preload: str | None
    preload_args: dict[str, Any]
    start_timeout_s: float
    info: Any = None
    _proc: subprocess.Popen[bytes] | None = None
    _ctrl: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def fork(self, scratch: str | None) -> tuple[socket.socket, int]:
        """A new worker: (the server's end of its socket, its pid). Starts the zygote if needed."""
        with self._lock:
            if self._ctrl is None or self._proc is None or self._proc.poll() is not None:
                self._stop_locked()
                self._start_locked()
            assert self._ctrl is not None
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                socket.send_fds(self._ctrl, [json.dumps({"scratch": scratch}).encode()],
                                [theirs.fileno()])
                reply = self._recv_locked("fork a worker")
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            return ours, int(reply["pid"])

    def start(self) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._stop_locked()
                self._start_locked()

    def close(self) -> None:
        with self._lock:
            self._stop_locked()

    def _start_locked(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {"entry": self.entry, "preload": self.preload,
                  "preload_args": self.preload_args}
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "app.workers.zygote", str(theirs.fileno()),
                 json.dumps(config)],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        finally:
            theirs.close()
        self._ctrl = ours
        try:
            ready = self._recv_locked("load")
        except WorkerStartError:
            self._stop_locked()
            raise
        self.info = ready.get("info")

    def _recv_locked(self, what: str) -> dict[str, Any]:
        assert self._ctrl is not None and self._proc is not None
        self._ctrl.settimeout(self.start_timeout_s)
        try:
            raw = self._ctrl.recv(_MSG_BYTES)
        except TimeoutError:
            raise WorkerStartError(
                f"{self.name} zygote did not {what} within {self.start_timeout_s:g} s"
            ) from None
        if not raw:
            code = _exit_code(self._proc)
            raise WorkerStartError(f"{self.name} zygote exited (code {code}) before it could "
                                   f"{what}; its error is in the server log")
        reply: dict[str, Any] = json.loads(raw)
        if not reply.get("ok"):
            raise WorkerStartError(f"{self.name} zygote could not {what}: {reply.get('message')}")
        return reply

    def _stop_locked(self) -> None:
        ctrl, self._ctrl = self._ctrl, None
        proc, self._proc = self._proc, None
        if ctrl is not None:
            ctrl.close()  # the zygote reads the end of input and exits
        if proc is not None:
            try:
                proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        return proc.wait(2.0)
    return None


if __name__ == "__main__":
    main()
