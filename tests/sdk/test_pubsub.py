"""Subscribe envelopes, frame decoding and the wait bookkeeping, without sockets."""

from __future__ import annotations

import base64
import json

import pytest

from sdk.crypto import id_from_prvkey, recover_id
from sdk.errors import ForbiddenError, ServerError
from sdk.models import Process, ProcessState
from sdk.pubsub import WaitSet, decode_frame, server_timeout, subscribe_envelopes

KEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"


def frame(payload: object, error: bool = False) -> str:
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps({"payloadtype": "subscribeprocessmsg", "payload": data, "error": error})


def test_subscribes_for_success_and_failure() -> None:
    envs = [json.loads(e) for e in subscribe_envelopes("p1", "faas", 2.5, KEY, "dev")]
    msgs = [json.loads(base64.b64decode(e["payload"])) for e in envs]
    assert [m["state"] for m in msgs] == [2, 3]
    for env, msg in zip(envs, msgs, strict=True):
        assert env["payloadtype"] == msg["msgtype"] == "subscribeprocessmsg"
        assert msg["processid"] == "p1" and msg["executortype"] == "faas" and msg["colonyname"] == "dev"
        assert msg["timeout"] == 4
        assert recover_id(env["payload"], env["signature"]) == id_from_prvkey(KEY)


def test_server_timeout_outlasts_ours() -> None:
    assert server_timeout(0) == 1 and server_timeout(0.2) == 2 and server_timeout(10) == 11


def test_decode_frame() -> None:
    p = decode_frame(frame({"processid": "p1", "state": 3, "errors": ["boom"]}))
    assert p.state is ProcessState.FAILED and p.errors == ["boom"]
    with pytest.raises(ForbiddenError, match="Invalid process"):
        decode_frame(frame({"status": 403, "message": "Invalid process with Id x"}, error=True))
    with pytest.raises(ServerError):
        decode_frame("{")


def test_wait_set() -> None:
    w = WaitSet(["a", "b", "a"])
    assert w.order == ["a", "b"]
    assert not w.offer(Process(processid="a", state=ProcessState.RUNNING))
    assert not w.offer(Process(processid="zzz", state=ProcessState.SUCCESS))  # not ours
    assert w.offer(Process(processid="a", state=ProcessState.SUCCESS))
    assert not w.done
    err = w.timeout_error(1.5)
    assert "1 process" in err.message and "b" in err.message
    assert [p.processid for p in err.processes] == ["a"]
    assert w.offer(Process(processid="b", state=ProcessState.FAILED))
    assert w.done and [p.state for p in w.results()] == [ProcessState.SUCCESS, ProcessState.FAILED]
