"""Abusive clients: replayed envelopes, slow clients holding connections, huge and malformed bodies.

The protocol's behaviour on replay is documented in docs/RELIABILITY.md: a Colonies envelope is
a signature over the payload only — no nonce, no timestamp — so the server cannot tell a replay
from a new request. What is and is not replay-safe is pinned here.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from sdk.crypto import id_from_prvkey, new_prvkey, sign
from tests.harness.server import (
    COLONY_PRVKEY,
    DEV_COLONY,
    DEV_PRVKEY,
    SERVER_PRVKEY,
    ProcessServer,
    ServerHandle,
)

from .figures import report
from .stack import Stack, rss_kib

SPEC = {"funcname": "replayed", "args": [], "kwargs": {}, "maxexectime": 30, "maxretries": 0, "maxwaittime": -1,
        "priority": 0, "conditions": {"colonyname": DEV_COLONY, "executortype": "rt"}}


def signed(msg: dict[str, object], prvkey: str) -> bytes:
    payload = base64.b64encode(json.dumps(msg).encode()).decode()
    return json.dumps({"payloadtype": msg["msgtype"], "payload": payload,
                       "signature": sign(payload, prvkey)}).encode()


def result(r: httpx.Response) -> object:
    return json.loads(base64.b64decode(r.json()["payload"]))


@pytest.fixture(scope="module")
def proc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, ProcessServer]]:
    root = tmp_path_factory.mktemp("abuse-server")
    srv = ProcessServer(db=f"sqlite:///{root / 'colonies.db'}", dev=True, log=root / "server.log")
    try:
        yield srv.start(), srv
    finally:
        srv.stop()


# -- replay ------------------------------------------------------------------------------------

def test_replay_of_envelopes_what_is_and_is_not_replay_safe(proc_server: tuple[ServerHandle, ProcessServer]) -> None:
    handle, _ = proc_server
    with httpx.Client(base_url=handle.url, timeout=10) as http:
        # An executor of type "rt", so the replayed assign/close can be observed.
        exkey = new_prvkey()
        for msg, key in (
                ({"msgtype": "addexecutormsg", "executor": {"executorid": id_from_prvkey(exkey), "executortype": "rt",
                                                            "executorname": "replay-ex", "colonyname": DEV_COLONY}},
                 COLONY_PRVKEY),
                ({"msgtype": "approveexecutormsg", "colonyname": DEV_COLONY, "executorname": "replay-ex"}, COLONY_PRVKEY)):
            assert http.post("/api", content=signed(msg, key)).status_code == 200

        submit = signed({"msgtype": "submitfuncspecmsg", "spec": SPEC}, DEV_PRVKEY)
        first, again = (http.post("/api", content=submit) for _ in range(2))
        assert first.status_code == again.status_code == 200
        ids = {result(first)["processid"], result(again)["processid"]}  # type: ignore[index]
        # NOT replay-safe: the same signed submit creates a second process.
        assert len(ids) == 2

        assign = signed({"msgtype": "assignprocessmsg", "colonyname": DEV_COLONY, "timeout": -1}, exkey)
        got = [http.post("/api", content=assign) for _ in range(3)]
        assert [r.status_code for r in got] == [200, 200, 404]  # each replay takes the next process
        pid = result(got[0])["processid"]  # type: ignore[index]

        close = signed({"msgtype": "closesuccessfulmsg", "processid": pid, "out": ["first"]}, exkey)
        assert http.post("/api", content=close).status_code == 200
        replayed_close = http.post("/api", content=close)
        # Replay-safe in effect: closing a successful process again succeeds (upstream quirk) with the same output.
        assert replayed_close.status_code == 200
        fail_after = http.post("/api", content=signed({"msgtype": "closefailedmsg", "processid": pid,
                                                       "errors": ["late"]}, exkey))
        assert fail_after.status_code >= 400  # a successful process cannot be failed afterwards
        stored = result(http.post("/api", content=signed({"msgtype": "getprocessmsg", "processid": pid}, DEV_PRVKEY)))
        assert stored["state"] == 2 and stored["out"] == ["first"]  # type: ignore[index]

        other = result(got[1])["processid"]  # type: ignore[index]
        log = signed({"msgtype": "addlogmsg", "processid": other, "message": "once"}, exkey)
        assert [http.post("/api", content=log).status_code for _ in range(2)] == [200, 200]
        logs = result(http.post("/api", content=signed({"msgtype": "getlogsmsg", "colonyname": DEV_COLONY,
                                                        "processid": other, "executorname": "", "count": 10,
                                                        "since": 0}, DEV_PRVKEY)))
        # NOT replay-safe: a replayed log line is stored twice.
        assert [entry["message"] for entry in logs] == ["once", "once"]  # type: ignore[union-attr]
    report("replay", submit_replay_processes=len(ids), assign_replays="200,200,404",
           close_replay_status=replayed_close.status_code, fail_after_success_status=fail_after.status_code,
           addlog_replay_lines=2)


def test_idempotency_key_makes_a_replayed_gateway_call_run_once(shared_stack: Stack) -> None:
    body = {"token": "idem-1", "x": 7}
    headers = {"Idempotency-Key": "replay-key-1"}
    replies = [httpx.post(f"{shared_stack.url}/function/echo", json=body, headers=headers, timeout=60)
               for _ in range(3)]
    async_again = httpx.post(f"{shared_stack.url}/async-function/echo", json=body,
                             headers={"Idempotency-Key": "replay-key-1"}, timeout=60)
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert len({r.json()["processid"] for r in replies}) == 1
    stored = [p for p in shared_stack.processes() if p["spec"]["kwargs"].get("token") == "idem-1"]
    conflict = httpx.post(f"{shared_stack.url}/function/echo", json={"token": "idem-1", "x": 8}, headers=headers,
                          timeout=60)
    report("gateway_idempotency_replay", replies=len(replies), processes=len(stored),
           async_with_same_key=async_again.status_code, other_args_same_key=conflict.status_code)
    assert len(stored) == 1
    assert conflict.status_code == 422


# -- slow clients ------------------------------------------------------------------------------

def slowloris(host: str, port: int, n: int, seconds: float, good: httpx.Client, good_path: str,
              good_body: bytes | None) -> dict[str, float]:
    """Hold `n` connections that trickle headers (half) or a body (half) for `seconds`, while one
    good request after another must be answered (each bounded by the client's timeout)."""
    socks: list[socket.socket] = []
    for i in range(n):
        s = socket.create_connection((host, port), timeout=5)
        s.setblocking(False)
        if i % 2:
            s.send(b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
        else:
            s.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    latencies: list[float] = []
    failures = 0
    dropped = 0
    end = time.monotonic() + seconds
    tick = 0
    while time.monotonic() < end:
        tick += 1
        for i, s in enumerate(socks):
            if s.fileno() < 0:
                continue
            try:
                s.send(b" " if i % 2 else f"X-Slow-{tick}: 1\r\n".encode())
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                dropped += 1
                s.close()
        t0 = time.monotonic()
        try:
            r = good.post(good_path, content=good_body) if good_body is not None else good.get(good_path)
            ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        latencies.append(time.monotonic() - t0)
        failures += not ok
        time.sleep(0.25)  # pacing of the trickle, not synchronisation
    still_open = sum(1 for s in socks if s.fileno() >= 0)
    for s in socks:
        s.close()
    latencies.sort()
    return {"slow_connections": n, "held_s": seconds, "good_requests": len(latencies), "good_failed": failures,
            "good_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "good_max_ms": round(1000 * latencies[-1], 1), "dropped_by_server": dropped, "still_open": still_open}


def test_slowloris_against_the_server(proc_server: tuple[ServerHandle, ProcessServer]) -> None:
    handle, srv = proc_server
    body = signed({"msgtype": "getcoloniesmsg"}, SERVER_PRVKEY)
    with httpx.Client(base_url=handle.url, timeout=5) as good:
        figures = slowloris("127.0.0.1", handle.port, 400, 8.0, good, "/api", body)
        after = good.post("/api", content=body)
    report("slowloris_server", **figures)
    assert srv.proc is not None and srv.proc.poll() is None
    assert figures["good_failed"] == 0 and after.status_code == 200


def test_slowloris_against_the_gateway(shared_stack: Stack) -> None:
    with httpx.Client(base_url=shared_stack.url, timeout=5) as good:
        figures = slowloris("127.0.0.1", shared_stack.gateway_port, 400, 8.0, good, "/functions", None)
        after = good.post("/function/echo", json={"token": "after-slowloris", "x": 3}, timeout=60)
    report("slowloris_gateway", **figures)
    assert shared_stack.gateway.alive()
    assert figures["good_failed"] == 0
    assert after.status_code == 200 and after.json()["result"]["sq"] == 9


# -- malformed and huge bodies at the gateway ----------------------------------------------------

@pytest.mark.parametrize(("what", "content"), [
    ("invalid UTF-8", b'{"token": "\xff\xfe", "x": 1}'),
    ("deeply nested", b"[" * 200_000 + b"]" * 200_000),
    ("deeply nested object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("truncated", b'{"token": "t", "x": '),
    ("NaN", b'{"token": "t", "x": NaN}'),
])
def test_gateway_bad_bodies_are_400_and_it_keeps_answering(shared_stack: Stack, what: str, content: bytes) -> None:
    r = httpx.post(f"{shared_stack.url}/function/echo", content=content,
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code in (400, 422), (what, r.status_code, r.text[:300])
    assert "error" in r.json()
    ok = httpx.post(f"{shared_stack.url}/function/echo", json={"token": "after-bad", "x": 2}, timeout=60)
    assert ok.status_code == 200 and ok.json()["result"]["sq"] == 4


def test_gateway_bad_paths_and_queries_are_never_5xx(shared_stack: Stack) -> None:
    """Invalid UTF-8 in a query value is decoded with U+FFFD (Starlette) and reaches the function
    that way; everything else here is a 4xx."""
    statuses = {}
    for path in ["/function/%ff%fe", "/function/echo?token=%ff&x=1", "/function/" + "a" * 5000,
                 "/processes/%00", "/processes/" + "f" * 64 + "/logs?count=-1", "/function/echo?x=1e999999&token=t"]:
        r = httpx.get(f"{shared_stack.url}{path}", timeout=30)
        statuses[path[:40]] = r.status_code
        assert r.status_code < 500, (path, r.status_code, r.text[:300])
        assert r.status_code >= 400 or "%ff&" in path, (path, r.status_code, r.text[:300])
    report("gateway_bad_paths", statuses=statuses)


def test_gateway_refuses_a_huge_body_without_buffering_it(shared_stack: Stack) -> None:
    """256 MiB offered to a function's URL: refused (413) before the gateway holds it in memory."""
    pid = shared_stack.gateway.pid
    before = rss_kib(pid)
    offered = 256

    def chunks() -> Iterator[bytes]:
        yield b'{"token": "huge", "x": 1, "pad": "'
        block = b"p" * (1 << 20)
        for _ in range(offered):
            yield block
        yield b'"}'

    try:
        r = httpx.post(f"{shared_stack.url}/function/echo", content=chunks(),
                       headers={"Content-Type": "application/json"}, timeout=120)
        status = r.status_code
        text = r.text[:200]
    except httpx.TransportError as e:
        status, text = 0, repr(e)
    grown_mib = (rss_kib(pid) - before) / 1024
    report("gateway_huge_body", offered_mib=offered, status=status, reply=text, gateway_rss_growth_mib=round(grown_mib, 1))
    assert shared_stack.gateway.alive()
    assert grown_mib < 64, (f"the gateway read the whole {offered} MiB body into memory (RSS +{grown_mib:.0f} MiB) "
                            f"before answering {status}: it has no request body limit")
    assert status in (0, 413), f"{status} {text}"
