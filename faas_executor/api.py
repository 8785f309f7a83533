"""The API user code gets inside a worker: call another deployed function through the executor.

    from faas_executor.api import acall, call
    fahrenheit = call("convert", 21)            # plain functions
    fahrenheit = await acall("convert", 21)     # async def functions: the loop keeps running

The request goes over the worker's pipe to its parent executor, which runs the newest version of
that function in another of its sandboxed workers and answers with the result or the error text;
user code never holds a key. Stdlib only: imported inside the sandbox.
"""

from __future__ import annotations

import threading
from typing import Any

from .channel import read_frame, write_frame

__all__ = ["RemoteCallError", "acall", "call"]


class RemoteCallError(Exception):
    """The called function failed (the message is its error text) or could not be run."""


class _Link:
    def __init__(self, request_fd: int, reply_fd: int) -> None:
        self.request_fd = request_fd
        self.reply_fd = reply_fd
        self.lock = threading.Lock()


_link: _Link | None = None


def _bind(request_fd: int, reply_fd: int) -> None:
    """Called once by the worker: where requests go (to the parent) and replies come from."""
    global _link
    _link = _Link(request_fd, reply_fd)


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Run deployed function `name` with JSON-serializable arguments; return its result."""
    if _link is None:
        raise RuntimeError("faas_executor.api.call works only inside a colonyfaas worker")
    with _link.lock:  # one outstanding nested call per worker; replies come back in order
        write_frame(_link.request_fd, {"ev": "call", "name": name, "args": list(args), "kwargs": kwargs})
        reply = read_frame(_link.reply_fd)
    if reply is None:
        raise RemoteCallError("the executor closed the worker's channel")
    if reply.get("ok"):
        return reply.get("value")
    raise RemoteCallError(str(reply.get("error") or f"call of {name!r} failed"))


async def acall(name: str, *args: Any, **kwargs: Any) -> Any:
    """`call` for `async def` functions: waits in a thread, so the call's event loop runs its other
    tasks meanwhile (a plain `call` there would stop them until the answer came). Nested calls of
    one worker still go one at a time, in the order they were made."""
    import asyncio  # imported by the worker only for async functions, like their loop

    if _link is None:
        raise RuntimeError("faas_executor.api.acall works only inside a colonyfaas worker")
    return await asyncio.to_thread(call, name, *args, **kwargs)
