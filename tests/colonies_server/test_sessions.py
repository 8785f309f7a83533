"""Connection sessions (colonies_server/sessions.py, docs/SERVER.md "Connection sessions"): a client
on this host binds a connection to its identity with a signed, single-use, per-connection nonce,
then sends envelopes with a session marker instead of a signature."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from colonies_server.errors import RPCError
from colonies_server.sessions import Session, is_local_peer
from sdk.crypto import id_from_prvkey, new_prvkey
from tests.colonies_server.conftest import envelope, funcspec, start_server
from tests.harness.server import ServerHandle

DEV_COLONY = "dev"
DEV_PRVKEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"  # the dev "cli" executor


class Conn:
    """One kept-alive HTTP connection to POST /api (sessions belong to a connection)."""

    def __init__(self, server: ServerHandle) -> None:
        self.http = http.client.HTTPConnection(server.host, server.port, timeout=10)

    def close(self) -> None:
        self.http.close()

    def post(self, env: dict[str, Any]) -> tuple[int, Any]:
        return self.post_text(json.dumps(env))

    def post_text(self, body: str, **headers: str) -> tuple[int, Any]:
        self.http.request("POST", "/api", body=body, headers={"Content-Type": "application/json", **headers})
        r = self.http.getresponse()
        body = json.loads(r.read())
        return r.status, json.loads(base64.b64decode(body["payload"]))

    def nonce(self) -> str:
        status, payload = self.post(envelope({"msgtype": "connectionnoncemsg"}, None))
        assert status == 200, payload
        return str(payload["nonce"])

    def bind(self, prvkey: str) -> tuple[str, dict[str, str]]:
        """(token, the signed bind envelope)."""
        env = envelope({"msgtype": "bindconnectionmsg", "nonce": self.nonce()}, prvkey)
        status, payload = self.post(env)
        assert status == 200, payload
        return str(payload["session"]), env


def marked(msg: dict[str, Any], token: str) -> dict[str, str]:
    env = envelope(msg, None)
    env["signature"] = "session:" + token
    return env


def get_executors() -> dict[str, Any]:
    return {"msgtype": "getexecutorsmsg", "colonyname": DEV_COLONY}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    srv = start_server(tmp_path_factory)
    try:
        yield srv.handle
    finally:
        srv.stop()


@pytest.fixture()
def conn(server: ServerHandle) -> Iterator[Conn]:
    c = Conn(server)
    try:
        yield c
    finally:
        c.close()


def test_a_bound_connection_takes_the_session_marker_as_the_bound_identity(server: ServerHandle, conn: Conn) -> None:
    token, _ = conn.bind(DEV_PRVKEY)
    status, executors = conn.post(marked(get_executors(), token))
    assert status == 200 and any(e["executorid"] == id_from_prvkey(DEV_PRVKEY) for e in executors)
    # What the session stands for is the bound identity: a process submitted under it is its own.
    status, p = conn.post(marked({"msgtype": "submitfuncspecmsg", "spec": funcspec(DEV_COLONY)}, token))
    assert status == 200 and p["initiatorid"] == id_from_prvkey(DEV_PRVKEY)
    # Signed envelopes still work on the bound connection, from any identity.
    status, _ = conn.post(envelope(get_executors(), DEV_PRVKEY))
    assert status == 200


def test_roles_are_still_checked_per_message(conn: Conn) -> None:
    token, _ = conn.bind(new_prvkey())  # any key may bind; it is not a member of anything
    status, payload = conn.post(marked(get_executors(), token))
    assert status == 403 and "not a member" in payload["message"]


def test_a_session_is_good_only_on_its_own_connection(server: ServerHandle, conn: Conn) -> None:
    token, _ = conn.bind(DEV_PRVKEY)
    other = Conn(server)
    try:
        status, payload = other.post(marked(get_executors(), token))
        assert status == 403 and payload["message"].startswith("Failed to recover ID from signature")
        other.nonce()  # a nonce of its own does not make another connection's token good there
        status, _ = other.post(marked(get_executors(), token))
        assert status == 403
    finally:
        other.close()


def test_a_captured_bind_message_is_worth_nothing_elsewhere_or_again(server: ServerHandle, conn: Conn) -> None:
    _, captured = conn.bind(DEV_PRVKEY)
    status, payload = conn.post(captured)  # its nonce was used up
    assert status == 403 and "nonce" in payload["message"]
    other = Conn(server)
    try:
        other.nonce()
        status, payload = other.post(captured)  # signed over another connection's nonce
        assert status == 403 and "nonce" in payload["message"]
        third = Conn(server)
        status, payload = third.post(captured)  # no nonce asked at all
        third.close()
        assert status == 403
    finally:
        other.close()


def test_wrong_token_new_nonce_and_bind_under_a_session_are_refused(conn: Conn) -> None:
    token, _ = conn.bind(DEV_PRVKEY)
    assert conn.post(marked(get_executors(), "0" * 64))[0] == 403
    assert conn.post(marked(get_executors(), token[:-1]))[0] == 403
    assert conn.post(marked(get_executors(), "é" * 64))[0] == 403  # non-ASCII: refused, not a crash
    surrogate = json.dumps(marked(get_executors(), "x")).replace("session:x", "session:\\ud800")
    assert conn.post_text(surrogate)[0] in (400, 403)  # a lone surrogate: refused, not a crash
    assert conn.post(marked(get_executors(), token))[0] == 200
    status, payload = conn.post(marked({"msgtype": "bindconnectionmsg", "nonce": "x"}, token))
    assert status == 403 and "must be signed" in payload["message"]
    assert conn.post(marked(get_executors(), token))[0] == 200
    conn.nonce()  # asking again ends the session
    assert conn.post(marked(get_executors(), token))[0] == 403


def test_a_nonce_that_is_not_text_or_not_ascii_is_refused(conn: Conn) -> None:
    for nonce in ("é" * 64, 7, None):
        conn.nonce()
        status, payload = conn.post(envelope({"msgtype": "bindconnectionmsg", "nonce": nonce}, DEV_PRVKEY))
        assert status == 403 and "nonce" in payload["message"], (nonce, payload)
    conn.nonce()  # a lone surrogate is not even JSON to the server: a 400, not a crash
    status, payload = conn.post(envelope({"msgtype": "bindconnectionmsg", "nonce": "\ud800"}, DEV_PRVKEY))
    assert status == 400, payload


def test_a_marker_without_any_session_is_refused_like_a_bad_signature(conn: Conn) -> None:
    status, payload = conn.post(marked(get_executors(), "ab" * 32))
    assert status == 403 and payload["message"].startswith("Failed to recover ID from signature")


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP", "Via"])
def test_a_connection_that_came_through_a_proxy_gets_no_session(conn: Conn, header: str) -> None:
    """A loopback connection carrying a proxy's headers speaks for a client elsewhere."""
    token, _ = conn.bind(DEV_PRVKEY)
    status, _ = conn.post_text(json.dumps(envelope(get_executors(), DEV_PRVKEY)), **{header: "203.0.113.9"})
    assert status == 200  # signed messages go on as before
    assert conn.post(marked(get_executors(), token))[0] == 403  # the session it had is gone
    status, payload = conn.post(envelope({"msgtype": "connectionnoncemsg"}, None))
    assert status == 403 and "this host" in payload["message"]  # and it gets no new one


def test_version_names_the_extension(conn: Conn) -> None:
    status, version = conn.post(envelope({"msgtype": "versionmsg"}, None))
    assert status == 200 and "sessions" in version["extensions"]


def test_pubsub_socket_binds_and_takes_frames_under_its_session(server: ServerHandle) -> None:
    with ws_connect(f"ws://{server.host}:{server.port}/pubsub") as ws:
        ws.send(json.dumps(envelope({"msgtype": "connectionnoncemsg"}, None)))
        nonce = json.loads(base64.b64decode(json.loads(ws.recv(timeout=10))["payload"]))["nonce"]
        ws.send(json.dumps(envelope({"msgtype": "bindconnectionmsg", "nonce": nonce}, DEV_PRVKEY)))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["payloadtype"] == "bindconnectionmsg" and not reply.get("error")
        token = json.loads(base64.b64decode(reply["payload"]))["session"]
        ws.send(json.dumps(marked({"msgtype": "submitandsubscribemsg", "spec": funcspec(DEV_COLONY),
                                   "requestid": "r1", "timeout": 5, "ack": "processid"}, token)))
        ack = json.loads(base64.b64decode(json.loads(ws.recv(timeout=10))["payload"]))
        assert ack["requestid"] == "r1" and len(ack["processid"]) == 64
        ws.send(json.dumps(marked({"msgtype": "submitandsubscribemsg", "spec": funcspec(DEV_COLONY),
                                   "requestid": "r2", "timeout": 5, "ack": "processid"}, "cd" * 32)))
        refused = json.loads(ws.recv(timeout=10))
        assert refused["error"] and "Failed to recover ID" in json.loads(base64.b64decode(refused["payload"]))["message"]


def test_pubsub_socket_opened_through_a_proxy_gets_no_nonce(server: ServerHandle) -> None:
    with ws_connect(f"ws://{server.host}:{server.port}/pubsub",
                    additional_headers={"X-Forwarded-For": "203.0.113.9"}) as ws:
        ws.send(json.dumps(envelope({"msgtype": "connectionnoncemsg"}, None)))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["error"] and "this host" in json.loads(base64.b64decode(reply["payload"]))["message"]


def test_pubsub_marker_on_an_unbound_socket_is_refused(server: ServerHandle) -> None:
    with ws_connect(f"ws://{server.host}:{server.port}/pubsub") as ws:
        ws.send(json.dumps(marked({"msgtype": "subscribeprocessmsg", "processid": "ab" * 32, "state": 2,
                                   "timeout": 1, "executortype": "cli", "colonyname": DEV_COLONY}, "ab" * 32)))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["error"] and json.loads(base64.b64decode(reply["payload"]))["status"] == 403


def test_a_server_with_sessions_off_refuses_and_does_not_advertise(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = start_server(tmp_path_factory, sessions=False)
    c = Conn(srv.handle)
    try:
        status, payload = c.post(envelope({"msgtype": "connectionnoncemsg"}, None))
        assert status == 403 and "turned off" in payload["message"]
        status, version = c.post(envelope({"msgtype": "versionmsg"}, None))
        assert "sessions" not in version["extensions"]
    finally:
        c.close()
        srv.stop()


@pytest.mark.parametrize(("peer", "local"), [
    (("127.0.0.1", 5000), True), (("127.9.8.7", 1), True), (("::1", 5000, 0, 0), True),
    (("::ffff:127.0.0.1", 5000, 0, 0), True), ("", True), ("/run/colonies.sock", True),
    (("10.0.0.5", 5000), False), (("192.168.1.2", 1), False), (("::ffff:10.0.0.5", 1, 0, 0), False),
    (("2001:db8::1", 1, 0, 0), False), (None, False), (("not-an-ip", 1), False), ((), False),
])
def test_only_this_host_counts_as_local(peer: Any, local: bool) -> None:
    assert is_local_peer(peer) is local


def test_a_connection_from_another_host_gets_no_nonce() -> None:
    with pytest.raises(RPCError) as e:
        Session(local=False).issue_nonce(enabled=True)
    assert e.value.status == 403 and "this host" in e.value.message
