"""Envelope building and reply parsing, without sockets."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sdk.crypto import id_from_prvkey, recover_id
from sdk.envelope import build_envelope, encode_payload, parse_frame, parse_reply
from sdk.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ServerError,
)

KEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"


def reply(payload: Any, error: bool = False, payloadtype: str = "x") -> bytes:
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps({"payloadtype": payloadtype, "payload": data, "error": error}).encode()


def test_envelope_fields_and_signature_over_the_base64_text() -> None:
    msg = {"msgtype": "getprocessmsg", "processid": "p1"}
    env = json.loads(build_envelope(msg, KEY))
    assert env["payloadtype"] == "getprocessmsg"
    assert json.loads(base64.b64decode(env["payload"])) == msg
    assert env["payload"] == encode_payload(msg)
    assert recover_id(env["payload"], env["signature"]) == id_from_prvkey(KEY)


def test_only_version_and_server_info_go_unsigned() -> None:
    assert json.loads(build_envelope({"msgtype": "versionmsg"}, None))["signature"] == ""
    with pytest.raises(ValueError, match="must be signed"):
        build_envelope({"msgtype": "getprocessmsg"}, None)


def test_payload_is_formatted_like_pycolonies() -> None:
    # json.dumps defaults (", " and ": ", ASCII escapes): identical bytes, hence identical signatures.
    msg = {"msgtype": "addlogmsg", "message": "héllo"}
    assert base64.b64decode(encode_payload(msg)) == b'{"msgtype": "addlogmsg", "message": "h\\u00e9llo"}'


@pytest.mark.parametrize("msgtype", ["submitandsubscribemsg", "closeandassignmsg"])
def test_our_extension_messages_are_written_compactly_and_signed_the_same_way(msgtype: str) -> None:
    # pycolonies never sends these: no separators or ASCII escapes to match; integers past 64
    # bits still exact.
    msg = {"msgtype": msgtype, "spec": {"kwargs": {"name": "héllo", "n": 2**70}}, "requestid": "1"}
    env = json.loads(build_envelope(msg, KEY))
    raw = base64.b64decode(env["payload"])
    assert json.loads(raw) == msg and '"héllo"'.encode() in raw
    assert b"1180591620717411303424" in raw and b", " not in raw
    assert recover_id(env["payload"], env["signature"]) == id_from_prvkey(KEY)


def test_success_reply_gives_the_payload() -> None:
    assert parse_reply(200, reply({"colonyid": "c", "name": "dev"})) == {"colonyid": "c", "name": "dev"}
    assert parse_reply(200, reply(None)) is None
    assert parse_reply(200, reply([])) == []


def test_reply_values_read_as_json_loads_reads_them() -> None:
    # 64-bit integers exactly, non-ASCII text, and NaN/Infinity (json.loads accepts them; the
    # fast parser refuses them, so they take the fallback) all come out as json.loads gives them.
    values = [2**63 - 1, -(2**63), 0.1, "h\u00e9llo ☃", {"k": [None, True]}]
    assert parse_reply(200, reply(values)) == values
    # Past 64 bits too: orjson alone turns these into floats, silently.
    big = [2**64, 2**70, -(2**63) - 1, -(2**90), {"n": 10**30}]
    assert parse_reply(200, reply(big)) == big
    assert all(type(v) is int for v in parse_reply(200, reply(big))[:4])
    out = parse_reply(200, reply([float("nan"), float("inf")]))
    assert out[0] != out[0] and out[1] == float("inf")
    assert parse_frame(reply({"state": 2}).decode()).payload == {"state": 2}


@pytest.mark.parametrize(("status", "message", "kind"), [
    (403, "Access denied, not server owner", ForbiddenError),
    (404, "No process available for assignment", NotFoundError),
    (400, "A Colony with name dev already exists", ConflictError),
    (400, "Failed to add log, invalid JSON", BadRequestError),
])
def test_error_reply_raises_the_typed_error_with_status_and_message(status: int, message: str,
                                                                      kind: type[Exception]) -> None:
    body = reply({"status": status, "message": message}, error=True, payloadtype="error")
    with pytest.raises(kind) as info:
        parse_reply(status, body)
    assert info.value.status == status and info.value.message == message  # type: ignore[attr-defined]


def test_go_server_example_error_payload() -> None:
    body = json.dumps({"payloadtype": "error", "error": True, "payload":
                       "eyJzdGF0dXMiOjQwMywibWVzc2FnZSI6IkFjY2VzcyBkZW5pZWQsIG5vdCBzZXJ2ZXIgb3duZXIifQ=="})
    with pytest.raises(ForbiddenError, match="not server owner"):
        parse_reply(403, body.encode())


def test_empty_bodies() -> None:
    with pytest.raises(ForbiddenError, match="not a member"):
        parse_reply(200, b"")  # the Go server's silent membership failure on stats
    with pytest.raises(ServerError) as info:
        parse_reply(500, b"")  # a recovered panic
    assert info.value.status == 500


def test_non_envelope_bodies() -> None:
    with pytest.raises(ServerError, match="not a Colonies envelope"):
        parse_reply(200, b"<html>proxy</html>")
    with pytest.raises(ServerError):
        parse_reply(502, b"Bad Gateway")
    with pytest.raises(NotFoundError):
        parse_reply(404, b"404 page not found")
    with pytest.raises(ServerError):
        parse_reply(200, json.dumps({"payload": "%%%", "error": False}).encode())


def test_frames() -> None:
    frame = parse_frame(reply({"processid": "p", "state": 2}, payloadtype="subscribeprocessmsg").decode())
    assert frame.payloadtype == "subscribeprocessmsg" and not frame.error
    assert frame.payload["state"] == 2
    err = parse_frame(reply({"status": 403, "message": "Invalid process with Id p"}, error=True))
    with pytest.raises(ForbiddenError):
        err.raise_for_error(400)
    with pytest.raises(ServerError):
        parse_frame("not json")
