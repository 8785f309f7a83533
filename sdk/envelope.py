"""RPC envelopes (protocol §1.2-§1.3): build signed requests and parse replies, without any I/O."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from . import jsonx
from .crypto import sign
from .errors import ColoniesError, ForbiddenError, ServerError, error_from_status

__all__ = [
    "EXTENSIONS",
    "Reply",
    "SESSION_PREFIX",
    "UNSIGNED",
    "build_envelope",
    "encode_payload",
    "parse_frame",
    "parse_reply",
]


def encode_payload(msg: dict[str, Any]) -> str:
    """base64 of the message JSON, formatted exactly as pycolonies does (`json.dumps` defaults),
    so our envelopes are byte-identical to pycolonies' for the same message and key."""
    return base64.b64encode(json.dumps(msg).encode("utf-8")).decode("ascii")


UNSIGNED = frozenset({"versionmsg", "getserverinfomsg", "connectionnoncemsg"})
"""Messages the server answers without checking a signature (protocol §1.2; connectionnoncemsg
is our server's, docs/SERVER.md)."""


EXTENSIONS = frozenset({"closeandassignmsg", "submitandsubscribemsg"})
"""Our server's own messages (docs/SERVER.md), which pycolonies never sends: there are no bytes
of its to match, so their payload JSON is written by orjson (~20 µs less per function spec)."""


SESSION_PREFIX = "session:"
"""A signature field of "session:<token>" stands for the identity bound to the connection
(our server's "sessions" extension, docs/SERVER.md; `sdk.fastrpc` binds its connections)."""


def build_envelope(msg: dict[str, Any], prvkey: str | None, session: str | None = None) -> str:
    """The JSON text of a signed envelope; the signature covers the base64 payload string.
    Without a key (only allowed for UNSIGNED messages) the signature is empty. With `session` (a
    token from bindconnectionmsg, for a message sent on the connection it was bound on) the
    envelope carries the session marker instead of a signature."""
    if msg["msgtype"] in EXTENSIONS:
        payload = base64.b64encode(jsonx.dumps(msg)).decode("ascii")
    else:
        payload = encode_payload(msg)
    if session is not None:
        signature = SESSION_PREFIX + session
    elif prvkey is None and msg["msgtype"] not in UNSIGNED:
        raise ValueError(f"{msg['msgtype']} must be signed")
    else:
        signature = sign(payload, prvkey) if prvkey is not None else ""
    return json.dumps({"payloadtype": msg["msgtype"], "payload": payload, "signature": signature})


class Reply:
    """A decoded reply envelope: `payloadtype`, `error` flag and the decoded payload JSON."""

    __slots__ = ("error", "payload", "payloadtype")

    def __init__(self, payloadtype: str, error: bool, payload: Any) -> None:
        self.payloadtype = payloadtype
        self.error = error
        self.payload = payload

    def raise_for_error(self, status: int) -> None:
        if not self.error:
            return
        body = self.payload if isinstance(self.payload, dict) else {}
        message = str(body.get("message", self.payload))
        code = body.get("status")
        raise error_from_status(code if isinstance(code, int) and code else status, message)


def _loads(text: str | bytes) -> Any:
    """JSON → Python: orjson (several times faster; every reply passes here), json.loads for what
    orjson refuses (e.g. NaN, which the Go server never sends but json.loads reads) or would read
    wrong (integers beyond 64 bits, which it turns into floats)."""
    return jsonx.loads(text, allow_nan=True)


def _decode(text: str | bytes, status: int) -> Reply:
    try:
        envelope = _loads(text)
        if not isinstance(envelope, dict) or "payload" not in envelope:
            raise ValueError("no payload field")
        raw = envelope["payload"]
        decoded = base64.b64decode(raw, validate=True) if raw else b""
        payload = _loads(decoded) if decoded else None
    except (ValueError, TypeError, binascii.Error) as e:
        snippet = (text[:200] if isinstance(text, str) else text[:200].decode("utf-8", "replace")).strip()
        if status >= 500 or status == 0:
            raise ServerError(f"reply is not a Colonies envelope: {snippet!r} ({e})", status) from None
        if status != 200:
            raise error_from_status(status, snippet or f"HTTP {status} without a body") from None
        raise ServerError(f"reply is not a Colonies envelope: {snippet!r} ({e})", status) from None
    return Reply(str(envelope.get("payloadtype", "")), bool(envelope.get("error", False)), payload)


def parse_reply(status: int, body: bytes) -> Any:
    """The result JSON of an HTTP reply, or the typed error it carries."""
    if not body.strip():
        if status == 200:
            # The Go server writes nothing when a stats/history membership check fails (§8.13).
            raise ForbiddenError("empty reply (the server sends none when the signer is not a member)", status)
        raise error_from_status(status, f"HTTP {status} with an empty body")
    reply = _decode(body, status)
    reply.raise_for_error(status)
    if status != 200:
        raise error_from_status(status, f"HTTP {status} without an error envelope")
    return reply.payload


def parse_frame(text: str | bytes) -> Reply:
    """A websocket frame from `/pubsub` (same envelope as an HTTP reply, no status)."""
    try:
        return _decode(text, 200)
    except ColoniesError as e:
        raise ServerError(e.message) from None
