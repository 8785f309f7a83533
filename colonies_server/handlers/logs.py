"""Logs: per process (by its assigned executor), per executor, and substring search."""

from __future__ import annotations

from typing import Any

from ..errors import RPCError
from ..procs import RUNNING
from ..registry import rpc
from ..roles import require_executor_self, require_member
from ..runtime import Runtime
from .fields import get_bool, get_int, get_str

__all__: list[str] = []

DAY_NS = 86_400 * 1_000_000_000


@rpc("addlogmsg")
async def add_log(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    pid, text = get_str(msg, "processid"), get_str(msg, "message", max_len=rt.settings.max_string)
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        p = tx.get_process(pid)
        if p is None:
            raise RPCError(500, f"Failed to add log, process with id {pid} not found (process is nil)")
        colony = p["spec"]["conditions"]["colonyname"]
        require_member(tx, colony, signer)
        if p["state"] != RUNNING:
            raise RPCError(403, "Failed to set output, process is not running")
        if p["assignedexecutorid"] != signer:
            raise RPCError(403, "Failed to add log, not allowed to add logs to a process assigned to another executor")
        e = tx.get_executor_by_id(colony, signer)
        tx.add_log({"processid": pid, "colonyname": colony, "executorname": e["executorname"] if e else "",
                    "message": text, "timestamp": now})
        return {}
    return await rt.store.write(op)


@rpc("addexecutorlogmsg")
async def add_executor_log(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, name = msg.get("colonyname"), msg.get("executorname")
    text = get_str(msg, "message", max_len=rt.settings.max_string)
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        e = require_executor_self(tx, colony, name, signer, approved=True)
        tx.add_log({"processid": "", "colonyname": e["colonyname"], "executorname": e["executorname"],
                    "message": text, "timestamp": now})
        return {}
    return await rt.store.write(op)


@rpc("getlogsmsg")
async def get_logs(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, pid, ename = msg.get("colonyname"), get_str(msg, "processid"), get_str(msg, "executorname")
    count, since, latest = get_int(msg, "count", 0), get_int(msg, "since", 0), get_bool(msg, "latest")
    if count > rt.settings.max_log_count:
        raise RPCError(403, f"Failed to get logs, count exceeds the limit {rt.settings.max_log_count}")

    def q(tx: Any) -> Any:
        if ename:
            require_member(tx, colony, signer)
            if tx.get_executor(colony, ename) is None:
                raise RPCError(500, f"Failed to get logs, executor with name {ename} not found")
            # The asked colony's executor only (upstream reads every colony's executor of that name).
            logs = tx.get_logs(executorname=ename, colonyname=colony, count=max(count, 0), since=max(since, 0),
                               latest=latest)
        else:
            p = tx.get_process(pid)
            if p is None:
                raise RPCError(500, f"Failed to get logs, process with id {pid} not found")
            require_member(tx, p["spec"]["conditions"]["colonyname"], signer)
            logs = tx.get_logs(processid=pid, count=max(count, 0), since=max(since, 0), latest=latest)
        return logs or None
    return await rt.store.read(q)


@rpc("searchlogsmsg")
async def search_logs(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, text = msg.get("colonyname"), get_str(msg, "text", max_len=4096)
    days, count = get_int(msg, "days", 1), get_int(msg, "count", 0)
    if days > 30 or days < 0:
        raise RPCError(400, "Failed to search logs, days must be between 0 and 30")
    if count > rt.settings.max_list_count:
        raise RPCError(400, f"Failed to search logs, count exceeds the limit {rt.settings.max_list_count}")
    since = rt.now_ns() - days * DAY_NS

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        return tx.search_logs(colony, text, since, max(count, 0)) or None
    return await rt.store.read(q)
