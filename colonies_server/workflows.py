"""Workflow rules as pure functions: build a graph from specs, resolve states, render nodes/edges."""

from __future__ import annotations

from typing import Any

from .errors import RPCError
from .procs import FAILED, RUNNING, SUCCESS, WAITING, new_id, new_process
from .timeutil import ZERO_TIME, fmt_time

__all__ = ["build_workflow", "graph_state", "render_graph", "resolve"]

_COLOURS = {WAITING: "#e5e7eb", RUNNING: "#93c5fd", SUCCESS: "#86efac", FAILED: "#fca5a5"}


def build_workflow(colony: str, specs: list[dict[str, Any]], initiatorid: str, initiatorname: str, now_ns: int,
                   root_inputs: list[Any] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(graph, processes) for normalised specs; roots get `in` = root_inputs (cron chaining)."""
    names: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name = spec["nodename"]
        if not name:
            raise RPCError(500, "Failed to submit workflow, nodename is missing")
        if name in names:
            raise RPCError(500, f"Failed to submit workflow, Duplicate nodename: {name}")
        names[name] = spec
    for spec in specs:
        for dep in spec["conditions"]["dependencies"]:
            if dep not in names:
                raise RPCError(500, f"Failed to submit workflow, invalid dependencies, are you depending on a "
                                    f"nodename that does not exits? ({dep})")
    # Not checked upstream, where such a graph is stored and waits forever (ours: 400).
    if not specs:
        raise RPCError(400, "Failed to submit workflow, it has no function specs")
    cycle = _cycle({name: list(spec["conditions"]["dependencies"]) for name, spec in names.items()})
    if cycle:
        raise RPCError(400, f"Failed to submit workflow, its dependencies form a cycle: {' -> '.join(cycle)}")
    graphid = new_id()
    procs: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(specs):
        spec["conditions"]["colonyname"] = colony
        deps = spec["conditions"]["dependencies"]
        # +i keeps the submission order stable for processes created in the same nanosecond.
        p = new_process(spec, initiatorid, initiatorname, now_ns + i, processgraphid=graphid,
                        waitforparents=bool(deps))
        procs[spec["nodename"]] = p
    roots = []
    for p in procs.values():
        for dep in p["spec"]["conditions"]["dependencies"]:
            p["parents"].append(procs[dep]["processid"])
            procs[dep]["children"].append(p["processid"])
        if not p["parents"]:
            roots.append(p["processid"])
            if root_inputs:
                p["in"] = list(root_inputs)
    graph = {
        "processgraphid": graphid, "initiatorid": initiatorid, "initiatorname": initiatorname,
        "colonyname": colony, "rootprocessids": roots, "state": WAITING, "submissiontime": fmt_time(now_ns),
        "starttime": ZERO_TIME, "endtime": ZERO_TIME, "processids": [p["processid"] for p in procs.values()],
        "nodes": [], "edges": [],
    }
    return graph, list(procs.values())


def _cycle(deps: dict[str, list[str]]) -> list[str]:
    """A dependency cycle as node names (first = last), or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in deps:
        if start in state:
            continue
        path, todo = [start], [iter(deps[start])]
        state[start] = 1
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                todo.append(iter(deps[nxt]))
    return []


def graph_state(states: list[int]) -> int:
    if any(s == FAILED for s in states):
        return FAILED
    if states and all(s == SUCCESS for s in states):
        return SUCCESS
    if any(s in (SUCCESS, RUNNING) for s in states):
        return RUNNING
    return WAITING


def resolve(procs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """One resolution pass (§4.8): (released, failed, graph_state).

    released: processes whose parents all succeeded (waitforparents flipped to False);
    failed: processes set to FAILED because some process of the graph failed (state only).
    The dicts are modified in place.
    """
    by_id = {p["processid"]: p for p in procs}
    released, failed = [], []
    if any(p["state"] == FAILED for p in procs):
        for p in procs:
            if p["state"] != FAILED:
                p["state"] = FAILED
                failed.append(p)
    else:
        for p in procs:
            if p["waitforparents"] and all(by_id.get(q, {}).get("state") == SUCCESS for q in p["parents"]):
                p["waitforparents"] = False
                released.append(p)
    return released, failed, graph_state([p["state"] for p in procs])


def render_graph(graph: dict[str, Any], procs: list[dict[str, Any]]) -> dict[str, Any]:
    """The graph with display nodes and edges computed from its processes."""
    by_id = {p["processid"]: p for p in procs}
    nodes, edges = [], []
    for i, pid in enumerate(graph["processids"]):
        p = by_id.get(pid)
        if p is None:
            continue
        kind = "input" if not p["parents"] else ("output" if not p["children"] else "")
        nodes.append({"id": pid, "data": {"label": p["spec"]["nodename"]}, "position": {"x": 0, "y": i * 100},
                      "type": kind, "style": {"color": "", "background": _COLOURS.get(p["state"], "")}})
        for child in p["children"]:
            edges.append({"id": f"{pid}-{child}", "source": pid, "target": child, "animated": p["state"] == RUNNING})
    return dict(graph, nodes=nodes, edges=edges)
