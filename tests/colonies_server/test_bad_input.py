"""Malformed requests get a clear error envelope with the right status, and the server keeps answering."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from sdk.crypto import sign
from tests.colonies_server.conftest import (
    Colony,
    Reply,
    Rpc,
    encode_payload,
    envelope,
    funcspec,
    poll,
    start_server,
)
from tests.harness.server import COLONY_ID, COLONY_PRVKEY, DEV_COLONY, DEV_PRVKEY, SERVER_PRVKEY, ServerHandle

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
BODY_LIMIT = 16 * 1024 * 1024


def assert_error(reply: Reply, status: int) -> None:
    assert reply.status == status, reply.describe()
    env = reply.envelope
    assert env["error"] is True and env["payloadtype"] == "error", reply.describe()
    payload = reply.payload
    assert payload["status"] == status and isinstance(payload["message"], str) and payload["message"]


@pytest.fixture(autouse=True)
def _server_still_answers(rpc: Rpc) -> Iterator[None]:
    """After every bad request the server answers a good one (checked after the test body)."""
    yield
    version = rpc.call({"msgtype": "versionmsg"}, None)
    assert version.status == 200 and not version.error, version.describe()
    colonies = rpc.call({"msgtype": "getcoloniesmsg"}, SERVER_PRVKEY)
    assert colonies.status == 200 and "dev" in [c["name"] for c in colonies.payload], colonies.describe()


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b'{"payloadtype": "versionmsg"', b"\xff\xfe\x00",
                                  b"[]", b'"a string"', b"null", b"42"],
                         ids=["empty", "text", "open-brace", "truncated", "bad-utf8", "array", "string", "null",
                              "number"])
def test_body_that_is_not_an_envelope_is_400(rpc: Rpc, body: bytes) -> None:
    assert_error(rpc.post_raw(body), 400)


def test_payload_that_is_not_a_string_is_400(rpc: Rpc) -> None:
    assert_error(rpc.post({"payloadtype": "getcoloniesmsg", "payload": 123, "signature": "00"}), 400)


def test_bad_base64_payload_is_400(rpc: Rpc) -> None:
    payload = "this is *not* base64!"
    reply = rpc.post({"payloadtype": "getcoloniesmsg", "payload": payload, "signature": sign(payload, SERVER_PRVKEY)})
    assert_error(reply, 400)


def test_payload_json_not_an_object_is_400(rpc: Rpc) -> None:
    payload = base64.b64encode(b"[1, 2, 3]").decode()
    reply = rpc.post({"payloadtype": "getcoloniesmsg", "payload": payload, "signature": sign(payload, SERVER_PRVKEY)})
    assert_error(reply, 400)
    payload = base64.b64encode(b"{broken").decode()
    reply = rpc.post({"payloadtype": "getcoloniesmsg", "payload": payload, "signature": sign(payload, SERVER_PRVKEY)})
    assert_error(reply, 400)


def test_msgtype_mismatch_is_400(rpc: Rpc) -> None:
    reply = rpc.call({"msgtype": "getcoloniesmsg"}, SERVER_PRVKEY, payloadtype="getstatisticsmsg")
    assert_error(reply, 400)
    assert "msg.MsgType does not match payloadType" in reply.message


def _signed(msg: dict[str, object]) -> dict[str, str]:
    return envelope(msg, SERVER_PRVKEY)


@pytest.mark.parametrize("mangle", [
    lambda s: s[:128],  # 64 bytes
    lambda s: s + "00",  # 66 bytes
    lambda s: "",  # missing
    lambda s: "zz" + s[2:],  # not hex
    lambda s: s[:-1],  # odd length
], ids=["64-bytes", "66-bytes", "empty", "not-hex", "odd-length"])
def test_malformed_signature_is_403(rpc: Rpc, mangle) -> None:  # type: ignore[no-untyped-def]
    env = _signed({"msgtype": "getcoloniesmsg"})
    env["signature"] = mangle(env["signature"])
    assert_error(rpc.post(env), 403)


def test_high_s_signature_is_403(rpc: Rpc) -> None:
    env = _signed({"msgtype": "getcoloniesmsg"})
    sig = bytes.fromhex(env["signature"])
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    # (r, n - s) with the flipped recovery id recovers the same key: only the low-S rule refuses it.
    env["signature"] = (r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v ^ 1])).hex()
    assert_error(rpc.post(env), 403)


def test_recovery_id_above_3_is_403(rpc: Rpc) -> None:
    env = _signed({"msgtype": "getcoloniesmsg"})
    env["signature"] = env["signature"][:128] + "1b"
    reply = rpc.post(env)
    assert reply.status == 403 and reply.error, reply.describe()


def test_unknown_payloadtype_is_403(rpc: Rpc) -> None:
    reply = rpc.call({"msgtype": "frobnicatemsg"}, SERVER_PRVKEY)
    assert_error(reply, 403)
    assert reply.message == "invalid rpcMsg.PayloadType: frobnicatemsg"


def test_empty_payloadtype_is_403(rpc: Rpc) -> None:
    assert_error(rpc.call({"msgtype": ""}, SERVER_PRVKEY), 403)


def test_oversized_body_is_413(rpc: Rpc) -> None:
    filler = "A" * (BODY_LIMIT + 1024)
    body = json.dumps({"payloadtype": "getcoloniesmsg", "payload": filler, "signature": ""})
    try:
        reply = rpc.post_raw(body)
    except httpx.TransportError as e:  # the server must answer 413, not drop the connection
        pytest.fail(f"server dropped the connection instead of answering 413: {e!r}")
    assert_error(reply, 413)


def test_body_just_under_the_limit_is_processed(rpc: Rpc) -> None:
    msg = {"msgtype": "getcoloniesmsg", "pad": "x" * (BODY_LIMIT // 2)}
    reply = rpc.call(msg, SERVER_PRVKEY)
    assert reply.status == 200 and not reply.error, reply.describe()


def test_deeply_nested_body_is_400(rpc: Rpc) -> None:
    depth = 100_000
    assert_error(rpc.post_raw("[" * depth + "]" * depth), 400)
    assert_error(rpc.post_raw('{"a":' * depth + "1" + "}" * depth), 400)


def test_deeply_nested_payload_is_400(rpc: Rpc) -> None:
    depth = 100_000
    text = '{"msgtype": "submitfuncspecmsg", "spec": ' + "[" * depth + "]" * depth + "}"
    payload = base64.b64encode(text.encode()).decode()
    reply = rpc.post({"payloadtype": "submitfuncspecmsg", "payload": payload,
                      "signature": sign(payload, SERVER_PRVKEY)})
    assert_error(reply, 400)


def _spec(**changes: object) -> dict[str, object]:
    spec = funcspec(DEV_COLONY, "bad-input-type")
    for key, value in changes.items():
        if key in spec["conditions"]:
            spec["conditions"][key] = value
        else:
            spec[key] = value
    return spec


# (signer, message, acceptable statuses): type confusion and out-of-range values inside well-formed,
# signed messages are the caller's fault (4xx with a message), never a 500 or a dropped connection.
CALLER_ERRORS = [
    (SERVER_PRVKEY, {"msgtype": "addcolonymsg", "colony": "not an object"}, {400}),
    (SERVER_PRVKEY, {"msgtype": "addcolonymsg", "colony": {"colonyid": 5, "name": ["x"]}}, {400}),
    (SERVER_PRVKEY, {"msgtype": "addcolonymsg", "colony": {"colonyid": "ab" * 32, "name": "\ud800"}}, {200, 400}),
    (DEV_PRVKEY, {"msgtype": "getcolonymsg", "colonyname": {"a": 1}}, {400, 403}),
    (DEV_PRVKEY, {"msgtype": "getprocessmsg", "processid": None}, {400, 404}),
    (DEV_PRVKEY, {"msgtype": "getprocessmsg", "processid": 5}, {400, 404}),
    (DEV_PRVKEY, {"msgtype": "getprocessesmsg", "colonyname": DEV_COLONY, "count": "ten", "state": 0}, {400}),
    (DEV_PRVKEY, {"msgtype": "getprocessesmsg", "colonyname": DEV_COLONY, "count": 10**30, "state": 0}, {400}),
    (DEV_PRVKEY, {"msgtype": "getprocessesmsg", "colonyname": DEV_COLONY, "count": 10, "state": 7}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": "x"}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(priority="high")}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(priority=50001)}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(priority=10**30)}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(args="notalist")}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(kwargs=[1])}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(env={"a": 1})}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(maxexectime=1.5)}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(maxwaittime=10**15)}, {200, 400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(executornames="x")}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(cpu="lots")}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(mem="5XB")}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitfuncspecmsg", "spec": _spec(conditions=None)}, {400, 403}),
    (DEV_PRVKEY, {"msgtype": "assignprocessmsg", "colonyname": DEV_COLONY, "timeout": "soon"}, {400}),
    (DEV_PRVKEY, {"msgtype": "closefailedmsg", "processid": "0" * 64, "errors": "x"}, {400, 500}),
    (DEV_PRVKEY, {"msgtype": "closesuccessfulmsg", "processid": "0" * 64, "out": {"a": 1}}, {400, 500}),
    (DEV_PRVKEY, {"msgtype": "addlogmsg", "processid": "0" * 64, "message": 5}, {400, 500}),
    (DEV_PRVKEY, {"msgtype": "getlogsmsg", "colonyname": DEV_COLONY, "processid": "x", "executorname": "",
                  "count": "x", "since": 0}, {400}),
    (DEV_PRVKEY, {"msgtype": "addattributemsg", "attribute": "x"}, {400}),
    (DEV_PRVKEY, {"msgtype": "submitworkflowspecmsg", "spec": {"colonyname": DEV_COLONY, "functionspecs": "x"}},
     {400}),
    (DEV_PRVKEY, {"msgtype": "submitworkflowspecmsg", "spec": "x"}, {400}),
    (DEV_PRVKEY, {"msgtype": "addcronmsg", "cron": {"name": "c", "colonyname": DEV_COLONY, "interval": -1,
                                                    "cronexpression": "* * * * * *", "workflowspec": {"x": 1}}},
     {400}),
    (DEV_PRVKEY, {"msgtype": "getprocesshistmsg", "colonyname": DEV_COLONY, "executorid": "", "seconds": 2**62,
                  "state": 0}, {200, 400}),
    (DEV_PRVKEY, {"msgtype": "submitworkflowspecmsg", "spec": {"colonyname": DEV_COLONY, "functionspecs": [
        funcspec(DEV_COLONY, "bad-input-type", "n1", maxwaittime=10**15)]}}, {200, 400}),
    (DEV_PRVKEY, {"msgtype": "addfilemsg", "file": {"colonyname": DEV_COLONY, "label": 5, "name": "n"}}, {400}),
    (DEV_PRVKEY, {"msgtype": "getfilemsg", "colonyname": DEV_COLONY, "label": ["x"], "name": "n"}, {400}),
]


@pytest.mark.parametrize("signer,msg,statuses", CALLER_ERRORS,
                         ids=[f"{i}-{m['msgtype']}" for i, (_, m, _) in enumerate(CALLER_ERRORS)])
def test_caller_errors_are_4xx_not_500(rpc: Rpc, signer: str, msg: dict[str, object], statuses: set[int]) -> None:
    reply = rpc.call(msg, signer)
    assert reply.status in statuses, f"{msg}: {reply.describe()}"
    if reply.status != 200:
        assert_error(reply, reply.status)


def test_huge_maxexectime_does_not_poison_the_queue(rpc: Rpc) -> None:
    """A deadline far in the future must be refused at submit or handled at assign: one such process must
    not make every later assign of its executor type fail (a member could block a colony's executors)."""
    executortype = "huge-deadline"
    ident = rpc.add_executor(rpc_dev_colony(), executortype)
    huge = rpc.call({"msgtype": "submitfuncspecmsg", "spec": funcspec(DEV_COLONY, executortype,
                                                                      maxexectime=10**15)}, DEV_PRVKEY)
    assert huge.status in (200, 400), huge.describe()
    normal = rpc.submit(DEV_COLONY, DEV_PRVKEY, executortype)
    expected = {normal["processid"]} | ({huge.payload["processid"]} if huge.status == 200 else set())
    got = set()
    for _ in expected:
        reply = rpc.assign(DEV_COLONY, ident.prvkey)
        assert reply.status == 200, reply.describe()
        got.add(reply.payload["processid"])
    assert got == expected


def rpc_dev_colony() -> Colony:
    return Colony(DEV_COLONY, COLONY_PRVKEY, COLONY_ID)


def test_unsigned_versionmsg_with_garbage_payload_still_works(rpc: Rpc) -> None:
    reply = rpc.post({"payloadtype": "versionmsg", "payload": "%%%", "signature": "nope"})
    assert reply.status == 200 and not reply.error, reply.describe()


def test_health(module_server: ServerHandle) -> None:
    r = httpx.get(f"{module_server.url}/health", timeout=10)
    assert r.status_code == 200


def test_payload_is_signed_base64_text_not_json(rpc: Rpc) -> None:
    """A signature over the decoded JSON (not the base64 string) recovers another id: a role failure."""
    msg = {"msgtype": "getcoloniesmsg"}
    payload = encode_payload(msg)
    reply = rpc.post({"payloadtype": "getcoloniesmsg", "payload": payload,
                      "signature": sign(json.dumps(msg), SERVER_PRVKEY)})
    assert_error(reply, 403)
    assert reply.message == "Access denied, not server owner"


@pytest.mark.parametrize("interval", [2**62, 10**12, 2**31])
def test_unschedulable_cron_does_not_stop_other_crons(tmp_path_factory: pytest.TempPathFactory,
                                                      interval: int) -> None:
    """A cron whose next run lies beyond any date must be refused, or at least not break the checker.

    Own server per case: a cron that breaks the checker would break every later cron test of the module.
    """
    srv = start_server(tmp_path_factory)
    rpc = Rpc(srv.handle)
    try:
        colony = rpc.add_colony()
        user = rpc.add_user(colony)
        workflow = json.dumps({"colonyname": colony.name,
                               "functionspecs": [funcspec(colony.name, "cron-only", "n1")]})
        base = {"colonyname": colony.name, "random": False, "waitforprevprocessgraph": False,
                "workflowspec": workflow}
        huge = rpc.call({"msgtype": "addcronmsg", "cron": dict(base, name="huge", interval=interval,
                                                                 cronexpression="")}, user.prvkey)
        assert huge.status in (200, 400), huge.describe()
        rpc.ok({"msgtype": "addcronmsg", "cron": dict(base, name="every-second", interval=-1,
                                                      cronexpression="0/1 * * * * *")}, user.prvkey)
        poll(lambda: rpc.ok({"msgtype": "getprocessgraphsmsg", "colonyname": colony.name, "count": 10,
                             "state": 0}, user.prvkey), bool, timeout=10,
             what="a graph from the every-second cron next to the huge-interval one")
    finally:
        rpc.close()
        srv.stop()
