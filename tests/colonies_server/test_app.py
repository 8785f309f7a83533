"""HTTP level: /health, body limit, malformed envelopes, signatures, unsupported messages, server messages."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.colonies_server._rpc import COLONY_PRVKEY, DEV_PRVKEY, SERVER_PRVKEY, Served, decode, envelope


@pytest.fixture
def s(db_url: str) -> Iterator[Served]:
    served = Served(db_url, body_limit=4096, timer_period=3600, cron_period=3600)
    yield served
    served.close()


def test_health(s: Served) -> None:
    r = s.client.http.get("/health")
    assert r.status_code == 200 and r.content == b""


def test_body_limit_is_413(s: Served) -> None:
    r = s.client.http.post("/api", content=b"x" * 5000)
    assert r.status_code == 413
    error, payload = decode(r.content)
    assert error and payload["status"] == 413


@pytest.mark.parametrize("body,status", [
    (b"not json", 400),
    (b'{"payloadtype": "getcoloniesmsg", "payload": "e30=", "signature": "zz"}', 403),
    (b'{"payloadtype": "getcoloniesmsg", "payload": "e30=", "signature": ""}', 403),
    (b'{"payloadtype": "getcoloniesmsg", "payload": "e30=", "signature": "' + b"ab" * 64 + b'"}', 403),
])
def test_malformed_requests_get_error_envelopes(s: Served, body: bytes, status: int) -> None:
    r = s.client.http.post("/api", content=body)
    error, payload = decode(r.content)
    assert r.status_code == status and error and payload["status"] == status


def test_bad_base64_and_json_payloads_are_400(s: Served) -> None:
    from sdk.crypto import sign

    for payload in ("!!notbase64", "bm90IGpzb24="):
        body = json.dumps({"payloadtype": "getcoloniesmsg", "payload": payload, "signature": sign(payload, SERVER_PRVKEY)})
        r = s.client.http.post("/api", content=body)
        assert r.status_code == 400 and decode(r.content)[0]


def test_unknown_and_unsupported_types(s: Served) -> None:
    assert s.client.err({"msgtype": "nosuchmsg"}, DEV_PRVKEY) == (403, "invalid rpcMsg.PayloadType: nosuchmsg")
    status, message = s.client.err({"msgtype": "addgeneratormsg", "generator": {}}, DEV_PRVKEY)
    assert (status, message) == (501, "addgeneratormsg: generators are not supported by this server yet")
    status, message = s.client.err({"msgtype": "getpausestatusmsg"}, DEV_PRVKEY)
    assert (status, message) == (501, "getpausestatusmsg: this operation is not supported by this server yet")


def test_msgtype_mismatch_is_400(s: Served) -> None:
    env = envelope({"msgtype": "getcolonymsg", "colonyname": "dev"}, DEV_PRVKEY)
    env["payloadtype"] = "getcoloniesmsg"
    r = s.client.http.post("/api", content=json.dumps(env))
    assert r.status_code == 400


def test_unsigned_version_and_server_info(s: Served) -> None:
    r = s.client.http.post("/api", content=json.dumps({"payloadtype": "versionmsg", "payload": "", "signature": ""}))
    assert r.status_code == 200 and decode(r.content)[1]["msgtype"] == "versionmsg"
    info = s.client.ok({"msgtype": "getserverinfomsg"}, None)
    assert info["backends"][0]["port"] == s.handle.port


def test_dev_bootstrap_and_statistics(s: Served) -> None:
    assert [c["name"] for c in s.client.ok({"msgtype": "getcoloniesmsg"}, SERVER_PRVKEY)] == ["dev"]
    names = {e["executorname"]: e["state"] for e in s.client.ok({"msgtype": "getexecutorsmsg", "colonyname": "dev"},
                                                                  DEV_PRVKEY)}
    assert names == {"myexecutor": 1}
    assert s.client.ok({"msgtype": "getusersmsg", "colonyname": "dev"}, DEV_PRVKEY)[0]["name"] == "myuser"
    s.client.submit()
    stats = s.client.ok({"msgtype": "getstatisticsmsg"}, SERVER_PRVKEY)
    assert (stats["colonies"], stats["waitingprocesses"]) == (1, 1)
    assert s.client.err({"msgtype": "getstatisticsmsg"}, COLONY_PRVKEY)[0] == 403


def test_executor_reregister_allowed_in_dev(s: Served) -> None:
    prv, name = s.client.add_executor()
    p = s.client.submit()
    s.client.assign(prv)
    prv2, _ = s.client.add_executor(name=name)  # same name, new key: old one unregistered, its work re-queued
    assert s.client.get(p["processid"])["state"] == 0
    assert s.client.assign(prv2)["processid"] == p["processid"]
    assert s.client.err({"msgtype": "assignprocessmsg", "colonyname": "dev", "timeout": -1}, prv)[0] == 403


def test_remove_executor_requeues_and_wakes_waiters(s: Served) -> None:
    import threading

    prv_a, name_a = s.client.add_executor(executortype="rq")
    prv_b, _ = s.client.add_executor(executortype="rq")
    p = s.client.submit("rq")
    assert s.client.assign(prv_a)["processid"] == p["processid"]
    got: list[str] = []
    from tests.colonies_server._rpc import Client

    other = Client(s.handle.url)
    t = threading.Thread(target=lambda: got.append(other.assign(prv_b, timeout=20)["processid"]), daemon=True)
    t.start()
    while s.runtime.hub.waiting() == 0:  # wait until B's long-poll is parked
        t.join(0.01)
    s.client.ok({"msgtype": "removeexecutormsg", "colonyname": "dev", "executorname": name_a}, COLONY_PRVKEY)
    t.join(20)
    other.close()
    assert got == [p["processid"]]
    assert s.client.get(p["processid"])["retries"] == 0


def test_disconnected_long_poll_does_not_take_work(s: Served) -> None:
    import socket

    from tests.colonies_server._rpc import envelope as env

    prv, _ = s.client.add_executor(executortype="gone")
    body = json.dumps(env({"msgtype": "assignprocessmsg", "colonyname": "dev", "timeout": 30}, prv)).encode()
    sock = socket.create_connection(("127.0.0.1", s.handle.port))
    sock.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    while s.runtime.hub.waiting() == 0:  # parked
        sock.settimeout(0.01)
        try:
            sock.recv(1)
        except TimeoutError:
            pass
    sock.close()  # the executor dies while parked
    while s.runtime.hub.waiting() != 0:  # the server notices the disconnect and unparks it
        s.client.ok({"msgtype": "versionmsg"}, None)
    p = s.client.submit("gone")
    assert s.client.get(p["processid"])["state"] == 0
