"""Workflows: submit a spec, get/list/remove process graphs, add a child to a running workflow process."""

from __future__ import annotations

from typing import Any

from .. import lifecycle
from ..errors import RPCError
from ..procs import RUNNING, STATES, SUCCESS, WAITING, new_process, normalize_spec, render
from ..registry import rpc
from ..roles import member_name, require_colony_owner, require_member
from ..runtime import Runtime
from ..timeutil import ZERO_TIME
from ..workflows import build_workflow, render_graph
from .fields import get_bool, get_int, get_obj, get_str

__all__ = ["insert_workflow", "parse_workflow_spec"]


def parse_workflow_spec(spec: Any, max_string: int) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(spec, dict):
        raise RPCError(400, "Failed to submit workflow, spec must be an object")
    colony = get_str(spec, "colonyname")
    fs = spec.get("functionspecs") or []
    if not isinstance(fs, list):
        raise RPCError(400, "Failed to submit workflow, functionspecs must be a list")
    return colony, [normalize_spec(s, max_string=max_string, workflow=True) for s in fs]


def insert_workflow(tx: Any, colony: str, specs: list[dict[str, Any]], initiatorid: str, initiatorname: str,
                    now: int, root_inputs: list[Any] | None = None) -> dict[str, Any]:
    graph, procs = build_workflow(colony, specs, initiatorid, initiatorname, now, root_inputs)
    tx.put_graph(graph)
    for p in procs:
        tx.insert_process(p)
    for p in procs:
        lifecycle.signal(tx, p)
    return graph


@rpc("submitworkflowspecmsg")
async def submit_workflow(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, specs = parse_workflow_spec(msg.get("spec"), rt.settings.max_string)
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        kind, who = require_member(tx, colony, signer)
        graph = insert_workflow(tx, colony, specs, signer, member_name(kind, who), now)
        # The reply is the in-memory graph of upstream: zero times (§4.8).
        return dict(graph, submissiontime=ZERO_TIME)
    return await rt.store.write(op)


@rpc("getprocessgraphmsg")
async def get_graph(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    gid = get_str(msg, "processgraphid")

    def q(tx: Any) -> Any:
        g = tx.get_graph(gid)
        if g is None:
            raise RPCError(500, f"Failed to get processgraph, processgraph with id {gid} not found")
        require_member(tx, g["colonyname"], signer)
        return render_graph(g, tx.graph_processes(gid))
    return await rt.store.read(q)


@rpc("getprocessgraphsmsg")
async def get_graphs(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, count, state = msg.get("colonyname"), get_int(msg, "count", 0), get_int(msg, "state", WAITING)
    if count > rt.settings.max_list_count:
        raise RPCError(400, f"Failed to get processgraphs, count exceeds the limit {rt.settings.max_list_count}")
    if state not in STATES:
        raise RPCError(400, "Failed to get processgraphs, invalid msg.State")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        return tx.list_graphs(colony, state, max(count, 0)) or None
    return await rt.store.read(q)


@rpc("removeprocessgraphmsg")
async def remove_graph(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    gid = get_str(msg, "processgraphid")

    def op(tx: Any) -> Any:
        g = tx.get_graph(gid)
        if g is None:
            raise RPCError(500, f"Failed to remove processgraph, processgraph with id {gid} not found")
        require_member(tx, g["colonyname"], signer)
        if g["state"] == RUNNING:
            raise RPCError(400, "Failed to remove processgraph, cannot remove a running processgraph")
        tx.delete_graph(gid)
        return {}
    return await rt.store.write(op)


@rpc("removeallprocessgraphsmsg")
async def remove_all_graphs(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, state = msg.get("colonyname"), get_int(msg, "state", WAITING)
    if state == RUNNING:
        raise RPCError(400, "Not possible to remove running processgraphs")
    if state not in (-1, WAITING, SUCCESS, 3):
        raise RPCError(400, f"Failed to remove processgraphs, invalid state {state}")

    def op(tx: Any) -> Any:
        require_colony_owner(tx, colony, signer)
        for gid in tx.graph_ids(colony, state):
            tx.delete_graph(gid)
        return {}
    return await rt.store.write(op)


@rpc("addchildmsg")
async def add_child(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    gid, parent_id = get_str(msg, "processgraphid"), get_str(msg, "parentprocessid")
    child_id, insert = get_str(msg, "childprocessid"), get_bool(msg, "insert")
    spec = normalize_spec(get_obj(msg, "spec"), max_string=rt.settings.max_string)
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        kind, who = require_member(tx, spec["conditions"]["colonyname"], signer)
        parent = tx.get_process(parent_id)
        if parent is None:
            raise RPCError(400, f"Failed to add child, parent process with id {parent_id} not found")
        if parent["assignedexecutorid"] != signer:
            raise RPCError(403, "Failed to add child, only the executor assigned to the parent may add children")
        if parent["state"] != RUNNING:
            raise RPCError(400, "Failed to add child, parent process is not running")
        if not parent["processgraphid"] or parent["processgraphid"] != (gid or parent["processgraphid"]):
            raise RPCError(400, "Failed to add child, parent process is not part of the processgraph")
        graph = tx.get_graph(parent["processgraphid"])
        if graph is None:
            raise RPCError(400, "Failed to add child, processgraph not found")
        child = new_process(spec, signer, member_name(kind, who), now, processgraphid=graph["processgraphid"],
                            waitforparents=True)
        child["parents"] = [parent_id]
        if insert:
            for cid in parent["children"]:
                c = tx.get_process(cid)
                if c is not None:
                    c["parents"] = [child["processid"] if x == parent_id else x for x in c["parents"]]
                    tx.update_process(c)
            child["children"] = list(parent["children"])
            parent["children"] = [child["processid"]]
        else:
            parent["children"].append(child["processid"])
            if child_id:
                c = tx.get_process(child_id)
                if c is None:
                    raise RPCError(400, f"Failed to add child, child process with id {child_id} not found")
                child["children"] = [child_id]
                c["parents"].append(child["processid"])
                tx.update_process(c)
        tx.update_process(parent)
        tx.insert_process(child)
        graph["processids"].append(child["processid"])
        tx.put_graph(graph)
        return render(child)
    return await rt.store.write(op)
