"""uvicorn's HTTP protocol for the gateway, answering each response with one write().

uvicorn writes a response's head when the app sends `http.response.start` and its body on
`http.response.body`: two send() calls, two TCP segments, and a client that wakes up for the head,
finds no body and sleeps again until the second one arrives. On loopback each send() also runs
the receiver's side of TCP in the sender's time. `GatewayHttpProtocol` hands uvicorn a transport
that keeps what is written during one turn of the event loop and sends it together at the end of
that turn; everything else goes to the real transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["GatewayHttpProtocol"]


class _TurnBuffered:
    """A transport whose writes within one loop turn leave as a single write."""

    __slots__ = ("_loop", "_pending", "_real")

    def __init__(self, real: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._real = real
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._real.is_closing():
            self._real.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:  # what was written before close() still goes out first
        self.flush()
        self._real.close()

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:  # is_closing, pause_reading, get_extra_info, ...
        return getattr(self._real, name)


class GatewayHttpProtocol(HttpToolsProtocol):
    """`uvicorn.run(..., http=GatewayHttpProtocol)`: see the module docstring."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_TurnBuffered(transport, self.loop))  # type: ignore[arg-type]
