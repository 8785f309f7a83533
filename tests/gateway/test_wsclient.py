"""gateway.wsclient against a real third-party websocket server (the `websockets` library) and
against raw TCP servers that break the protocol in the ways a client must refuse."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from gateway.wsclient import MAX_HEAD, WebSocketClosed, WebSocketError, accept_for, connect, encode_frame


@asynccontextmanager
async def ws_server(handler: Callable[[ServerConnection], Awaitable[None]]) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/pubsub"


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 300_000])
async def test_text_and_binary_round_trip_at_every_length_encoding(size: int) -> None:
    # The server unmasks and parses our frames: a wrong mask or length would change the echo.
    async with ws_server(_echo) as url:
        ws = await connect(url)
        text = "".join(chr(0x41 + i % 26) for i in range(size))
        await ws.send(text)
        assert await ws.recv() == text
        data = bytes(i % 251 for i in range(size))
        await ws.send(data)
        assert await ws.recv() == data
        await ws.close()


async def test_non_ascii_text_arrives_as_text() -> None:
    async with ws_server(_echo) as url:
        ws = await connect(url)
        await ws.send("température ≥ 21 °C ✓")
        assert await ws.recv() == "température ≥ 21 °C ✓"
        await ws.close()


async def test_fragmented_messages_are_joined() -> None:
    async def fragments(ws: ServerConnection) -> None:
        await ws.send(["{\"a\": ", "1, \"b\"", ": 2}"])  # one text message in three frames
        await ws.send([b"\x00\x01", b"\x02"])
        await ws.wait_closed()

    async with ws_server(fragments) as url:
        ws = await connect(url)
        assert await ws.recv() == '{"a": 1, "b": 2}'
        assert await ws.recv() == b"\x00\x01\x02"
        await ws.close()


async def test_a_ping_is_answered_with_a_pong() -> None:
    answered = asyncio.Event()

    async def pinger(ws: ServerConnection) -> None:
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        answered.set()
        await ws.send("after the ping")
        await ws.wait_closed()

    async with ws_server(pinger) as url:
        ws = await connect(url)
        assert await ws.recv() == "after the ping"
        assert answered.is_set()
        await ws.close()


async def test_listen_delivers_buffered_then_live_messages_and_returns_on_close() -> None:
    async def talker(ws: ServerConnection) -> None:
        await ws.send("first")
        await ws.send("second")
        await ws.recv()  # the client's go-ahead
        await ws.send("third")
        await ws.close(4000, "done here")

    async with ws_server(talker) as url:
        ws = await connect(url)
        await asyncio.sleep(0)  # let the first frames arrive before listening, if they will
        got: list[Any] = []
        listening = asyncio.create_task(ws.listen(got.append))
        await ws.send("go")
        await asyncio.wait_for(listening, 5)
        assert got == ["first", "second", "third"]
        with pytest.raises(WebSocketClosed) as closed:
            await ws.send("too late")
        assert closed.value.code == 4000 and closed.value.reason == "done here"


async def test_recv_after_the_server_closes_raises_with_its_code() -> None:
    async def closer(ws: ServerConnection) -> None:
        await ws.send("bye")
        await ws.close(1001, "going away")

    async with ws_server(closer) as url:
        ws = await connect(url)
        assert await ws.recv() == "bye"
        with pytest.raises(WebSocketClosed) as closed:
            await ws.recv()
        assert closed.value.code == 1001
        assert not ws.is_open
        await ws.close()  # closing a closed socket is a no-op


async def test_our_close_completes_the_handshake_with_the_server() -> None:
    seen: list[Any] = []

    async def watcher(ws: ServerConnection) -> None:
        await ws.wait_closed()
        seen.append(ws.close_code)

    async with ws_server(watcher) as url:
        ws = await connect(url)
        await ws.close()
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen == [1000]  # the server saw a proper close frame, not a dropped connection


# -- servers that break the protocol -------------------------------------------------------------

@asynccontextmanager
async def raw_server(reply: Callable[[bytes], bytes], then: bytes = b"",
                     hold: bool = True) -> AsyncIterator[str]:
    """A TCP server that reads the upgrade request, answers `reply(key)`, sends `then` and holds the
    connection open (or closes it)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        writer.write(reply(key) + then)
        await writer.drain()
        if hold:
            await reader.read()  # until the client goes
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/pubsub"
    finally:
        server.close()
        await server.wait_closed()


def _upgrade(key: bytes, accept: str | None = None, extra: str = "") -> bytes:
    return (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept if accept is not None else accept_for(key.decode())}\r\n"
            f"{extra}\r\n").encode()


async def test_a_refused_upgrade_is_a_websocket_error_naming_the_status() -> None:
    async with raw_server(lambda key: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") as url:
        with pytest.raises(WebSocketError, match="403 Forbidden"):
            await connect(url)


async def test_a_wrong_accept_header_is_refused() -> None:
    async with raw_server(lambda key: _upgrade(key, accept="c29tZXRoaW5nIGVsc2U=")) as url:
        with pytest.raises(WebSocketError, match="Sec-WebSocket-Accept"):
            await connect(url)


async def test_an_extension_nobody_offered_is_refused() -> None:
    async with raw_server(lambda key: _upgrade(key, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")) as url:
        with pytest.raises(WebSocketError, match="extensions"):
            await connect(url)


async def test_an_endless_handshake_head_is_refused() -> None:
    async with raw_server(lambda key: b"HTTP/1.1 101 Switching Protocols\r\n" + b"X: y\r\n" * (MAX_HEAD // 5)) as url:
        with pytest.raises(WebSocketError, match="too large"):
            await connect(url)


async def test_a_server_that_hangs_up_during_the_handshake_is_an_error() -> None:
    async with raw_server(lambda key: b"HTTP/1.1 101 Swi", hold=False) as url:
        with pytest.raises(WebSocketError, match="during the handshake"):
            await connect(url)


@pytest.mark.parametrize(("frame", "why"), [
    (encode_frame(0x1, b"masked", b"abcd")[:1] + bytes([0x86]) + b"abcd" + b"masked", "masked"),
    (bytes([0xC1, 0x02]) + b"hi", "reserved"),
    (bytes([0x80, 0x02]) + b"hi", "continuation"),
    (bytes([0x09, 0x00]), "fragmented"),
    (bytes([0x83, 0x02]) + b"hi", "unknown opcode 3"),
    (bytes([0x8B, 0x00]), "unknown opcode 11"),
])
async def test_protocol_errors_end_the_socket_with_1002(frame: bytes, why: str) -> None:
    async with raw_server(_upgrade, then=frame) as url:
        ws = await connect(url)
        with pytest.raises(WebSocketClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.code == 1002
        assert why in closed.value.reason


async def test_text_that_is_not_utf8_ends_the_socket_with_1007() -> None:
    async with raw_server(_upgrade, then=bytes([0x81, 0x02]) + b"\xff\xfe") as url:
        ws = await connect(url)
        with pytest.raises(WebSocketClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.code == 1007


async def test_an_oversized_message_ends_the_socket_with_1009() -> None:
    head = bytes([0x82, 126]) + struct.pack("!H", 1001)
    async with raw_server(_upgrade, then=head) as url:  # the header alone is enough to refuse it
        ws = await connect(url, max_size=1000)
        with pytest.raises(WebSocketClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.code == 1009


async def test_close_gives_up_on_a_server_that_never_answers() -> None:
    async with raw_server(_upgrade) as url:  # holds the connection, never echoes our close
        ws = await connect(url, close_timeout=0.2)
        await asyncio.wait_for(ws.close(), 5)
        assert not ws.is_open


async def test_urls_other_than_ws_and_wss_are_refused() -> None:
    with pytest.raises(ValueError, match="ws:// or wss://"):
        await connect("http://127.0.0.1:1/pubsub")


def test_the_same_exchanges_on_uvloop() -> None:
    # The gateway runs on uvloop, whose transports are not asyncio's classes.
    uvloop = pytest.importorskip("uvloop")

    async def exchanges() -> None:
        await test_text_and_binary_round_trip_at_every_length_encoding(70_000)
        await test_fragmented_messages_are_joined()
        await test_a_ping_is_answered_with_a_pong()
        await test_listen_delivers_buffered_then_live_messages_and_returns_on_close()
        await test_our_close_completes_the_handshake_with_the_server()
        await test_protocol_errors_end_the_socket_with_1002(bytes([0xC1, 0x02]) + b"hi", "reserved")

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(exchanges())
