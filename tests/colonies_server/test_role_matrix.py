"""Who may call what (protocol §3/§4): every message type × seven kinds of caller, with raw signed envelopes.

Callers: the server owner, the colony owner of colony A, a user of A, an approved executor of A, a pending
executor of A, an approved executor of another colony B, and a key nobody knows. "Allowed" means HTTP 200
with a non-error envelope (each row sets up whatever makes the call succeed); "refused" means the status
§4 prescribes, with the §3 texts where they are fixed. Rows that need fresh state build it per call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sdk.crypto import id_from_prvkey, new_prvkey
from tests.colonies_server.conftest import NOT_MEMBER, Colony, Identity, Reply, Rpc, fresh, funcspec
from tests.harness.server import SERVER_ID, SERVER_PRVKEY

WHO = ("server_owner", "colony_owner", "member_user", "approved_executor", "pending_executor",
       "other_colony_executor", "unknown_key")

# who may call → the callers that pass (protocol §4 legend)
ALLOWED: dict[str, set[str]] = {
    "NONE": set(WHO),
    "SO": {"server_owner"},
    "CO": {"colony_owner"},
    "M": {"member_user", "approved_executor"},
    "M*": {"member_user", "approved_executor", "pending_executor"},
    # M and the signer is the assigned executor / the named executor / the owning executor
    "M+AE": {"approved_executor"},
    "M+SELF": {"approved_executor"},
    "M*+SELF": {"approved_executor", "pending_executor"},
    "M+EXECUTOR": {"approved_executor"},
}

SO_TEXT = "Access denied, not server owner"
CO_TEXT = "Access denied, not colony owner"


@dataclass
class World:
    rpc: Rpc
    a: Colony
    b: Colony
    ids: dict[str, Identity]

    def key(self, who: str) -> str:
        return self.ids[who].prvkey

    @property
    def exe(self) -> Identity:
        return self.ids["approved_executor"]

    @property
    def user(self) -> Identity:
        return self.ids["member_user"]

    def self_name(self, who: str) -> str:
        """The executor name a SELF message carries: the signer's own if it is an executor of A."""
        return self.ids[who].name if who in ("approved_executor", "pending_executor") else self.exe.name

    def running(self, workflow: bool = False) -> dict[str, Any]:
        """A process of colony A that the approved executor is running (older leftovers get closed)."""
        if workflow:
            graph = self.rpc.ok({"msgtype": "submitworkflowspecmsg", "spec": {
                "colonyname": self.a.name, "functionspecs": [funcspec(self.a.name, "cli", "root")]}},
                self.user.prvkey)
            pid = graph["rootprocessids"][0]
        else:
            pid = self.rpc.submit(self.a.name, self.user.prvkey, "cli")["processid"]
        for _ in range(1000):
            reply = self.rpc.assign(self.a.name, self.exe.prvkey)
            assert reply.status == 200, reply.describe()
            if reply.payload["processid"] == pid:
                return reply.payload
            self.rpc.ok({"msgtype": "closesuccessfulmsg", "processid": reply.payload["processid"], "out": []},
                        self.exe.prvkey)
        raise AssertionError("could not get the fresh process assigned")

    def idle_spec(self, nodename: str = "idle") -> dict[str, Any]:
        """A spec no executor of the matrix ever takes."""
        return funcspec(self.a.name, "idle-type", nodename)

    def workflow(self) -> dict[str, Any]:
        return self.rpc.ok({"msgtype": "submitworkflowspecmsg", "spec": {
            "colonyname": self.a.name, "functionspecs": [self.idle_spec("n1")]}}, self.user.prvkey)

    def cron(self) -> dict[str, Any]:
        return self.rpc.ok({"msgtype": "addcronmsg", "cron": self.cron_body()}, self.user.prvkey)

    def cron_body(self) -> dict[str, Any]:
        wf = json.dumps({"colonyname": self.a.name, "functionspecs": [self.idle_spec("n1")]})
        return {"name": fresh("cron"), "colonyname": self.a.name, "cronexpression": "0 0 0 1 1 *",
                "interval": -1, "random": False, "workflowspec": wf, "waitforprevprocessgraph": False}

    def file_body(self, name: str | None = None) -> dict[str, Any]:
        return {"fileid": "", "colonyname": self.a.name, "label": "/matrix", "name": name or fresh("f"),
                "size": 1, "sequencenr": 1, "checksum": "ab", "checksumalg": "SHA256",
                "ref": {"protocol": "s3", "s3object": {
                    "server": "127.0.0.1", "port": 9000, "tls": False, "accesskey": "", "secretkey": "",
                    "region": "", "encryptionkey": "", "encryptionalg": "", "object": "o", "bucket": "b"}},
                "added": None}

    def add_file(self) -> dict[str, Any]:
        return self.rpc.ok({"msgtype": "addfilemsg", "file": self.file_body()}, self.user.prvkey)

    def snapshot(self) -> dict[str, Any]:
        return self.rpc.ok({"msgtype": "createsnapshotmsg", "colonyname": self.a.name, "label": "/matrix",
                            "name": fresh("snap")}, self.user.prvkey)

    def location(self) -> str:
        name = fresh("loc")
        self.rpc.ok({"msgtype": "addlocationmsg", "location": {
            "name": name, "colonyname": self.a.name, "description": "", "long": 0.0, "lat": 0.0}},
            self.a.prvkey)
        return name


Build = Callable[[World, str], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    msgtype: str
    who: str  # key of ALLOWED
    build: Build
    # caller → expected status when it differs from "200 if allowed else 403"
    special: dict[str, int] = field(default_factory=dict)
    # a refused caller gets HTTP 200 with an empty body (quirk 13)
    silent_refusal: bool = False
    reply_type: str | None = None
    after: Callable[[World], None] | None = None


def _ctx_a(w: World, who: str) -> dict[str, Any]:
    return {"colonyname": w.a.name}


def _new_colony(w: World, who: str) -> dict[str, Any]:
    return {"colony": {"colonyid": id_from_prvkey(new_prvkey()), "name": fresh("c")}}


def _doomed_colony(w: World, who: str) -> dict[str, Any]:
    return {"colonyname": w.rpc.add_colony().name}


def _new_user(w: World, who: str) -> dict[str, Any]:
    return {"user": {"colonyname": w.a.name, "userid": id_from_prvkey(new_prvkey()), "name": fresh("u"),
                     "email": "", "phone": ""}}


def _new_executor(w: World, who: str) -> dict[str, Any]:
    return {"executor": {"executorid": id_from_prvkey(new_prvkey()), "executorname": fresh("e"),
                         "executortype": "idle-type", "colonyname": w.a.name}}


def _pending_executor_name(w: World, who: str) -> dict[str, Any]:
    return {"colonyname": w.a.name, "executorname": w.rpc.add_executor(w.a, "idle-type", approve=False).name}


def _function_of_exe(w: World, who: str) -> dict[str, Any]:
    fun = w.rpc.ok({"msgtype": "addfunctionmsg", "fun": {
        "executorname": w.exe.name, "colonyname": w.a.name, "funcname": fresh("fn")}}, w.exe.prvkey)
    return {"functionid": fun["functionid"]}


def _resume(w: World) -> None:
    w.rpc.ok({"msgtype": "resumeassignmentsmsg", "colonyname": w.a.name}, w.a.prvkey)


def _assign(w: World, who: str) -> dict[str, Any]:
    w.rpc.submit(w.a.name, w.user.prvkey, "cli")
    return {"colonyname": w.a.name, "timeout": -1}


def _running(w: World, **extra: Any) -> Build:
    def build(w: World, who: str) -> dict[str, Any]:
        return {"processid": w.running()["processid"], **extra}
    return build


def _attribute(w: World, who: str) -> dict[str, Any]:
    pid = w.running()["processid"]
    return {"attribute": {"key": fresh("k"), "value": "v", "targetid": pid, "attributetype": 1}}


def _attribute_id(w: World, who: str) -> dict[str, Any]:
    pid = w.running()["processid"]
    attr = w.rpc.ok({"msgtype": "addattributemsg", "attribute": {
        "key": "k", "value": "v", "targetid": pid, "attributetype": 1}}, w.exe.prvkey)
    return {"attributeid": attr["attributeid"]}


def _logs(w: World, who: str) -> dict[str, Any]:
    pid = w.running()["processid"]
    w.rpc.ok({"msgtype": "addlogmsg", "processid": pid, "message": "hello"}, w.exe.prvkey)
    return {"colonyname": w.a.name, "processid": pid, "executorname": "", "count": 10, "since": 0}


def _add_child(w: World, who: str) -> dict[str, Any]:
    parent = w.running(workflow=True)
    return {"processgraphid": parent["processgraphid"], "parentprocessid": parent["processid"],
            "childprocessid": "", "insert": False, "spec": w.idle_spec("child")}


ROWS: list[Row] = [
    # colonies
    Row("addcolonymsg", "SO", _new_colony),
    Row("removecolonymsg", "SO", _doomed_colony),
    Row("getcoloniesmsg", "SO", lambda w, who: {}),
    Row("getcolonymsg", "M", _ctx_a),
    Row("getcolonystatsmsg", "M", _ctx_a, silent_refusal=True),
    # users
    Row("addusermsg", "CO", _new_user),
    Row("getusersmsg", "M*", _ctx_a),
    Row("getusermsg", "M*", lambda w, who: {"colonyname": w.a.name, "name": w.user.name}),
    Row("getuserbyidmsg", "M*", lambda w, who: {"colonyname": w.a.name, "userid": w.user.id}),
    Row("removeusermsg", "CO", lambda w, who: {"colonyname": w.a.name, "name": w.rpc.add_user(w.a).name}),
    # executors
    Row("addexecutormsg", "CO", _new_executor),
    Row("approveexecutormsg", "CO", _pending_executor_name),
    Row("rejectexecutormsg", "CO", _pending_executor_name),
    Row("removeexecutormsg", "CO", _pending_executor_name),
    Row("getexecutorsmsg", "M*", _ctx_a),
    Row("getexecutormsg", "M", lambda w, who: {"colonyname": w.a.name, "executorname": w.exe.name}),
    Row("getexecutorbyidmsg", "M", lambda w, who: {"colonyname": w.a.name, "executorid": w.exe.id}),
    Row("reportallocationmsg", "M*+SELF", lambda w, who: {
        "colonyname": w.a.name, "executorname": w.self_name(who), "allocations": {"projects": {}}}),
    Row("updateexecutormsg", "M*+SELF", lambda w, who: {
        "colonyname": w.a.name, "executorname": w.self_name(who),
        "capabilities": {"hardware": [], "software": []}}),
    # extension (docs/SDK-API.md): executor leases
    Row("executorheartbeatmsg", "M*+SELF", lambda w, who: {
        "colonyname": w.a.name, "executorname": w.self_name(who), "lease": 3600}),
    # functions
    Row("addfunctionmsg", "M+SELF", lambda w, who: {"fun": {
        "executorname": w.self_name(who), "colonyname": w.a.name, "funcname": fresh("fn")}}),
    Row("getfunctionsmsg", "M", _ctx_a),
    Row("removefunctionmsg", "M+EXECUTOR", _function_of_exe),
    # processes
    Row("submitfuncspecmsg", "M", lambda w, who: {"spec": w.idle_spec()}),
    # a user passes the membership check but is no executor: 500 "executor not found" (§4.5)
    Row("assignprocessmsg", "M+EXECUTOR", _assign, special={"member_user": 500}),
    Row("getprocessmsg", "M", lambda w, who: {
        "processid": w.rpc.ok({"msgtype": "submitfuncspecmsg", "spec": w.idle_spec()}, w.user.prvkey)["processid"]}),
    Row("getprocessesmsg", "M", lambda w, who: {"colonyname": w.a.name, "count": 10, "state": 0}),
    Row("removeprocessmsg", "M", lambda w, who: {
        "processid": w.rpc.ok({"msgtype": "submitfuncspecmsg", "spec": w.idle_spec()}, w.user.prvkey)["processid"]}),
    Row("removeallprocessesmsg", "CO", lambda w, who: {"colonyname": w.a.name, "state": 3}),
    Row("closesuccessfulmsg", "M+AE", lambda w, who: {"processid": w.running()["processid"], "out": []}),
    Row("closefailedmsg", "M+AE", lambda w, who: {"processid": w.running()["processid"], "errors": ["x"]}),
    # extension (docs/SERVER.md): close, then assign; a user is no executor (500 as for assign)
    Row("closeandassignmsg", "M+AE", lambda w, who: {
        "processid": w.running()["processid"], "successful": True, "out": [], "colonyname": w.a.name,
        "timeout": -1}, special={"member_user": 500}),
    Row("setoutputmsg", "M+AE", lambda w, who: {"processid": w.running()["processid"], "out": ["x"]}),
    Row("getprocesshistmsg", "M", lambda w, who: {
        "colonyname": w.a.name, "executorid": "", "seconds": 60, "state": 0}, silent_refusal=True),
    Row("pauseassignmentsmsg", "CO", _ctx_a, after=_resume),
    Row("resumeassignmentsmsg", "CO", _ctx_a),
    Row("getpausestatusmsg", "M*", _ctx_a, reply_type="pausestatusreplymsg"),
    # attributes
    Row("addattributemsg", "M+AE", _attribute),
    Row("getattributemsg", "M", _attribute_id),
    # logs
    Row("addlogmsg", "M+AE", lambda w, who: {"processid": w.running()["processid"], "message": "m"}),
    Row("addexecutorlogmsg", "M+SELF", lambda w, who: {
        "colonyname": w.a.name, "executorname": w.self_name(who), "message": "m"}),
    Row("getlogsmsg", "M", _logs),
    Row("searchlogsmsg", "M", lambda w, who: {"colonyname": w.a.name, "text": "hello", "days": 1, "count": 10}),
    # workflows
    Row("submitworkflowspecmsg", "M", lambda w, who: {"spec": {
        "colonyname": w.a.name, "functionspecs": [w.idle_spec("n1")]}}),
    Row("getprocessgraphmsg", "M", lambda w, who: {"processgraphid": w.workflow()["processgraphid"]}),
    Row("getprocessgraphsmsg", "M", lambda w, who: {"colonyname": w.a.name, "count": 10, "state": 0}),
    Row("removeprocessgraphmsg", "M", lambda w, who: {"processgraphid": w.workflow()["processgraphid"]}),
    Row("removeallprocessgraphsmsg", "CO", lambda w, who: {"colonyname": w.a.name, "state": 2}),
    Row("addchildmsg", "M+AE", _add_child),
    # crons
    Row("addcronmsg", "M", lambda w, who: {"cron": w.cron_body()}),
    Row("getcronmsg", "M", lambda w, who: {"cronid": w.cron()["cronid"]}),
    Row("getcronsmsg", "M", lambda w, who: {"colonyname": w.a.name, "count": 10}),
    Row("removecronmsg", "M", lambda w, who: {"cronid": w.cron()["cronid"], "all": False}),
    Row("runcronmsg", "M", lambda w, who: {"cronid": w.cron()["cronid"]}),
    # CFS metadata and snapshots
    Row("addfilemsg", "M", lambda w, who: {"file": w.file_body()}),
    Row("getfilemsg", "M", lambda w, who: {
        "colonyname": w.a.name, "fileid": w.add_file()["fileid"], "label": "", "name": "", "latest": False}),
    Row("getfilesmsg", "M", lambda w, who: {"colonyname": w.a.name, "label": "/matrix"}),
    Row("getfilelabelsmsg", "M", lambda w, who: {"colonyname": w.a.name, "name": "", "exact": False}),
    Row("removefilemsg", "M", lambda w, who: {
        "colonyname": w.a.name, "fileid": "", "label": "/matrix", "name": w.add_file()["name"]}),
    Row("createsnapshotmsg", "M", lambda w, who: {"colonyname": w.a.name, "label": "/matrix",
                                                  "name": fresh("snap")}),
    Row("getsnapshotmsg", "M", lambda w, who: {"colonyname": w.a.name, "snapshotid": "",
                                               "name": w.snapshot()["name"]}),
    Row("getsnapshotsmsg", "M", _ctx_a),
    Row("removesnapshotmsg", "M", lambda w, who: {"colonyname": w.a.name, "snapshotid": "",
                                                  "name": w.snapshot()["name"]}),
    Row("removeallsnapshotmsg", "M", _ctx_a),
    # server level
    Row("versionmsg", "NONE", lambda w, who: {}),
    Row("getserverinfomsg", "NONE", lambda w, who: {}),
    Row("getstatisticsmsg", "SO", lambda w, who: {}),
    Row("getclustermsg", "SO", lambda w, who: {}),
    Row("changeserveridmsg", "SO", lambda w, who: {"serverid": SERVER_ID}),
    Row("changecolonyidmsg", "CO", lambda w, who: {"colonyname": w.a.name, "colonyid": w.a.colonyid}),
    Row("changeexecutoridmsg", "M*", lambda w, who: {"colonyname": w.a.name, "executorid": w.ids[who].id}),
    Row("changeuseridmsg", "M*", lambda w, who: {"colonyname": w.a.name, "userid": w.ids[who].id}),
    Row("addlocationmsg", "CO", lambda w, who: {"location": {
        "name": fresh("loc"), "colonyname": w.a.name, "description": "", "long": 0.0, "lat": 0.0}}),
    Row("getlocationsmsg", "M*", _ctx_a),
    Row("getlocationmsg", "M*", lambda w, who: {"colonyname": w.a.name, "name": w.location()}),
    Row("removelocationmsg", "CO", lambda w, who: {"colonyname": w.a.name, "name": w.location()}),
]

# Message types of §4 a first compatible server may leave out; they must be refused clearly.
UNSUPPORTED = [
    "channelappendmsg", "channelreadmsg",
    "addgeneratormsg", "getgeneratormsg", "getgeneratorsmsg", "removegeneratormsg", "packgeneratormsg",
    "resolvegeneratormsg",
    "addblueprintdefinitionmsg", "getblueprintdefinitionmsg", "getblueprintdefinitionsmsg",
    "removeblueprintdefinitionmsg", "addblueprintmsg", "getblueprintmsg", "getblueprintsmsg",
    "updateblueprintmsg", "removeblueprintmsg", "getblueprinthistorymsg", "reconcileblueprintmsg",
    "updateblueprintstatusmsg",
    # [v1.9.8+]
    "cancelprocessmsg", "cancelprocessgraphmsg",
]


@pytest.fixture(scope="module")
def world(rpc: Rpc) -> World:
    a = rpc.add_colony(fresh("a"))
    b = rpc.add_colony(fresh("b"))
    ids = {
        "server_owner": Identity("server", SERVER_PRVKEY, SERVER_ID),
        "colony_owner": Identity("colony-owner", a.prvkey, a.colonyid),
        "member_user": rpc.add_user(a),
        "approved_executor": rpc.add_executor(a, "cli"),
        "pending_executor": rpc.add_executor(a, "cli", approve=False),
        "other_colony_executor": rpc.add_executor(b, "cli"),
    }
    unknown = new_prvkey()
    ids["unknown_key"] = Identity("nobody", unknown, id_from_prvkey(unknown))
    return World(rpc, a, b, ids)


def _expected(row: Row, who: str) -> int:
    if who in row.special:
        return row.special[who]
    return 200 if who in ALLOWED[row.who] else 403


MEMBER_PASSES = {"M": ALLOWED["M"], "M*": ALLOWED["M*"]}


def _refusal_text(row: Row, who: str, w: World) -> str | None:
    """The exact §3 text where it is fixed; None where §4 prescribes only the status."""
    if row.who == "SO":
        return SO_TEXT
    if row.who == "CO":
        return CO_TEXT
    membership = "M*" if row.who.startswith("M*") else "M"
    if who not in MEMBER_PASSES[membership]:
        # The membership check comes first; pending executors get the user-check text too (quirk 7).
        return NOT_MEMBER.format(colony=w.a.name)
    return None  # a member refused by the SELF / assigned-executor rule


def _implemented() -> set[str]:
    from colonies_server.registry import HANDLERS
    from colonies_server.rpc import call  # noqa: F401  (importing rpc registers every handler)

    return set(HANDLERS)


_NOT_IMPLEMENTED: dict[str, bool] = {}


def _left_out(w: World, msgtype: str) -> bool:
    """True if our server answers this type with 501 (left out on purpose) instead of handling it."""
    if msgtype not in _NOT_IMPLEMENTED:
        # Signed by a key nobody knows and without fields: harmless for every implemented message.
        probe = w.rpc.call({"msgtype": msgtype}, w.key("unknown_key"))
        _NOT_IMPLEMENTED[msgtype] = msgtype not in _implemented() or probe.status == 501
    return _NOT_IMPLEMENTED[msgtype]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.msgtype)
def test_role(world: World, row: Row, who: str) -> None:
    if _left_out(world, row.msgtype):
        # Left out by our server: it must say so clearly (and the same way to every caller).
        _check_unsupported(world, row.msgtype, who)
        return
    msg = {"msgtype": row.msgtype, **row.build(world, who)}
    reply = world.rpc.call(msg, world.key(who))
    try:
        _check(world, row, who, reply)
    finally:
        if row.after:
            row.after(world)


def test_every_implemented_message_is_in_the_matrix() -> None:
    covered = {row.msgtype for row in ROWS} | set(UNSUPPORTED)
    websocket_only = {m for m in _implemented() if m.startswith("subscribe")}
    assert sorted(_implemented() - covered - websocket_only) == []


def _check(w: World, row: Row, who: str, reply: Reply) -> None:
    expected = _expected(row, who)
    if expected == 200:
        assert reply.status == 200 and not reply.error, f"{who} should be allowed: {reply.describe()}"
        assert reply.envelope["payloadtype"] == (row.reply_type or row.msgtype), reply.describe()
        return
    if row.silent_refusal and expected == 403:
        # Quirk 13: the handler returns without writing a reply when the membership check fails.
        assert (reply.status, reply.body) == (200, b""), f"{who}: {reply.describe()}"
        return
    assert reply.status == expected and reply.error, f"{who} expected {expected}: {reply.describe()}"
    assert reply.envelope["payloadtype"] == "error"
    assert reply.payload["status"] == expected
    text = _refusal_text(row, who, w) if expected == 403 else None
    if text is not None:
        assert reply.message == text, f"{who}: {reply.describe()}"


def _check_unsupported(w: World, msgtype: str, who: str) -> None:
    reply = w.rpc.call({"msgtype": msgtype, "colonyname": w.a.name}, w.key(who))
    assert reply.status >= 400 and reply.error, reply.describe()
    assert "not supported" in reply.message.lower(), reply.describe()


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("msgtype", UNSUPPORTED)
def test_unsupported_messages_are_refused_clearly(world: World, msgtype: str, who: str) -> None:
    _check_unsupported(world, msgtype, who)


def test_unknown_payloadtype_is_403(world: World) -> None:
    reply = world.rpc.call({"msgtype": "nosuchmsg"}, world.exe.prvkey)
    assert reply.status == 403 and reply.error, reply.describe()
    assert reply.message == "invalid rpcMsg.PayloadType: nosuchmsg"
