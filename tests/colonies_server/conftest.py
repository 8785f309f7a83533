"""Shared pieces of the colonies_server acceptance suites: a per-module server, raw signed RPC, identities."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sdk.crypto import id_from_prvkey, new_prvkey, sign
from tests.harness.require import require
from tests.harness.server import SERVER_PRVKEY, ServerHandle, ThreadServer

try:
    from model import FuncSpec
    from pycolonies import Colonies, func_spec

    HAVE_PYCOLONIES = True
except ImportError:  # pragma: no cover - the dev extra pins pycolonies==1.0.25
    HAVE_PYCOLONIES = False

# Fast background timers so maxexectime/maxwaittime/cron tests take about a second, not several.
# These suites do not test power-loss durability (test_durability.py runs the default FULL), so
# skip the per-commit fsync to keep them quick on a busy 2-core machine.
FAST_TIMERS: dict[str, Any] = {"timer_period": 0.1, "cron_period": 0.1, "sqlite_synchronous": "NORMAL"}

NOT_MEMBER = "Access denied, not a member of Colony with name {colony}"


def fresh(prefix: str) -> str:
    """A unique, readable name for colonies, executors, users, labels, crons."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Reply:
    """One HTTP reply of POST /api, decoded as far as it decodes."""

    status: int
    body: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def error(self) -> bool:
        return bool(self.envelope["error"])

    @property
    def payload(self) -> Any:
        return json.loads(base64.b64decode(self.envelope["payload"]))

    @property
    def message(self) -> str:
        """The error text of an error reply ("" for success replies)."""
        if not self.body or not self.error:
            return ""
        return str(self.payload.get("message", ""))

    def describe(self) -> str:
        try:
            return f"HTTP {self.status} {self.envelope.get('payloadtype')} {self.payload!r}"[:600]
        except Exception:
            return f"HTTP {self.status} body={self.body[:300]!r}"


def encode_payload(msg: dict[str, Any]) -> str:
    """The base64 payload string exactly as pycolonies builds it."""
    return base64.b64encode(json.dumps(msg).encode("utf-8")).decode("ascii")


def envelope(msg: dict[str, Any], prvkey: str | None, payloadtype: str | None = None) -> dict[str, str]:
    """A signed RPC envelope; prvkey None leaves the signature empty."""
    payload = encode_payload(msg)
    return {
        "payloadtype": payloadtype if payloadtype is not None else msg["msgtype"],
        "payload": payload,
        "signature": sign(payload, prvkey) if prvkey else "",
    }


class Rpc:
    """Raw signed envelopes over httpx: what the role matrix and the bad-input tests speak."""

    def __init__(self, handle: ServerHandle, timeout: float = 30.0) -> None:
        self.handle = handle
        self.client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def post_raw(self, body: bytes | str) -> Reply:
        data = body.encode("utf-8") if isinstance(body, str) else body
        r = self.client.post(self.handle.api, content=data)
        return Reply(r.status_code, r.content)

    def post(self, env: dict[str, Any]) -> Reply:
        return self.post_raw(json.dumps(env))

    def call(self, msg: dict[str, Any], prvkey: str | None, payloadtype: str | None = None) -> Reply:
        return self.post(envelope(msg, prvkey, payloadtype))

    def ok(self, msg: dict[str, Any], prvkey: str | None) -> Any:
        """Call and insist on success; returns the decoded result payload."""
        reply = self.call(msg, prvkey)
        assert reply.status == 200 and not reply.error, f"{msg['msgtype']} failed: {reply.describe()}"
        return reply.payload

    # Small conveniences used by several suites ---------------------------------------------------------

    def add_colony(self, name: str | None = None) -> Colony:
        prvkey = new_prvkey()
        colony = Colony(name or fresh("colony"), prvkey, id_from_prvkey(prvkey))
        self.ok({"msgtype": "addcolonymsg", "colony": {"colonyid": colony.colonyid, "name": colony.name}},
                SERVER_PRVKEY)
        return colony

    def add_executor(self, colony: Colony, executortype: str = "cli", approve: bool = True,
                     name: str | None = None) -> Identity:
        prvkey = new_prvkey()
        ident = Identity(name or fresh("exe"), prvkey, id_from_prvkey(prvkey))
        self.ok({"msgtype": "addexecutormsg", "executor": {
            "executorid": ident.id, "executorname": ident.name, "executortype": executortype,
            "colonyname": colony.name}}, colony.prvkey)
        if approve:
            self.ok({"msgtype": "approveexecutormsg", "colonyname": colony.name,
                     "executorname": ident.name}, colony.prvkey)
        return ident

    def add_user(self, colony: Colony, name: str | None = None) -> Identity:
        prvkey = new_prvkey()
        ident = Identity(name or fresh("user"), prvkey, id_from_prvkey(prvkey))
        self.ok({"msgtype": "addusermsg", "user": {
            "colonyname": colony.name, "userid": ident.id, "name": ident.name,
            "email": f"{ident.name}@example.com", "phone": ""}}, colony.prvkey)
        return ident

    def submit(self, colony: str, prvkey: str, executortype: str = "cli", **spec: Any) -> dict[str, Any]:
        return self.ok({"msgtype": "submitfuncspecmsg", "spec": funcspec(colony, executortype, **spec)}, prvkey)

    def get_process(self, processid: str, prvkey: str) -> dict[str, Any]:
        return self.ok({"msgtype": "getprocessmsg", "processid": processid}, prvkey)

    def assign(self, colony: str, prvkey: str, timeout: float = -1) -> Reply:
        return self.call({"msgtype": "assignprocessmsg", "colonyname": colony, "timeout": timeout}, prvkey)


@dataclass(frozen=True)
class Colony:
    name: str
    prvkey: str
    colonyid: str


@dataclass(frozen=True)
class Identity:
    name: str
    prvkey: str
    id: str


def funcspec(colony: str, executortype: str = "cli", funcname: str = "echo", **extra: Any) -> dict[str, Any]:
    """A complete FuncSpec as pycolonies' func_spec() would send it (no limits, priority 1)."""
    spec: dict[str, Any] = {
        "nodename": funcname, "funcname": funcname, "args": [], "kwargs": {}, "priority": 1,
        "maxwaittime": -1, "maxexectime": -1, "maxretries": -1,
        "conditions": {"colonyname": colony, "executornames": None, "executortype": executortype,
                       "dependencies": [], "nodes": 0, "cpu": "", "processes": 0, "processespernode": 0,
                       "mem": "", "storage": "", "gpu": {"name": "", "mem": "", "count": 0, "nodecount": 0},
                       "walltime": 0},
        "label": "", "fs": {"mount": "", "snapshots": None, "dirs": None}, "env": {},
    }
    for key, value in extra.items():
        if key in spec["conditions"]:
            spec["conditions"][key] = value
        else:
            spec[key] = value
    return spec


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 10.0,
         interval: float = 0.05, what: str = "condition") -> Any:
    """Call fetch() until done(value) holds; the last value is returned. Fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {value!r}"[:2000])
        time.sleep(interval)
        value = fetch()
    return value


def start_server(tmp_path_factory: pytest.TempPathFactory, db: str | None = None, **settings: Any) -> ThreadServer:
    db = db or f"sqlite:///{tmp_path_factory.mktemp('colonies') / 'colonies.db'}"
    srv = ThreadServer(db=db, **{"dev": True, **FAST_TIMERS, **settings})
    srv.start()
    return srv


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[ServerHandle]:
    """One server (--dev identities, fast timers) shared by all tests of a module, once per backend
    (SQLite, PostgreSQL: see tests/harness/postgres.py)."""
    srv = start_server(tmp_path_factory, db=module_db_url)
    try:
        yield srv.handle
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def rpc(module_server: ServerHandle) -> Iterator[Rpc]:
    client = Rpc(module_server)
    try:
        yield client
    finally:
        client.close()


# pycolonies-driven suites ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pc(module_server: ServerHandle) -> Colonies:
    require(HAVE_PYCOLONIES, "pycolonies 1.0.25", "pip install -e '.[dev]'")
    return Colonies(module_server.host, module_server.port)


@dataclass
class World:
    """A fresh colony with an approved "cli" executor and a user, all registered through pycolonies."""

    pc: Colonies
    colony: str
    colony_key: str
    exe: str
    exe_key: str
    user: str
    user_key: str

    def new_executor(self, executortype: str = "cli", approve: bool = True) -> tuple[str, str]:
        key = new_prvkey()
        name = fresh("exe")
        self.pc.add_executor({"executorid": id_from_prvkey(key), "executortype": executortype,
                              "executorname": name, "colonyname": self.colony}, self.colony_key)
        if approve:
            self.pc.approve_executor(self.colony, name, self.colony_key)
        return name, key

    def spec(self, funcname: str = "echo", executortype: str = "cli", **kw: Any) -> FuncSpec:
        return func_spec(funcname, kw.pop("args", []), self.colony, executortype, **kw)

    def submit(self, funcname: str = "echo", executortype: str = "cli", key: str | None = None,
               **kw: Any) -> Any:
        return self.pc.submit_func_spec(self.spec(funcname, executortype, **kw), key or self.user_key)


@pytest.fixture
def world(pc: Colonies) -> World:
    colony_key = new_prvkey()
    colony = fresh("test")
    pc.add_colony({"colonyid": id_from_prvkey(colony_key), "name": colony}, SERVER_PRVKEY)
    w = World(pc, colony, colony_key, "", "", fresh("user"), new_prvkey())
    w.exe, w.exe_key = w.new_executor()
    pc.add_user({"colonyname": colony, "userid": id_from_prvkey(w.user_key), "name": w.user,
                 "email": "u@example.com", "phone": ""}, colony_key)
    return w
