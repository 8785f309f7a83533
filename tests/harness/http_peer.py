"""Scripted HTTP peers' replies: a Colonies reply envelope as raw HTTP/1.1 bytes."""

from __future__ import annotations

import base64
import json


def reply(payload: object, status: int = 200, chunked: bool = False, close: bool = False) -> bytes:
    body = json.dumps({"payloadtype": "getprocessmsg", "error": status != 200,
                       "payload": base64.b64encode(json.dumps(payload).encode()).decode()}).encode()
    head = f"HTTP/1.1 {status} X\r\n" + ("connection: close\r\n" if close else "")
    if chunked:
        mid = len(body) // 2
        chunks = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in (body[:mid], body[mid:]))
        return (head + "transfer-encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body
