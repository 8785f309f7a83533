"""WebSocket /pubsub: several subscriptions on one socket, failure ends a SUCCESS wait, errors, streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.colonies_server._rpc import DEV_PRVKEY, Served, decode, envelope


@pytest.fixture
def s(db_url: str) -> Iterator[Served]:
    served = Served(db_url, timer_period=3600, cron_period=3600)
    yield served
    served.close()


def _sub(pid: str, state: int, timeout: float = 10) -> str:
    return json.dumps(envelope({"msgtype": "subscribeprocessmsg", "processid": pid, "executortype": "",
                                "state": state, "timeout": timeout, "colonyname": "dev"}, DEV_PRVKEY))


def _frame(raw: str | bytes) -> tuple[bool, dict[str, Any], str]:
    env = json.loads(raw)
    error, payload = decode(raw if isinstance(raw, bytes) else raw.encode())
    return error, payload, env["payloadtype"]


def test_two_subscriptions_on_one_socket(s: Served) -> None:
    prv, _ = s.client.add_executor()
    p1, p2 = s.client.submit(), s.client.submit()
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_sub(p1["processid"], 2))
        ws.send(_sub(p2["processid"], 1))
        assert s.client.assign(prv)["processid"] == p1["processid"]  # RUNNING: neither subscription matches
        s.client.ok({"msgtype": "closesuccessfulmsg", "processid": p1["processid"], "out": ["done"]}, prv)
        assert s.client.assign(prv)["processid"] == p2["processid"]
        seen = {}
        for _ in range(2):
            _, f, kind = _frame(ws.recv(timeout=10))
            assert kind == "subscribeprocessmsg"
            seen[f["processid"]] = f["state"]
        assert seen == {p1["processid"]: 2, p2["processid"]: 1}


def test_already_in_state_gets_an_immediate_frame_and_close_at_timeout(s: Served) -> None:
    p = s.client.submit()
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_sub(p["processid"], 0, timeout=0.2))
        _, f, _ = _frame(ws.recv(timeout=10))
        assert f["processid"] == p["processid"] and f["state"] == 0
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)  # a proper close frame once the only subscription expired


def test_success_subscription_ends_on_failure(s: Served) -> None:
    prv, _ = s.client.add_executor()
    p = s.client.submit()
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_sub(p["processid"], 2))
        s.client.assign(prv)
        s.client.ok({"msgtype": "closefailedmsg", "processid": p["processid"], "errors": ["bad"]}, prv)
        _, f, _ = _frame(ws.recv(timeout=10))
        assert f["state"] == 3 and f["errors"] == ["bad"]


def test_unknown_process_and_bad_signature_get_error_frames(s: Served) -> None:
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_sub("0" * 64, 2))
        error, f, kind = _frame(ws.recv(timeout=10))
        assert error and kind == "error" and f == {"status": 403, "message": f"Invalid process with Id {'0' * 64}"}
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        bad = json.loads(_sub("0" * 64, 2))
        bad["signature"] = "00"
        ws.send(json.dumps(bad))
        error, f, _ = _frame(ws.recv(timeout=10))
        assert error and f["status"] == 403


def test_subscribe_processes_stream_for_executors_only(s: Served) -> None:
    prv, _ = s.client.add_executor(executortype="stream")
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(json.dumps(envelope({"msgtype": "subscribeprocessesmsg", "executortype": "stream", "state": 0,
                                     "timeout": 10, "colonyname": "dev"}, prv)))
        # The subscription is registered asynchronously: submit until the first frame arrives.
        p = s.client.submit("stream")
        for _ in range(100):
            try:
                _, f, kind = _frame(ws.recv(timeout=0.2))
                break
            except TimeoutError:
                p = s.client.submit("stream")
        else:
            raise AssertionError("no frame from subscribeprocessesmsg")
        assert kind == "subscribeprocessmsg" and f["spec"]["conditions"]["executortype"] == "stream"
        assert f["processid"] in {p["processid"]} or f["state"] == 0
    from sdk.crypto import new_prvkey

    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(json.dumps(envelope({"msgtype": "subscribeprocessesmsg", "executortype": "stream", "state": 0,
                                     "timeout": 10, "colonyname": "dev"}, new_prvkey())))
        error, f, _ = _frame(ws.recv(timeout=10))
        assert error and f == {"status": 403, "message": "executor not found"}


def test_pycolonies_wait_returns_on_success_and_failure(s: Served) -> None:
    from pycolonies import Colonies, func_spec

    prv, _ = s.client.add_executor(executortype="pyc")
    c = Colonies("127.0.0.1", s.handle.port)
    p = c.submit_func_spec(func_spec("f", [], "dev", "pyc"), DEV_PRVKEY)
    s.client.assign(prv)
    s.client.ok({"msgtype": "closefailedmsg", "processid": p.processid, "errors": ["x"]}, prv)
    assert c.wait(p, 10, DEV_PRVKEY).state == 3  # upstream would hang until the timeout here


def _submit_frame(requestid: str, prvkey: str = DEV_PRVKEY, timeout: float = 10, ack: str | None = None,
                  **spec: Any) -> str:
    full = {"funcname": "f", "conditions": {"colonyname": "dev", "executortype": "t"}, **spec}
    msg = {"msgtype": "submitandsubscribemsg", "spec": full, "requestid": requestid, "timeout": timeout}
    if ack is not None:
        msg["ack"] = ack
    return json.dumps(envelope(msg, prvkey))


def test_submit_and_subscribe_acknowledges_then_sends_the_end(s: Served) -> None:
    """Extension (docs/SERVER.md): one frame submits and subscribes; SUCCESS and FAILED both end it."""
    prv, _ = s.client.add_executor()
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_submit_frame("r1", kwargs={"x": 1}))
        ws.send(_submit_frame("r2"))
        acks = {}
        for _ in range(2):
            error, f, kind = _frame(ws.recv(timeout=10))
            assert not error and kind == "submitandsubscribemsg"
            acks[f["requestid"]] = f["process"]
        assert acks["r1"]["state"] == 0 and acks["r1"]["spec"]["kwargs"] == {"x": 1}
        assert s.client.get(acks["r1"]["processid"])["state"] == 0  # stored, like submitfuncspecmsg
        first = s.client.assign(prv)
        s.client.ok({"msgtype": "closesuccessfulmsg", "processid": first["processid"], "out": ["done"]}, prv)
        _, f, kind = _frame(ws.recv(timeout=10))
        assert kind == "subscribeprocessmsg" and f["processid"] == first["processid"] and f["out"] == ["done"]
        second = s.client.assign(prv)
        s.client.ok({"msgtype": "closefailedmsg", "processid": second["processid"], "errors": ["bad"]}, prv)
        _, f, _ = _frame(ws.recv(timeout=10))
        assert f["processid"] == second["processid"] and f["state"] == 3
        assert {first["processid"], second["processid"]} == {a["processid"] for a in acks.values()}


def test_a_submission_may_ask_for_an_acknowledgement_with_the_id_alone(s: Served) -> None:
    prv, _ = s.client.add_executor()
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_submit_frame("r1", ack="processid"))
        error, f, kind = _frame(ws.recv(timeout=10))
        assert not error and kind == "submitandsubscribemsg" and set(f) == {"requestid", "processid"}
        assert s.client.get(f["processid"])["state"] == 0
        p = s.client.assign(prv)
        s.client.ok({"msgtype": "closesuccessfulmsg", "processid": p["processid"], "out": [1]}, prv)
        _, end, kind = _frame(ws.recv(timeout=10))
        assert kind == "subscribeprocessmsg" and end["processid"] == f["processid"] == p["processid"]


def test_a_refused_submit_on_the_socket_gets_an_error_frame_with_its_requestid(s: Served) -> None:
    from sdk.crypto import new_prvkey

    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_submit_frame("nobody", prvkey=new_prvkey()))
        error, f, kind = _frame(ws.recv(timeout=10))
        assert error and kind == "error" and f["requestid"] == "nobody" and f["status"] == 403
        assert "not a member" in f["message"]
        ws.send(_submit_frame("bad", conditions={"colonyname": "dev", "executortype": "t"}, maxretries="x"))
        error, f, _ = _frame(ws.recv(timeout=10))
        assert error and f["requestid"] == "bad" and f["status"] == 400
    assert s.client.ok({"msgtype": "getprocessesmsg", "colonyname": "dev", "count": 100, "state": 0},
                       DEV_PRVKEY) is None  # neither was stored


def _subscribed(s: Served, pid: str) -> int:
    async def count() -> int:
        return len(s.runtime.hub._by_process.get(pid, ()))
    return s.run(count())


def test_a_socket_submission_s_subscription_ends_with_its_end_frame_and_the_socket_with_its_timeout(
        s: Served) -> None:
    prv, _ = s.client.add_executor()
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_submit_frame("done", timeout=2))
        ws.send(_submit_frame("never", timeout=0.5))  # nobody runs it: its subscription just expires
        acks = {}
        for _ in range(2):
            _, f, _ = _frame(ws.recv(timeout=10))
            acks[f["requestid"]] = f["process"]["processid"]
        done, never = acks["done"], acks["never"]
        assert _subscribed(s, done) == 1 and _subscribed(s, never) == 1
        assert s.client.assign(prv)["processid"] == done
        s.client.ok({"msgtype": "closesuccessfulmsg", "processid": done, "out": ["ok"]}, prv)
        _, f, _ = _frame(ws.recv(timeout=10))
        assert f["processid"] == done and f["state"] == 2
        assert _subscribed(s, done) == 0  # ended with its end frame, not held to its timeout
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.8)  # the socket stays open for the longest timeout (2 s)...
        assert _subscribed(s, never) == 0  # ...while the other one ended at its own (0.5 s)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)  # then a proper close frame


def _batch_frame(calls: list[dict[str, Any]], prvkey: str = DEV_PRVKEY, timeout: float = 10, **extra: Any) -> str:
    full = [{"spec": {"funcname": "f", "conditions": {"colonyname": "dev", "executortype": "t"}, **c.pop("spec", {})},
             **c} for c in calls]
    return json.dumps(envelope({"msgtype": "submitandsubscribemsg", "calls": full, "timeout": timeout, **extra},
                               prvkey))


def test_a_batch_submits_every_call_in_order_under_one_signature(s: Served) -> None:
    """Extension "submitbatch": one frame, one signature, several calls; each gets its own
    acknowledgement and end frame, and they queue in the order given."""
    prv, _ = s.client.add_executor()
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_batch_frame([{"requestid": f"r{i}", "spec": {"kwargs": {"i": i}}} for i in range(3)],
                             ack="processid"))
        acks = {}
        for _ in range(3):
            error, f, kind = _frame(ws.recv(timeout=10))
            assert not error and kind == "submitandsubscribemsg"
            acks[f["requestid"]] = f["processid"]
        for i in range(3):  # FIFO: the batch's order is the queue's
            p = s.client.assign(prv)
            assert p["processid"] == acks[f"r{i}"] and p["spec"]["kwargs"] == {"i": i}
            s.client.ok({"msgtype": "closesuccessfulmsg", "processid": p["processid"], "out": [i]}, prv)
            _, end, kind = _frame(ws.recv(timeout=10))
            assert kind == "subscribeprocessmsg" and end["processid"] == p["processid"] and end["out"] == [i]


def test_without_acknowledgements_the_keyed_id_is_the_process_and_the_slim_end_is_all_that_comes(
        s: Served) -> None:
    from sdk.crypto import id_from_prvkey
    from sdk.messages import keyed_process_id

    prv, _ = s.client.add_executor()
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_batch_frame([{"requestid": "a", "idempotencykey": "k-a"}, {"requestid": "b", "idempotencykey": "k-b"}],
                             ack="none", end="slim"))
        want = {keyed_process_id(id_from_prvkey(DEV_PRVKEY), "dev", k) for k in ("k-a", "k-b")}
        for _ in range(2):  # nothing is acknowledged: the first frames are the ends
            p = s.client.assign(prv, timeout=10)
            assert p["processid"] in want
            s.client.ok({"msgtype": "closesuccessfulmsg", "processid": p["processid"], "out": [{"big": 2**70}]}, prv)
            error, end, kind = _frame(ws.recv(timeout=10))
            assert not error and kind == "subscribeprocessmsg"
            assert end == {"processid": p["processid"], "state": 2, "out": [{"big": 2**70}], "errors": []}
            want.discard(p["processid"])
        assert not want
        # Sent again with the same keys (a socket that broke): the stored processes answer, ended.
        ws.send(_batch_frame([{"requestid": "a2", "idempotencykey": "k-a"}], ack="none", end="slim"))
        _, end, _ = _frame(ws.recv(timeout=10))
        assert end["processid"] == keyed_process_id(id_from_prvkey(DEV_PRVKEY), "dev", "k-a") and end["state"] == 2
    assert s.client.ok({"msgtype": "getprocessesmsg", "colonyname": "dev", "count": 100, "state": 2},
                       DEV_PRVKEY) is not None


def test_a_batch_refuses_calls_one_by_one_and_malformed_batches_as_a_whole(s: Served) -> None:
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(_batch_frame([{"requestid": "nokey"}, {"requestid": "badspec", "idempotencykey": "k",
                                                         "spec": {"maxretries": "x"}}], ack="none"))
        seen = {}
        for _ in range(2):
            error, f, kind = _frame(ws.recv(timeout=10))
            assert error and kind == "error"
            seen[f["requestid"]] = (f["status"], f["message"])
        assert seen["nokey"][0] == 400 and "idempotencykey" in seen["nokey"][1]
        assert seen["badspec"][0] == 400 and "maxretries" in seen["badspec"][1]
        for calls in ([], "x", [1], [{}] * 1001):
            msg = {"msgtype": "submitandsubscribemsg", "calls": calls, "timeout": 5}
            ws.send(json.dumps(envelope(msg, DEV_PRVKEY)))
            error, f, _ = _frame(ws.recv(timeout=10))
            assert error and f["status"] == 400 and "calls" in f["message"], calls
    assert s.client.ok({"msgtype": "getprocessesmsg", "colonyname": "dev", "count": 100, "state": 0},
                       DEV_PRVKEY) is None  # nothing was stored


def test_versionmsg_names_the_extensions(s: Served) -> None:
    version = s.client.ok({"msgtype": "versionmsg"}, None)
    assert {"submitbatch", "submitandsubscribe", "closeandassign", "idempotencykey"} <= set(version["extensions"])
