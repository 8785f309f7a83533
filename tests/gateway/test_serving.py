"""The gateway's uvicorn protocol: writes of one event-loop turn leave as one write."""

from __future__ import annotations

import asyncio
import socket

from gateway.serving import _TurnBuffered


async def test_writes_of_one_turn_leave_together_and_close_sends_them_first() -> None:
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    try:
        buffered = _TurnBuffered(transport, loop)  # type: ignore[arg-type]
        buffered.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        buffered.write(b"{}")
        assert buffered.get_write_buffer_size() == 40
        try:
            early = peer.recv(1024)
        except BlockingIOError:
            early = b""
        assert early == b""  # nothing sent before the turn ends
        await asyncio.sleep(0)
        assert peer.recv(1024) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"

        buffered.write(b"last words")
        buffered.close()
        await asyncio.sleep(0.05)
        assert peer.recv(1024) == b"last words"
        assert buffered.is_closing()  # the rest goes to the real transport
    finally:
        transport.close()
        peer.close()
