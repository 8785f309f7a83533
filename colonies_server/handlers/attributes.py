"""Attributes on running processes (added by the assigned executor) and lookup by id."""

from __future__ import annotations

from typing import Any

from ..errors import RPCError
from ..procs import RUNNING, attribute_id
from ..registry import rpc
from ..roles import require_member
from ..runtime import Runtime
from .fields import get_int, get_obj, get_str

__all__: list[str] = []


@rpc("addattributemsg")
async def add_attribute(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    a = get_obj(msg, "attribute")
    key, value = get_str(a, "key", max_len=4096), get_str(a, "value", max_len=rt.settings.max_string)
    target, atype = get_str(a, "targetid"), get_int(a, "attributetype", 0)
    if not key:
        raise RPCError(400, "Failed to add attribute, empty key")

    def op(tx: Any) -> Any:
        p = tx.get_process(target)
        if p is None:
            raise RPCError(404, f"Failed to add attribute, process with id {target} not found")
        require_member(tx, p["spec"]["conditions"]["colonyname"], signer)
        if p["state"] != RUNNING:
            raise RPCError(403, "Failed to add attribute, process is not running")
        if p["assignedexecutorid"] != signer:
            raise RPCError(403, "Failed to add attribute, not allowed to add attributes to a process assigned "
                                "to another executor")
        aid = attribute_id(target, key, atype)
        if tx.process_of_attribute(aid) is not None:
            raise RPCError(400, f"Failed to add attribute, duplicate key {key}")
        attr = {"attributeid": aid, "targetid": target, "targetcolonyname": get_str(a, "targetcolonyname"),
                "targetprocessgraphid": p["processgraphid"], "state": p["state"], "attributetype": atype,
                "key": key, "value": value}
        p["attributes"] = [*(p.get("attributes") or []), attr]
        tx.update_process(p)
        tx.add_attribute_index(aid, target)
        return attr
    return await rt.store.write(op)


@rpc("getattributemsg")
async def get_attribute(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    aid = get_str(msg, "attributeid")

    def q(tx: Any) -> Any:
        pid = tx.process_of_attribute(aid)
        p = tx.get_process(pid) if pid else None
        if p is None:
            raise RPCError(404, f"Failed to get attribute, attribute with id {aid} not found")
        require_member(tx, p["spec"]["conditions"]["colonyname"], signer)
        for attr in p.get("attributes") or []:
            if attr["attributeid"] == aid:
                return dict(attr, state=p["state"])
        raise RPCError(404, f"Failed to get attribute, attribute with id {aid} not found")
    return await rt.store.read(q)
