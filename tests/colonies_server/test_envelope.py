"""Request envelope parsing and reply encoding."""

from __future__ import annotations

import base64
import json

import pytest

from colonies_server.envelope import decode_payload, encode_error, encode_reply, parse_request
from colonies_server.errors import RPCError


def _b64(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def test_parse_request_fields() -> None:
    req = parse_request(b'{"payloadtype": "x", "payload": "abc", "signature": "00"}')
    assert (req.payloadtype, req.payload, req.signature) == ("x", "abc", "00")


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"payloadtype": 3}', b'{"payloadtype": "x", "payload": 1}',
                                  b"\xff\xfe"])
def test_parse_request_errors_are_400(body: bytes) -> None:
    with pytest.raises(RPCError) as e:
        parse_request(body)
    assert e.value.status == 400


def test_decode_payload_checks_msgtype() -> None:
    assert decode_payload(_b64({"msgtype": "a", "k": 1}), "a") == {"msgtype": "a", "k": 1}
    with pytest.raises(RPCError, match="does not match payloadType") as e:
        decode_payload(_b64({"msgtype": "b"}), "a")
    assert e.value.status == 400


@pytest.mark.parametrize("payload", ["!!!", base64.b64encode(b"{not json").decode(), _b64([1, 2])])
def test_decode_payload_errors_are_400(payload: str) -> None:
    with pytest.raises(RPCError) as e:
        decode_payload(payload, "a")
    assert e.value.status == 400


def test_reply_and_error_shapes() -> None:
    ok = json.loads(encode_reply("getcolonymsg", {"name": "dev"}))
    assert ok["payloadtype"] == "getcolonymsg" and ok["error"] is False
    assert json.loads(base64.b64decode(ok["payload"])) == {"name": "dev"}
    err = json.loads(encode_error(403, "Access denied, not server owner"))
    assert err["payloadtype"] == "error" and err["error"] is True
    # The exact bytes upstream sends for this error (protocol §1.3).
    assert err["payload"] == "eyJzdGF0dXMiOjQwMywibWVzc2FnZSI6IkFjY2VzcyBkZW5pZWQsIG5vdCBzZXJ2ZXIgb3duZXIifQ=="
    assert json.loads(base64.b64decode(json.loads(encode_reply("x", None))["payload"])) is None


def test_payload_integers_past_64_bits_are_read_and_written_exactly() -> None:
    msg = {"msgtype": "closesuccessfulmsg", "out": [2**70, -(2**64), 1795417066108705750, 0.5]}
    raw = base64.b64encode(json.dumps(msg).encode()).decode()
    assert decode_payload(raw, "closesuccessfulmsg") == msg  # orjson alone: 1.1805916207174113e+21
    reply = json.loads(encode_reply("x", msg))
    assert json.loads(base64.b64decode(reply["payload"])) == msg
    nan = base64.b64encode(b'{"msgtype": "x", "out": [1180591620717411303424, NaN]}').decode()
    with pytest.raises(RPCError, match="invalid JSON"):
        decode_payload(nan, "x")  # still no NaN, also on the exact path
