"""The worker protocol's framing: 4-byte big-endian length, then one UTF-8 JSON object.

Both sides use it: the worker with blocking `read_frame`/`write_frame`, the pool parent with a
non-blocking `FrameBuffer` fed from `select`. Stdlib only, because the worker imports it; the
parent's `FrameBuffer` decodes with orjson when it is installed (it is, with the SDK), a few
times faster than json.loads for the frame every call's result arrives in.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_FRAME", "FrameBuffer", "FrameError", "encode", "read_frame", "write_frame"]

MAX_FRAME = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")


class FrameError(ValueError):
    """A frame that is too large or is not a JSON object."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame; raises FrameError for a message over MAX_FRAME."""
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    if len(body) > MAX_FRAME:
        raise FrameError(f"message of {len(body)} bytes exceeds the {MAX_FRAME}-byte frame limit")
    return _HEADER.pack(len(body)) + body


def _decode(body: bytes, loads: Callable[[bytes], Any] = json.loads) -> dict[str, Any]:
    try:
        message = loads(body)
    except ValueError as e:  # orjson.JSONDecodeError is one too
        raise FrameError(f"frame is not JSON: {e}") from e
    if not isinstance(message, dict):
        raise FrameError(f"frame is a {type(message).__name__}, not an object")
    return message


def write_frame(fd: int, message: dict[str, Any]) -> None:
    """Write one whole frame to a blocking fd."""
    view = memoryview(encode(message))
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> dict[str, Any] | None:
    """Read one frame from a blocking fd; None at end of file."""
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise FrameError(f"incoming frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
    body = _read_exact(fd, size)
    if body is None:
        return None
    return _decode(body)


class FrameBuffer:
    """Accumulates bytes read non-blockingly and yields the complete frames in them."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._loads = _fast_loads()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        frames: list[dict[str, Any]] = []
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if size > MAX_FRAME:
                raise FrameError(f"incoming frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
            end = _HEADER.size + size
            if len(self._buf) < end:
                break
            frames.append(_decode(bytes(self._buf[_HEADER.size:end]), self._loads))
            del self._buf[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered."""
        return len(self._buf)


def _fast_loads() -> Callable[[bytes], Any]:
    """The SDK's orjson reader (exact for integers past 64 bits, which a nested call's arguments
    may hold); json.loads where the SDK is missing. Imported here, never in the worker."""
    try:
        from sdk.jsonx import loads
    except ImportError:
        return json.loads
    return loads
