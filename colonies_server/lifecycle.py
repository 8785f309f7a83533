"""Process state transitions over a Tx: assign, close, fail, re-queue, workflow resolution, stats.

Every function runs inside one store write (atomic) and emits the signals to publish after COMMIT:
("wake", colony, executortype) for assigners and ("process", process) for /pubsub subscribers.
"""

from __future__ import annotations

from typing import Any

from .procs import FAILED, RUNNING, SUCCESS, WAITING
from .timeutil import ZERO_TIME, fmt_time, parse_time
from .workflows import resolve

__all__ = ["assign_next", "close", "fail", "requeue", "resolve_graph", "signal", "start"]

SEC = 1_000_000_000


def signal(tx: Any, p: dict[str, Any]) -> None:
    tx.emit("process", p)
    if p["state"] == WAITING and not p["waitforparents"]:
        tx.emit("wake", p["spec"]["conditions"]["colonyname"], p["spec"]["conditions"]["executortype"])


def start(p: dict[str, Any], executor: dict[str, Any], now_ns: int) -> dict[str, Any]:
    """p (changed in place, only top-level fields) as RUNNING on the executor from now."""
    p["state"] = RUNNING
    p["isassigned"] = True
    p["assignedexecutorid"] = executor["executorid"]
    p["starttime"] = fmt_time(now_ns)
    maxexec = p["spec"]["maxexectime"]
    p["execdeadline"] = fmt_time(now_ns + maxexec * SEC) if maxexec > 0 else ZERO_TIME
    return p


def assign_next(tx: Any, colony: str, executor: dict[str, Any], now_ns: int) -> dict[str, Any] | None:
    """Atomically hand the best waiting process to the executor (§6.2), or None."""
    p = tx.next_assignable(colony, executor["executortype"], executor["executorname"])
    if p is None:
        return None
    start(p, executor, now_ns)
    if p["processgraphid"]:
        if p["parents"]:
            inputs: list[Any] = []
            for parent in tx.get_processes(p["parents"]):
                inputs.extend(parent.get("out") or [])
            p["in"] = inputs
        tx.update_process(p)
        resolve_graph(tx, p["processgraphid"], now_ns)
    else:
        tx.update_process(p)
    tx.emit("process", p)
    return p  # type: ignore[no-any-return]


def close(tx: Any, p: dict[str, Any], out: list[Any] | None, now_ns: int) -> None:
    """RUNNING (or SUCCESS again) → SUCCESS; releases workflow children; function statistics."""
    if out:
        p["out"] = out
    p["state"] = SUCCESS
    p["endtime"] = fmt_time(now_ns)
    tx.update_process(p)
    _function_stats(tx, p)
    tx.emit("process", p)
    if p["processgraphid"]:
        resolve_graph(tx, p["processgraphid"], now_ns)


def fail(tx: Any, p: dict[str, Any], errors: list[str], now_ns: int) -> None:
    """→ FAILED with errors; the rest of its workflow fails too."""
    p["state"] = FAILED
    p["endtime"] = fmt_time(now_ns)
    p["errors"] = list(errors)
    tx.update_process(p)
    tx.emit("process", p)
    if p["processgraphid"]:
        resolve_graph(tx, p["processgraphid"], now_ns)


def requeue(tx: Any, p: dict[str, Any], now_ns: int, *, count_retry: bool, error: str) -> None:
    """Take a RUNNING process back from its executor: WAITING again, or FAILED once retries are used up.

    count_retry=True is the maxexectime / lease path (§6.3); False is executor removal (§6.4).
    """
    spec = p["spec"]
    if count_retry and spec["maxretries"] > -1 and p["retries"] >= spec["maxretries"]:
        fail(tx, p, [error], now_ns)
        return
    p["state"] = WAITING
    p["isassigned"] = False
    p["assignedexecutorid"] = ""
    if count_retry:
        p["retries"] += 1
        p["endtime"] = fmt_time(now_ns)
        if spec["maxwaittime"] > 0:
            p["waitdeadline"] = fmt_time(now_ns + spec["maxwaittime"] * SEC)
    else:
        p["starttime"] = p["endtime"] = ZERO_TIME
    tx.update_process(p)
    signal(tx, p)


def resolve_graph(tx: Any, graphid: str, now_ns: int) -> None:
    graph = tx.get_graph(graphid)
    if graph is None:
        return
    procs = tx.graph_processes(graphid)
    released, failed, state = resolve(procs)
    for p in released:
        tx.update_process(p)
        signal(tx, p)
    for p in failed:
        tx.update_process(p)
        # Upstream sends no signal here; we do, so a wait() on a sibling ends instead of timing out.
        tx.emit("process", p)
    if state != graph["state"]:
        if graph["state"] == WAITING and state != WAITING and graph["starttime"] == ZERO_TIME:
            graph["starttime"] = fmt_time(now_ns)
        if state in (SUCCESS, FAILED):
            graph["endtime"] = fmt_time(now_ns)
        graph["state"] = state
        tx.put_graph(graph)


def _function_stats(tx: Any, p: dict[str, Any]) -> None:
    """Upstream's statistics: counter, min/max and the (old+new)/2 'average' of wait and exec time."""
    colony = p["spec"]["conditions"]["colonyname"]
    ex = tx.executor_in(colony, p["assignedexecutorid"])
    if ex is None:
        return
    funcs = tx.find_functions(colony, ex["executorname"], p["spec"]["funcname"])
    if not funcs:
        return
    sub, start, end = (parse_time(p[k]) for k in ("submissiontime", "starttime", "endtime"))
    wait_s, exec_s = max(0, start - sub) / SEC, max(0, end - start) / SEC
    for f in funcs:
        first = f["counter"] == 0
        f["counter"] += 1
        for kind, v in (("wait", wait_s), ("exec", exec_s)):
            f[f"min{kind}time"] = v if first else min(f[f"min{kind}time"], v)
            f[f"max{kind}time"] = v if first else max(f[f"max{kind}time"], v)
            f[f"avg{kind}time"] = v if first else (f[f"avg{kind}time"] + v) / 2
        tx.put_function_stats(f)
