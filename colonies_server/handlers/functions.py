"""Functions an executor registers (with upstream's call statistics)."""

from __future__ import annotations

from typing import Any

from ..errors import RPCError
from ..procs import new_id
from ..registry import rpc
from ..roles import require_member
from ..runtime import Runtime
from .fields import get_obj, get_str

__all__: list[str] = []


@rpc("addfunctionmsg")
async def add_function(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    f = get_obj(msg, "fun")
    fun = {"functionid": get_str(f, "functionid") or new_id(), "executorname": get_str(f, "executorname"),
           "executortype": get_str(f, "executortype"), "colonyname": get_str(f, "colonyname"),
           "funcname": get_str(f, "funcname", max_len=1024), "counter": 0, "minwaittime": 0.0, "maxwaittime": 0.0,
           "minexectime": 0.0, "maxexectime": 0.0, "avgwaittime": 0.0, "avgexectime": 0.0}
    if not fun["funcname"]:
        raise RPCError(400, "Failed to add function, empty funcname")

    def op(tx: Any) -> Any:
        require_member(tx, fun["colonyname"], signer)
        e = tx.get_executor(fun["colonyname"], fun["executorname"])
        if e is None:
            raise RPCError(400, f"Failed to add function, executor with name {fun['executorname']} not found")
        if e["executorid"] != signer:
            raise RPCError(403, "Not allowed to add a function to another executor")
        tx.add_function(fun)
        return fun
    return await rt.store.write(op)


@rpc("getfunctionsmsg")
async def get_functions(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, name = msg.get("colonyname"), get_str(msg, "executorname")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        return tx.find_functions(colony, name or None) or None
    return await rt.store.read(q)


@rpc("removefunctionmsg")
async def remove_function(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    fid = get_str(msg, "functionid")
    if not fid:
        raise RPCError(400, "Failed to remove function, empty functionid")

    def op(tx: Any) -> Any:
        f = tx.get_function(fid)
        if f is None:
            raise RPCError(404, f"Failed to remove function, function with id {fid} not found")
        require_member(tx, f["colonyname"], signer)
        e = tx.get_executor(f["colonyname"], f["executorname"])
        if e is None or e["executorid"] != signer:
            raise RPCError(403, "Not allowed to remove a function of another executor")
        tx.remove_function(fid)
        return {}
    return await rt.store.write(op)
