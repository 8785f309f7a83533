"""Colonies: add, remove (cascade), get, list, statistics."""

from __future__ import annotations

from typing import Any

from .. import lifecycle
from ..errors import NoReply, RPCError
from ..registry import rpc
from ..roles import require_colony, require_member, require_server_owner
from ..runtime import Runtime
from .fields import get_obj, get_str

__all__: list[str] = []


@rpc("addcolonymsg")
async def add_colony(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    require_server_owner(rt.server_id, signer)
    c = get_obj(msg, "colony")
    colony = {"colonyid": get_str(c, "colonyid"), "name": get_str(c, "name", max_len=256)}
    if len(colony["colonyid"]) != 64:
        raise RPCError(400, "Failed to add colony, invalid colony id length")
    if not colony["name"]:
        raise RPCError(400, "Failed to add colony, empty colony name")

    def op(tx: Any) -> Any:
        if tx.get_colony(colony["name"]) is not None:
            raise RPCError(400, f"A Colony with name {colony['name']} already exists")
        tx.add_colony(colony)
        return colony
    return await rt.store.write(op)


@rpc("removecolonymsg")
async def remove_colony(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    require_server_owner(rt.server_id, signer)
    name = get_str(msg, "colonyname")
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        if tx.get_colony(name) is None:
            raise RPCError(400, f"Failed to remove colony, Colony with name {name} not found")
        for ex in tx.list_executors(name):
            for p in tx.running_of_executor(ex["executorid"]):
                lifecycle.requeue(tx, p, now, count_retry=False, error="")
        tx.remove_colony(name)
        tx.emit("wake_colony", name)
        return {}
    return await rt.store.write(op)


@rpc("getcoloniesmsg")
async def get_colonies(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    require_server_owner(rt.server_id, signer)
    return await rt.store.read(lambda tx: tx.list_colonies() or None)


@rpc("getcolonymsg")
async def get_colony(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    name = msg.get("colonyname")

    def q(tx: Any) -> Any:
        require_member(tx, name, signer)
        return require_colony(tx, name)
    return await rt.store.read(q)


@rpc("getcolonystatsmsg")
async def colony_stats(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    name = msg.get("colonyname")

    def q(tx: Any) -> Any:
        if not isinstance(name, str) or tx.get_colony(name) is None:
            raise RPCError(400, f"Failed to get colony statistics, Colony with name {name} not found")
        try:
            require_member(tx, name, signer)
        except RPCError:
            raise NoReply() from None
        procs, execs, graphs = tx.count_processes(name), tx.count_executors(name), tx.count_graphs(name)
        return {"colonies": 1, "executors": sum(execs.values()), "activeexecutors": execs.get(1, 0),
                "unregisteredexecutors": execs.get(3, 0), "waitingprocesses": procs.get(0, 0),
                "runningprocesses": procs.get(1, 0), "successfulprocesses": procs.get(2, 0),
                "failedprocesses": procs.get(3, 0), "waitingworkflows": graphs.get(0, 0),
                "runningworkflows": graphs.get(1, 0), "successfulworkflows": graphs.get(2, 0),
                "failedworkflows": graphs.get(3, 0)}
    return await rt.store.read(q)
