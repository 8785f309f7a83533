"""Executors: add/re-register, approve, reject, remove (re-queues its work), get, list, and the lease heartbeat."""

from __future__ import annotations

from typing import Any

from .. import lifecycle
from ..errors import RPCError
from ..registry import rpc
from ..roles import (
    APPROVED,
    PENDING,
    REJECTED,
    UNREGISTERED,
    require_colony_owner,
    require_executor_self,
    require_member,
)
from ..runtime import Lease, Runtime
from ..timeutil import fmt_time
from .fields import get_num, get_obj, get_str

__all__ = ["render_executor"]


def render_executor(rt: Runtime, e: dict[str, Any]) -> dict[str, Any]:
    heard = rt.last_heard.get(e["executorid"])
    return dict(e, lastheardfromtime=fmt_time(heard)) if heard else e


def _new_executor(x: dict[str, Any], now: int) -> dict[str, Any]:
    caps: dict[str, Any] = x["capabilities"] if isinstance(x.get("capabilities"), dict) else {}
    allocs: dict[str, Any] = x["allocations"] if isinstance(x.get("allocations"), dict) else {}
    e: dict[str, Any] = {"executorid": get_str(x, "executorid"), "executortype": get_str(x, "executortype", max_len=256),
         "executorname": get_str(x, "executorname", max_len=256), "colonyname": get_str(x, "colonyname"),
         "state": PENDING, "requirefuncreg": bool(x.get("requirefuncreg", False)),
         "commissiontime": fmt_time(now), "lastheardfromtime": get_str(x, "lastheardfromtime") or fmt_time(0),
         "capabilities": {"hardware": caps.get("hardware"), "software": caps.get("software")},
         "allocations": {"projects": allocs.get("projects")}}
    if get_str(x, "locationname"):
        e["locationname"] = get_str(x, "locationname")
    if len(e["executorid"]) != 64:
        raise RPCError(400, "Failed to add executor, invalid executor id length")
    if not e["executorname"] or not e["executortype"]:
        raise RPCError(400, "Failed to add executor, executorname and executortype must not be empty")
    return e


def _unregister(tx: Any, e: dict[str, Any], now: int) -> None:
    """Soft delete (§6.4): UNREGISTERED, running work back to WAITING (retries unchanged), functions gone."""
    for p in tx.running_of_executor(e["executorid"]):
        if p["spec"]["conditions"]["colonyname"] == e["colonyname"]:
            lifecycle.requeue(tx, p, now, count_retry=False, error="")
    e["state"] = UNREGISTERED
    tx.put_executor(e)
    tx.remove_functions_of(e["colonyname"], e["executorname"])


@rpc("addexecutormsg")
async def add_executor(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    now = rt.now_ns()
    e = _new_executor(get_obj(msg, "executor"), now)
    allow = rt.settings.allow_executor_reregister

    def op(tx: Any) -> Any:
        require_colony_owner(tx, e["colonyname"], signer)
        old = tx.get_executor(e["colonyname"], e["executorname"])
        if old is not None:
            if not allow:
                raise RPCError(400, f"Executor with name {e['executorname']} in Colony {e['colonyname']} "
                                    "already exists")
            if old["state"] != UNREGISTERED:
                _unregister(tx, old, now)
        tx.put_executor(e)
        return e
    return await rt.store.write(op)


def _set_state(state: int) -> Any:
    async def handler(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
        colony, name = msg.get("colonyname"), get_str(msg, "executorname")

        def op(tx: Any) -> Any:
            require_colony_owner(tx, colony, signer)
            e = tx.get_executor(colony, name)
            if e is None:
                raise RPCError(500, f"Failed to change executor state, executor with name {name} not found "
                                    "(executor is nil)")
            e["state"] = state
            tx.put_executor(e)
            if state == REJECTED:
                rt.leases.pop(e["executorid"], None)
            return {}
        return await rt.store.write(op)
    return handler


rpc("approveexecutormsg")(_set_state(APPROVED))
rpc("rejectexecutormsg")(_set_state(REJECTED))


@rpc("removeexecutormsg")
async def remove_executor(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, name = msg.get("colonyname"), get_str(msg, "executorname")
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        require_colony_owner(tx, colony, signer)
        e = tx.get_executor(colony, name)
        if e is None:
            raise RPCError(500, f"Failed to remove executor, executor with name {name} not found (executor is nil)")
        _unregister(tx, e, now)
        rt.leases.pop(e["executorid"], None)
        return {}
    return await rt.store.write(op)


@rpc("getexecutorsmsg")
async def get_executors(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony = msg.get("colonyname")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer, approved=False)
        return [render_executor(rt, e) for e in tx.list_executors(colony)] or None
    return await rt.store.read(q)


@rpc("getexecutormsg")
async def get_executor(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, name = msg.get("colonyname"), get_str(msg, "executorname")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        e = tx.get_executor(colony, name)
        if e is None:
            raise RPCError(500, f"Failed to get executor, executor with name {name} not found (executor is nil)")
        return render_executor(rt, e)
    return await rt.store.read(q)


@rpc("getexecutorbyidmsg")
async def get_executor_by_id(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, executorid = msg.get("colonyname"), get_str(msg, "executorid")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        e = tx.get_executor_by_id(colony, executorid)
        if e is None:
            raise RPCError(404, f"Failed to get executor, executor with id {executorid} not found")
        return render_executor(rt, e)
    return await rt.store.read(q)


def _self_update(field: str) -> Any:
    async def handler(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
        colony, name = msg.get("colonyname"), msg.get("executorname")
        value = get_obj(msg, field)

        def op(tx: Any) -> Any:
            e = require_executor_self(tx, colony, name, signer)
            e[field] = value
            tx.put_executor(e)
            return {}
        return await rt.store.write(op)
    return handler


rpc("reportallocationmsg")(_self_update("allocations"))
rpc("updateexecutormsg")(_self_update("capabilities"))


@rpc("executorheartbeatmsg")
async def heartbeat(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    """Lease extension: from now on, silence longer than `lease` seconds re-queues this executor's work."""
    colony, name = msg.get("colonyname"), msg.get("executorname")
    lease = get_num(msg, "lease", 0.0)
    s = rt.settings
    if not s.lease_min <= lease <= s.lease_max:
        raise RPCError(400, f"Invalid lease {lease}, must be between {s.lease_min} and {s.lease_max} seconds")
    e = await rt.store.read(lambda tx: require_executor_self(tx, colony, name, signer))
    now = rt.now_ns()
    rt.leases[signer] = Lease(e["colonyname"], e["executorname"], int(lease * 1e9), now)
    rt.last_heard[signer] = now
    return {}
