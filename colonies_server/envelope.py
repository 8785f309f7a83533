"""RPC envelopes: parse a request envelope, decode its payload, build success and error replies."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from . import jsonx
from .errors import RPCError

__all__ = ["Request", "decode_payload", "encode_error", "encode_reply", "parse_request"]


@dataclass(frozen=True)
class Request:
    """A request envelope as received: the payload is still the signed base64 string."""

    payloadtype: str
    payload: str
    signature: str


def parse_request(body: bytes | str) -> Request:
    """Parse the outer envelope; 400 for anything that is not a JSON object with string fields."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RPCError(400, f"Failed to parse RPC message, invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise RPCError(400, "Failed to parse RPC message, expected a JSON object")
    pt, payload, sig = obj.get("payloadtype"), obj.get("payload", ""), obj.get("signature", "")
    if not isinstance(pt, str):
        raise RPCError(400, "Failed to parse RPC message, payloadtype must be a string")
    if not isinstance(payload, str) or not isinstance(sig, str):
        raise RPCError(400, "Failed to parse RPC message, payload and signature must be strings")
    return Request(pt, payload, sig)


def decode_payload(payload: str, payloadtype: str) -> dict[str, Any]:
    """base64 → JSON object; checks msgtype == payloadtype (400 otherwise, like upstream)."""
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RPCError(400, f"Failed to parse {payloadtype}, invalid base64 payload") from None
    try:
        msg = jsonx.loads(raw)  # exact for integers past 64 bits (orjson alone reads them as floats)
    except orjson.JSONDecodeError:
        raise RPCError(400, f"Failed to parse {payloadtype}, invalid JSON") from None
    if not isinstance(msg, dict):
        raise RPCError(400, f"Failed to parse {payloadtype}, invalid JSON: expected an object")
    if msg.get("msgtype") != payloadtype:
        raise RPCError(400, f"Failed to parse {payloadtype}, msg.MsgType does not match payloadType")
    return msg


def _envelope(payloadtype: str, payload_json: bytes, error: bool) -> bytes:
    b64 = base64.b64encode(payload_json)
    return b"".join((b'{"payloadtype":', orjson.dumps(payloadtype), b',"payload":"', b64,
                     b'","error":', b"true" if error else b"false", b"}"))


def encode_reply(payloadtype: str, result: Any) -> bytes:
    """A success envelope whose payload is base64(JSON(result))."""
    return _envelope(payloadtype, jsonx.dumps(result), False)


def encode_error(status: int, message: str, **extra: Any) -> bytes:
    """An error envelope: payloadtype "error", payload {"status", "message"} (+ `extra` fields)."""
    return _envelope("error", jsonx.dumps({"status": status, "message": message, **extra}), True)
