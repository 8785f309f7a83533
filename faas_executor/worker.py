"""The sandboxed worker child: sandbox itself once, load one function version, run calls.

Started by the pool as `python -I -u -c ...` with a minimal environment (never the executor's),
fd 0 = requests from the parent (moved to a private fd at start), fd 1/2 = the call's
stdout/stderr (pipes the parent turns into process logs as lines arrive), a message fd (argv[1])
for frames to the parent, and a lifeline fd (argv[2]) whose EOF means the parent is gone:
  parent → child  {"policy", "bundle" | null} once; {"op": "load", "bundle"} for a worker
                  pre-started without one; then {"op": "call", "id", "args", "kwargs"},
                  {"op": "reply", ...} (answer to a nested call), {"op": "exit"}
  child → parent  {"ev": "ready", "layers", "loaded"} | {"ev": "loaded"} | {"ev": "load_error", "error"};
                  per call {"ev": "result", "id", "ok", "json" | "kind"+"error", "cpu"};
                  {"ev": "call", "name", "args", "kwargs"} for a nested call.
The parent owns every timeout and the kill; this side only reports.

What a call returns is settled here before it is encoded: a coroutine (an `async def` function)
is run to completion on a fresh event loop, a generator or async generator is drained into the
list of what it yielded (docs/EXECUTOR.md, "Results").
"""

from __future__ import annotations

import base64
import json
import linecache
import os
import resource
import shutil
import sys
import tempfile
import traceback
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from . import api, sandbox
from .channel import read_frame, write_frame

__all__ = ["load_function", "main"]

EXIT_MEMORY = 3
CALL_DIR = "call"  # inside the worker's scratch dir; emptied after every call


def _register_source(filename: str, code: str) -> None:
    # So tracebacks of user code show its source lines.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)


def load_function(bundle: dict[str, Any]) -> Callable[..., Any]:
    """Turn the wire form of a bundle into the callable (runs the module's top-level code)."""
    name, entry, serializer = bundle["name"], bundle["entrypoint"], bundle["serializer"]
    code: str = bundle["code"]
    site = bundle.get("site")
    if site and site not in sys.path:
        sys.path.insert(0, site)  # the function's requirements, installed by the executor
    if serializer == "cloudpickle":
        import cloudpickle

        fn = cloudpickle.loads(base64.b64decode(code))
    else:
        filename = f"<faas:{name}>"
        _register_source(filename, code)
        module = types.ModuleType(f"faas_function_{name}")
        module.__file__ = filename
        sys.modules[module.__name__] = module
        exec(compile(code, filename, "exec"), module.__dict__)
        try:
            fn = module.__dict__[entry]
        except KeyError:
            raise LookupError(f"the deployed source of {name!r} defines no function {entry!r}") from None
    if not callable(fn):
        raise TypeError(f"{name!r} entrypoint {entry!r} is a {type(fn).__name__}, not a function")
    return fn  # type: ignore[no-any-return]


MAX_RESULT_BYTES = 8 * 1024 * 1024
"""The close message carries the result base64-encoded in a signed envelope (~4/3 of it) and the
server refuses bodies over 16 MiB: a larger result used to be retried as an outage and then lost,
its process left RUNNING."""


# asyncio's own frames (the runner and the loop) sit between this module's and the first frame
# of an async function; its directory is next to this one's stdlib module `os`.
_ASYNCIO_DIR = os.path.join(os.path.dirname(os.__file__), "asyncio") + os.sep


def _ours(filename: str) -> bool:
    return filename == __file__ or filename.startswith(_ASYNCIO_DIR)


def _user_traceback(exc: BaseException) -> str:
    tb = exc.__traceback__
    # Drop the worker's own leading frames (and asyncio's, for a coroutine) so the text starts in
    # user code.
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class _ResultError(Exception):
    """What a call produced cannot be its result (not JSON, or too large); the message says why."""


def _invoke(fn: Callable[..., Any], name: str, msg: dict[str, Any]) -> str:
    """Call the function, settle what it returned and encode it: the result as JSON text."""
    worker_pid = os.getpid()
    try:
        value = fn(*msg.get("args", []), **msg.get("kwargs", {}))
        if isinstance(value, types.GeneratorType):
            return _drain(value, name)
        if isinstance(value, types.AsyncGeneratorType):
            return _run_async(_drain_async(value, name))
        if isinstance(value, Awaitable):
            value = _run_async(_await(value))
        return _encode(value, name)
    finally:
        _exit_if_forked(worker_pid)


_LIMIT_TEXT = (f"a result is limited to {MAX_RESULT_BYTES // 2**20} MiB (store large data, e.g. in CFS, and "
               "return a reference to it)")


def _encode(value: Any, name: str) -> str:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise _ResultError(f"{name}() returned a {type(value).__module__}.{type(value).__qualname__}, "
                           f"which is not JSON-serializable: {e}") from None
    if len(text) > MAX_RESULT_BYTES:  # the close message could not carry it: say so, lose nothing
        raise _ResultError(f"{name}() returned {len(text) / 2**20:.1f} MiB of JSON; {_LIMIT_TEXT}")
    return text


class _Yielded:
    """The JSON list of a generator's values, built as they come, so that a generator yielding
    more than a result may hold fails once past the limit instead of filling memory until the
    call's timeout. Encoded item by item, the text is exactly json.dumps(list_of_values)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[str] = []
        self.size = 2  # the brackets

    def add(self, item: Any) -> None:
        try:
            part = json.dumps(item, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as e:
            raise _ResultError(f"{self.name}() yielded a {type(item).__module__}.{type(item).__qualname__} "
                               f"(item {len(self.parts)}), which is not JSON-serializable: {e}") from None
        self.size += len(part) + (2 if self.parts else 0)  # json.dumps separates items with ", "
        if self.size > MAX_RESULT_BYTES:
            raise _ResultError(f"{self.name}() yielded more than {MAX_RESULT_BYTES // 2**20} MiB of JSON "
                               f"(stopped at item {len(self.parts)}); {_LIMIT_TEXT}")
        self.parts.append(part)

    def text(self) -> str:
        return "[" + ", ".join(self.parts) + "]"


def _drain(gen: types.GeneratorType[Any, Any, Any], name: str) -> str:
    out = _Yielded(name)
    try:
        for item in gen:
            out.add(item)
    finally:
        gen.close()  # stopped early (too large, not JSON): run the generator's finally blocks now
    return out.text()


async def _drain_async(agen: types.AsyncGeneratorType[Any, Any], name: str) -> str:
    out = _Yielded(name)
    try:
        async for item in agen:
            out.add(item)
    finally:
        await agen.aclose()
    return out.text()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable  # asyncio.run takes coroutines only; any awaitable is one this way


def _run_async(main: Coroutine[Any, Any, Any]) -> Any:
    """Run one call's coroutine on a fresh event loop, closed afterwards with every task it left
    (asyncio.run), so nothing of one call's loop outlives it. The worker is this call's entry point,
    not a library, and its main thread runs no loop of its own. asyncio is imported on the first
    async call only: most functions never need it. Inside the sandbox the loop needs only what is
    allowed there: epoll, and an AF_UNIX socketpair to wake itself."""
    import asyncio

    return asyncio.run(main)


def _exit_if_forked(worker_pid: int) -> None:
    # A process user code forked that returns (or raises) out of the function is not the worker:
    # it must never speak the worker's protocol on the inherited pipes.
    if os.getpid() != worker_pid:
        os._exit(0)


def _watch_lifeline(fd: int) -> None:
    """A worker never outlives its executor (kill -9 included): the parent holds the write end of
    this pipe, so a read returns EOF exactly when every copy of it is closed, i.e. the parent died
    or dropped the worker. A thread rather than PR_SET_PDEATHSIG, which fires when the *thread*
    that spawned the worker exits, not the executor."""
    import threading

    def watch() -> None:
        while os.read(fd, 1):
            pass
        os._exit(0)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def _empty(directory: str) -> None:
    """Remove what a call left in its scratch dir. The dir itself stays: creating and removing a
    directory per call costs ~10x more than a warm call's whole round trip on overlay filesystems."""
    with os.scandir(directory) as it:
        entries = list(it)
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _run_call(fn: Callable[..., Any], name: str, msg: dict[str, Any], policy: sandbox.Policy) -> dict[str, Any]:
    cid = msg["id"]
    scratch = os.path.join(policy.scratch, CALL_DIR)
    os.chdir(scratch)
    sandbox.set_call_cpu(policy.cpu_seconds)
    reply: dict[str, Any] = {"ev": "result", "id": cid}
    try:
        reply.update(ok=True, json=_invoke(fn, name, msg))
    except _ResultError as e:
        reply.update(ok=False, kind="serialize", error=str(e))
    except MemoryError as e:
        reply.update(ok=False, kind="memory", error=_user_traceback(e))
    except BaseException as e:  # noqa: BLE001 - user code may raise anything, SystemExit included
        reply.update(ok=False, kind="error", error=_user_traceback(e))
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        _empty(scratch)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    reply["cpu"] = ru.ru_utime + ru.ru_stime
    return reply


def _private_channels(msg_fd: int, life_fd: int) -> int:
    """Move the request pipe off fd 0 (user code reading stdin, or a subprocess inheriting it,
    must not consume protocol frames) and keep every protocol fd out of user subprocesses."""
    req_fd = os.dup(0)  # dup()ed fds are not inheritable
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - stdin for the process's lifetime
    for fd in (msg_fd, life_fd):
        os.set_inheritable(fd, False)
    return req_fd


def main() -> int:
    msg_fd = int(sys.argv[1])
    req_fd = _private_channels(msg_fd, int(sys.argv[2]))
    init = read_frame(req_fd)
    if init is None:
        return 0
    policy = sandbox.Policy.from_wire(init["policy"])
    bundle = init.get("bundle")
    try:  # imported before the sandbox narrows what can be read; a pre-started worker may need it
        import cloudpickle  # noqa: F401
    except ImportError:
        pass
    call_dir = os.path.join(policy.scratch, CALL_DIR)
    os.chdir(policy.scratch)
    layers = sandbox.apply(policy)
    _watch_lifeline(int(sys.argv[2]))
    os.mkdir(call_dir, 0o700)  # after the uid drop, so the worker owns it
    os.chdir(call_dir)
    os.environ["TMPDIR"] = call_dir  # every call's temp files land in its scratch dir
    tempfile.tempdir = None
    api._bind(msg_fd, req_fd)
    fn: Callable[..., Any] | None = None
    if bundle is not None:
        fn = _load_or_report(msg_fd, bundle, layers)
        if fn is None:
            return 0
    # Pre-started workers (no bundle yet) are sandboxed and wait for a "load".
    write_frame(msg_fd, {"ev": "ready", "layers": layers, "pid": os.getpid(), "loaded": fn is not None})
    while True:
        msg = read_frame(req_fd)
        if msg is None or msg.get("op") == "exit":
            return 0
        if msg.get("op") == "load" and fn is None:
            bundle = msg["bundle"]
            fn = _load_or_report(msg_fd, bundle, layers)
            if fn is None:
                return 0
            write_frame(msg_fd, {"ev": "loaded"})
            continue
        if msg.get("op") != "call" or fn is None or bundle is None:
            continue
        reply = _run_call(fn, bundle["name"], msg, policy)
        write_frame(msg_fd, reply)
        if reply.get("kind") == "memory":
            return EXIT_MEMORY  # the heap may be in any state after MemoryError: start afresh


def _load_or_report(msg_fd: int, bundle: dict[str, Any], layers: list[str]) -> Callable[..., Any] | None:
    """The loaded function, or None after reporting the load error (the worker then exits)."""
    try:
        return load_function(bundle)
    except BaseException as e:  # noqa: BLE001 - module code may raise anything
        write_frame(msg_fd, {"ev": "load_error", "error": _user_traceback(e), "layers": layers})
        return None


if __name__ == "__main__":
    sys.exit(main())
