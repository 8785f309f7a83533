"""Extension: a submission with an "idempotencykey" is answered with the process the first one
with that key stored (docs/SERVER.md), so a client whose answer was lost can send it again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.colonies_server._rpc import DEV_PRVKEY, Served, decode, envelope

SPEC = {"funcname": "f", "kwargs": {"x": 1}, "maxexectime": -1, "maxwaittime": -1, "maxretries": -1,
        "conditions": {"colonyname": "dev", "executortype": "t"}}


@pytest.fixture
def s(db_url: str) -> Iterator[Served]:
    served = Served(db_url, timer_period=3600, cron_period=3600)
    yield served
    served.close()


def _submit(key: Any, **spec: Any) -> dict[str, Any]:
    return {"msgtype": "submitfuncspecmsg", "spec": {**SPEC, **spec}, "idempotencykey": key}


def _waiting(s: Served) -> list[dict[str, Any]]:
    return s.client.ok({"msgtype": "getprocessesmsg", "colonyname": "dev", "count": 100, "state": 0},
                       DEV_PRVKEY) or []


def test_a_resent_submission_gets_the_first_process_in_its_current_state(s: Served) -> None:
    first = s.client.ok(_submit("k1"), DEV_PRVKEY)
    again = s.client.ok(_submit("k1"), DEV_PRVKEY)
    assert again["processid"] == first["processid"] and len(_waiting(s)) == 1
    prv, _ = s.client.add_executor()
    assert s.client.assign(prv)["processid"] == first["processid"]
    running = s.client.ok(_submit("k1"), DEV_PRVKEY)
    assert running["processid"] == first["processid"] and running["state"] == 1  # not queued again
    other = s.client.ok(_submit("k2"), DEV_PRVKEY)
    assert other["processid"] != first["processid"]


def test_without_a_key_or_with_an_empty_one_every_submission_is_new(s: Served) -> None:
    a = s.client.ok({"msgtype": "submitfuncspecmsg", "spec": SPEC}, DEV_PRVKEY)
    b = s.client.ok(_submit(""), DEV_PRVKEY)
    c = s.client.ok(_submit(None), DEV_PRVKEY)
    assert len({a["processid"], b["processid"], c["processid"]}) == 3


def test_a_key_reused_for_another_call_is_refused_and_stores_nothing(s: Served) -> None:
    first = s.client.ok(_submit("k"), DEV_PRVKEY)
    status, message = s.client.err(_submit("k", kwargs={"x": 2}), DEV_PRVKEY)
    assert status == 409 and "idempotencykey 'k' was already used for another function call" in message
    assert [p["processid"] for p in _waiting(s)] == [first["processid"]]


def test_a_key_is_the_submitter_s_own(s: Served) -> None:
    """Another member using the same key gets a process of its own: no one can name another's."""
    prv, _ = s.client.add_executor()
    mine = s.client.ok(_submit("shared"), DEV_PRVKEY)
    theirs = s.client.ok(_submit("shared"), prv)
    assert mine["processid"] != theirs["processid"] and len(_waiting(s)) == 2


@pytest.mark.parametrize("key", [7, ["k"], "k" * 513])
def test_a_malformed_key_is_a_clear_400(s: Served, key: Any) -> None:
    status, message = s.client.err(_submit(key), DEV_PRVKEY)
    assert status == 400 and "idempotencykey" in message
    assert _waiting(s) == []


def test_concurrent_resends_store_one_process(s: Served) -> None:
    """As when a client resends while the first attempt is still being written (PostgreSQL: on
    several connections at once, where the second insert meets the first's row)."""
    body = json.dumps(envelope(_submit("race"), DEV_PRVKEY))

    def send(_: int) -> str:
        r = httpx.post(f"{s.handle.url}/api", content=body, timeout=30)
        error, payload = decode(r.content)
        assert r.status_code == 200 and not error, payload
        return str(payload["processid"])
    with ThreadPoolExecutor(8) as pool:
        pids = set(pool.map(send, range(16)))
    assert len(pids) == 1 and [p["processid"] for p in _waiting(s)] == list(pids)


def test_the_socket_submission_shares_keys_and_sends_an_ended_process_s_end_at_once(s: Served) -> None:
    first = s.client.ok(_submit("both"), DEV_PRVKEY)
    prv, _ = s.client.add_executor()
    s.client.assign(prv)
    s.client.ok({"msgtype": "closesuccessfulmsg", "processid": first["processid"], "out": [42]}, prv)
    frame = {"msgtype": "submitandsubscribemsg", "spec": SPEC, "requestid": "r", "timeout": 0.5,
             "ack": "processid", "idempotencykey": "both"}
    with connect(f"ws://127.0.0.1:{s.handle.port}/pubsub") as ws:
        ws.send(json.dumps(envelope(frame, DEV_PRVKEY)))
        frames = [decode(ws.recv(timeout=10).encode()) for _ in range(2)]
    (ack_error, ack), (end_error, end) = frames
    assert not ack_error and ack == {"requestid": "r", "processid": first["processid"]}
    assert not end_error and end["processid"] == first["processid"] and end["out"] == [42]
    assert s.client.get(first["processid"])["state"] == 2 and _waiting(s) == []
