"""The parent's handle on one warm worker process: start it, run calls with a deadline, kill it.

The parent owns the clock and the kill: a call that passes its deadline, or a worker that dies,
ends with an `Outcome` whose reason says why, and the worker is not reused.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle import Bundle
from .cgroups import Cgroup
from .channel import FrameBuffer, FrameError, encode
from .sandbox import Policy

__all__ = ["LogSink", "NestedHook", "Outcome", "Reason", "WorkerHandle", "WorkerStartError"]

log = logging.getLogger(__name__)

LogSink = Callable[[str, str], None]
"""(stream, text) — text is one or more complete lines of the call's stdout or stderr."""
NestedHook = Callable[[str, list[Any], dict[str, Any], float], Any]
"""(function, args, kwargs, timeout) → result; raise to fail the nested call (message = error)."""

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
_BOOT = (f"import sys; sys.path.insert(0, {_PACKAGE_PARENT!r}); "
         "from faas_executor.worker import main; sys.exit(main())")
_EXIT_MEMORY = 3  # worker.EXIT_MEMORY (not imported: keep the parent off the child's imports)


class Reason(str, enum.Enum):
    SUCCESS = "success"
    ERROR = "error"
    SERIALIZE = "serialize"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CPU = "cpu"
    CRASH = "crash"
    LOAD = "load"


@dataclass(frozen=True)
class Outcome:
    """How one call ended. `error` is the text for the failed process (a traceback for user errors)."""

    reason: Reason
    value: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is Reason.SUCCESS


class WorkerStartError(Exception):
    """The worker did not come up; `outcome` is what the call that needed it ends with."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


def worker_env(scratch: str) -> dict[str, str]:
    """The whole environment of a worker: nothing from the executor's."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch,
            "TMPDIR": scratch, "MALLOC_ARENA_MAX": "2"}


class _Lines:
    """Turns chunks of one stream into whole lines, within a byte budget shared per call."""

    def __init__(self, stream: str, sink: LogSink | None, budget: list[int]) -> None:
        self.stream, self.sink, self.budget = stream, sink, budget
        self.partial = b""

    def feed(self, data: bytes, final: bool = False) -> None:
        data = self.partial + data
        cut = len(data) if final else data.rfind(b"\n") + 1
        self.partial = data[cut:]
        if cut and self.sink is not None:
            self._emit(data[:cut])

    def _emit(self, chunk: bytes) -> None:
        # budget[0] > 0: bytes left; 0: used up exactly, the marker is still owed; -1: cut and said so.
        if self.budget[0] < 0:
            return
        if len(chunk) > self.budget[0]:
            chunk = chunk[: self.budget[0]] + b"\n[colonyfaas: output truncated]\n"
            self.budget[0] = -1
        else:
            self.budget[0] -= len(chunk)
        assert self.sink is not None
        try:
            self.sink(self.stream, chunk.decode("utf-8", "replace"))
        except Exception:  # a failing log sink must not fail the call
            log.exception("log sink failed")


class WorkerHandle:
    """One worker process: pre-started (sandboxed, no function yet) or holding one loaded version."""

    def __init__(self, bundle: Bundle | None, policy: Policy, cgroup: Cgroup | None = None,
                 python: str | None = None, max_log_bytes: int = 1 << 20) -> None:
        self.bundle = bundle
        self.policy = policy
        self.cgroup = cgroup
        self.python = python or sys.executable
        self.max_log_bytes = max_log_bytes
        self.proc: subprocess.Popen[bytes] | None = None
        self.layers: list[str] = []
        self.calls = 0
        self.cpu_used = 0.0
        self._seq = 0
        self._frames = FrameBuffer()

    @property
    def name(self) -> str:
        return self.bundle.name if self.bundle is not None else "(not loaded)"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> list[str]:
        """Spawn, sandbox and (with a bundle) load; returns the active layers or raises WorkerStartError."""
        req_r, self._req_w = os.pipe()
        self._msg_r, msg_w = os.pipe()
        self._out_r, out_w = os.pipe()
        self._err_r, err_w = os.pipe()
        life_r, self._life_w = os.pipe()
        os.set_blocking(self._req_w, False)
        try:
            self.proc = subprocess.Popen(
                [self.python, "-I", "-u", "-B", "-c", _BOOT, str(msg_w), str(life_r)],
                stdin=req_r, stdout=out_w, stderr=err_w, pass_fds=(msg_w, life_r), close_fds=True,
                env=worker_env(self.policy.scratch), cwd=self.policy.scratch, start_new_session=True)
        finally:
            for fd in (req_r, msg_w, out_w, err_w, life_r):
                os.close(fd)
        if self.cgroup is not None:
            self.cgroup.add(self.proc.pid)  # before the child reads its init frame, so before user code
        deadline = time.monotonic() + timeout
        bundle = self.bundle.to_wire() if self.bundle is not None else None
        self._request({"policy": self.policy.to_wire(), "bundle": bundle}, deadline)
        frame = self._await(("ready",), deadline, timeout)
        self.layers = list(frame.get("layers", []))
        failed = [layer for layer in self.layers if layer.split(":")[0] in self._required() and ":off" in layer]
        if failed:  # fail closed: a planned layer that did not apply means no worker
            self.kill()
            raise WorkerStartError(Outcome(Reason.CRASH, error=(
                f"worker for {self.name!r} not started: sandbox layer failed: " + ", ".join(failed))))
        return self.layers

    def load(self, bundle: Bundle, timeout: float = 30.0) -> None:
        """Load a function into a pre-started worker; raises WorkerStartError (worker killed)."""
        if self.bundle is not None:
            raise RuntimeError(f"worker already holds {self.bundle.name!r}")
        self.bundle = bundle
        deadline = time.monotonic() + timeout
        self._request({"op": "load", "bundle": bundle.to_wire()}, deadline)
        self._await(("loaded",), deadline, timeout)

    def _request(self, message: dict[str, Any], deadline: float) -> None:
        try:
            self._send(message, deadline)
        except (OSError, TimeoutError):
            raise WorkerStartError(self._death(f"worker for {self.name!r} died while starting")) from None

    def _await(self, events: tuple[str, ...], deadline: float, timeout: float) -> dict[str, Any]:
        """The next frame among `events`; a load error, death or the deadline raise WorkerStartError."""
        startup = _Lines("stderr", lambda _s, text: log.warning("worker %s: %s", self.name, text.rstrip()),
                         [64 * 1024])
        while True:
            frames, eof = self._pump(deadline, {self._err_r: startup})
            for frame in frames:
                if frame.get("ev") in events:
                    return frame
                if frame.get("ev") == "load_error":
                    self.kill()
                    raise WorkerStartError(Outcome(Reason.LOAD, error=(
                        f"loading function {self.name!r} failed:\n{frame.get('error', '')}")))
            if eof:
                raise WorkerStartError(self._death(f"worker for {self.name!r} died while starting"))
            if time.monotonic() >= deadline:
                self.kill()
                raise WorkerStartError(Outcome(Reason.CRASH, error=(
                    f"worker for {self.name!r} did not start within {timeout:g} s")))

    def _required(self) -> set[str]:
        """Layers the policy planned that must be active (namespaces are best effort)."""
        return {name for name, on in (("landlock", self.policy.landlock), ("seccomp", self.policy.seccomp))
                if on}

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def kill(self) -> None:
        """SIGKILL the worker and everything it started; reap it; close our pipe ends."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.cgroup is not None:
                self.cgroup.kill_all()
            self.proc.wait()
        self._close()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the worker to exit; kill it if it does not within `timeout`."""
        if self.alive:
            try:
                self._send({"op": "exit"})
                assert self.proc is not None
                self.proc.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _close(self) -> None:
        for name in ("_req_w", "_msg_r", "_out_r", "_err_r", "_life_w"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, -1)

    # -- calls ----------------------------------------------------------------------------------

    def call(self, args: list[Any], kwargs: dict[str, Any], timeout: float,
             on_log: LogSink | None = None, nested: NestedHook | None = None) -> Outcome:
        """Run one call; never raises for anything the user code does."""
        self._seq += 1
        self.calls += 1
        budget = [self.max_log_bytes]
        streams = {self._out_r: _Lines("stdout", on_log, budget), self._err_r: _Lines("stderr", on_log, budget)}
        self._drain_stray()
        started = time.monotonic()
        deadline = started + timeout
        try:
            self._send({"op": "call", "id": self._seq, "args": args, "kwargs": kwargs}, deadline)
        except (TypeError, ValueError, FrameError) as e:
            return Outcome(Reason.ERROR, error=f"arguments are not JSON-serializable: {e}")
        except TimeoutError:
            self.kill()
            return Outcome(Reason.TIMEOUT, error=f"timed out after {timeout:g} s")
        except OSError:
            return self._death("worker died before the call started", streams)
        while True:
            try:
                frames, eof = self._pump(deadline, streams)
                for frame in frames:
                    ev = frame.get("ev")
                    if ev == "result" and frame.get("id") == self._seq:
                        self._drain(streams)
                        return self._result(frame)
                    if ev == "call":
                        self._nested(frame, nested, deadline)
            except TimeoutError:  # a nested call's reply could not be delivered in time
                self.kill()
                return Outcome(Reason.TIMEOUT, error=f"timed out after {timeout:g} s")
            except (FrameError, ValueError, KeyError, TypeError) as e:
                # User code can write to the worker's pipes; garbage there ends the worker.
                self.kill()
                return Outcome(Reason.CRASH, error=f"worker killed: malformed message on its channel ({e})")
            except OSError:  # the worker closed its end while we answered it
                return self._death("", streams)
            if eof:
                return self._death("", streams)
            if time.monotonic() >= deadline:
                self.kill()
                for lines in streams.values():
                    lines.feed(b"", final=True)
                return Outcome(Reason.TIMEOUT, error=f"timed out after {timeout:g} s")

    def _result(self, frame: dict[str, Any]) -> Outcome:
        self.cpu_used = float(frame.get("cpu", self.cpu_used))
        if frame.get("ok"):
            return Outcome(Reason.SUCCESS, value=json.loads(frame["json"]))
        kind = frame.get("kind")
        error = str(frame.get("error", ""))
        if kind == "memory":
            # The worker exits after a MemoryError; reap it now so it is not reused.
            self.kill()
            return Outcome(Reason.MEMORY, error=f"{self._memory_text()}\n{error}")
        if kind == "serialize":
            return Outcome(Reason.SERIALIZE, error=error)
        return Outcome(Reason.ERROR, error=error)

    def _memory_text(self) -> str:
        return f"worker killed: memory limit {self.policy.memory_mb} MiB exceeded"

    def _nested(self, frame: dict[str, Any], hook: NestedHook | None, deadline: float) -> None:
        name = str(frame.get("name", ""))
        if hook is None:
            reply: dict[str, Any] = {"op": "reply", "ok": False, "error": "nested calls are not enabled here"}
        else:
            try:
                value = hook(name, list(frame.get("args", [])), dict(frame.get("kwargs", {})),
                             max(0.0, deadline - time.monotonic()))
                reply = {"op": "reply", "ok": True, "value": value}
            except Exception as e:  # the hook's failure is the nested call's failure
                reply = {"op": "reply", "ok": False, "error": str(e) or type(e).__name__}
        try:
            self._send(reply, deadline)
        except (TypeError, ValueError, FrameError) as e:
            self._send({"op": "reply", "ok": False, "error": f"result of {name!r} cannot be sent: {e}"}, deadline)

    def _death(self, prefix: str, streams: dict[int, _Lines] | None = None) -> Outcome:
        """The worker's pipes closed: reap it and say why it died."""
        if streams:
            self._drain(streams)
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        oom = self.cgroup is not None and self.cgroup.oom_killed()
        self.kill()
        lead = f"{prefix}: " if prefix else ""
        if oom or code == _EXIT_MEMORY:
            return Outcome(Reason.MEMORY, error=lead + self._memory_text())
        if code is not None and code < 0:
            sig = -code
            if sig == signal.SIGXCPU:
                return Outcome(Reason.CPU, error=lead + (
                    f"worker killed: CPU time limit {self.policy.cpu_seconds} s exceeded"))
            try:
                signame = signal.Signals(sig).name
            except ValueError:
                signame = "unknown"
            return Outcome(Reason.CRASH, error=lead + f"worker crashed: signal {sig} ({signame})")
        return Outcome(Reason.CRASH, error=lead + f"worker crashed: exited with code {code}")

    # -- pipes ----------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any], deadline: float | None = None) -> None:
        """Write one frame; the pipe is non-blocking, so a worker that stops reading (user code
        can make it) costs at most the call's deadline, never a stuck executor thread."""
        view = memoryview(encode(message))
        limit = deadline if deadline is not None else time.monotonic() + 30.0
        while view:
            try:
                n = os.write(self._req_w, view)
            except BlockingIOError:
                remaining = limit - time.monotonic()
                if remaining <= 0 or not select.select([], [self._req_w], [], remaining)[1]:
                    raise TimeoutError("the worker stopped reading its requests") from None
                continue
            view = view[n:]

    def _pump(self, deadline: float, streams: dict[int, _Lines]) -> tuple[list[dict[str, Any]], bool]:
        """Wait until something arrives or the deadline; returns (frames, message-pipe EOF)."""
        fds = [self._msg_r, *[fd for fd in streams if fd >= 0]]
        remaining = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select(fds, [], [], remaining)
        frames: list[dict[str, Any]] = []
        eof = False
        for fd in ready:
            data = os.read(fd, 1 << 16)
            if fd == self._msg_r:
                if data:
                    frames.extend(self._frames.feed(data))
                else:
                    eof = True
            elif data:
                streams[fd].feed(data)
            else:
                streams.pop(fd)
        return frames, eof

    def _drain(self, streams: dict[int, _Lines]) -> None:
        """Take what is already in the output pipes (written before the result) and flush partials."""
        pending = [fd for fd in streams if fd >= 0]
        for _ in range(256):  # bounded: a background thread may still be printing
            if not pending:
                break
            ready = select.select(pending, [], [], 0)[0]
            if not ready:
                break
            for fd in ready:
                data = os.read(fd, 1 << 16)
                if data:
                    streams[fd].feed(data)
                else:
                    pending.remove(fd)
        for lines in streams.values():
            lines.feed(b"", final=True)

    def _drain_stray(self) -> None:
        """Output left from a previous call's background threads: not this call's, log and drop."""
        pending = [fd for fd in (self._out_r, self._err_r) if fd >= 0]
        for _ in range(256):
            if not pending:
                break
            ready = select.select(pending, [], [], 0)[0]
            if not ready:
                break
            for fd in ready:
                data = os.read(fd, 1 << 16)
                if data:
                    log.debug("worker %s stray output: %r", self.pid, data[:200])
                else:
                    pending.remove(fd)
