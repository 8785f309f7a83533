"""Crons: a workflow spec triggered by a cron expression or an interval; the checker loop's work."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timezone
from typing import Any

import orjson

from .. import jsonx
from ..cron import CronError, next_run, parse
from ..errors import RPCError
from ..procs import FAILED, MAX_SECONDS, SUCCESS, new_id
from ..registry import rpc
from ..roles import member_name, require_member
from ..runtime import Runtime
from ..timeutil import ZERO_TIME, fmt_time, parse_time
from .fields import get_bool, get_int, get_obj, get_str
from .graphs import insert_workflow, parse_workflow_spec

__all__ = ["check_crons", "compute_next"]

SEC = 1_000_000_000
log = logging.getLogger(__name__)


def compute_next(cron: dict[str, Any], now_ns: int) -> int:
    """Next run in Unix ns: interval seconds from now (random within it if asked) or the cron expression."""
    if cron["interval"] > 0:
        span = cron["interval"] * SEC
        return now_ns + (random.randint(1, span) if cron["random"] else span)
    after = datetime.fromtimestamp(now_ns / SEC, tz=timezone.utc)
    return int(next_run(parse(cron["cronexpression"]), after).timestamp()) * SEC


def _trigger(rt: Runtime, tx: Any, cron: dict[str, Any], now: int) -> dict[str, Any] | None:
    """Submit the cron's workflow now (chained on the previous graph's leaf outputs); None if waiting."""
    prev = tx.get_graph(cron["prevprocessgraphid"]) if cron["prevprocessgraphid"] else None
    if cron["waitforprevprocessgraph"] and prev is not None and prev["state"] not in (SUCCESS, FAILED):
        return None
    inputs: list[Any] = []
    if prev is not None:
        for p in tx.graph_processes(prev["processgraphid"]):
            if not p["children"]:
                inputs.extend(p.get("out") or [])
    colony, specs = parse_workflow_spec(jsonx.loads(cron["workflowspec"]), rt.settings.max_string)
    graph = insert_workflow(tx, cron["colonyname"], specs, cron["initiatorid"], cron["initiatorname"], now,
                            inputs or None)
    cron["prevprocessgraphid"] = graph["processgraphid"]
    cron["lastrun"] = fmt_time(now)
    return graph


def check_crons(rt: Runtime, tx: Any, now: int) -> int:
    """One checker pass over every cron: first pass only schedules; due ones run. Returns runs started."""
    runs = 0
    for cron in tx.list_crons(None, 1_000_000):
        # One broken cron (e.g. stored by an older version without today's limits) must not stop the rest.
        try:
            nxt = parse_time(cron["nextrun"])
            if nxt == 0:
                cron["nextrun"] = fmt_time(compute_next(cron, now))
                tx.put_cron(cron)
            elif nxt <= now:
                if _trigger(rt, tx, cron, now) is not None:
                    runs += 1
                cron["nextrun"] = fmt_time(compute_next(cron, now))
                tx.put_cron(cron)
        except Exception as e:
            log.warning("cron %s (%s) skipped: %s", cron.get("cronid", "?")[:12], cron.get("name"), e)
    return runs


@rpc("addcronmsg")
async def add_cron(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    c = get_obj(msg, "cron")
    cron: dict[str, Any] = {"cronid": new_id(), "initiatorid": signer, "initiatorname": "", "colonyname": get_str(c, "colonyname"),
            "name": get_str(c, "name", max_len=1024), "cronexpression": get_str(c, "cronexpression", max_len=256),
            "interval": get_int(c, "interval", 0), "random": get_bool(c, "random"), "nextrun": ZERO_TIME,
            "lastrun": ZERO_TIME, "workflowspec": get_str(c, "workflowspec", max_len=rt.settings.max_string),
            "prevprocessgraphid": "", "waitforprevprocessgraph": get_bool(c, "waitforprevprocessgraph"),
            "checkerperiod": int(rt.settings.cron_period * 1000)}
    if cron["interval"] == 0:
        raise RPCError(400, "Failed to add cron, interval must be -1 (cron expression) or > 0 seconds")
    if cron["interval"] > MAX_SECONDS:
        raise RPCError(400, f"Failed to add cron, interval must be at most {MAX_SECONDS} seconds")
    if cron["interval"] < 0:
        try:
            compute_next(cron, rt.now_ns())  # parses, and refuses expressions that never fire (Feb 31)
        except CronError as e:
            raise RPCError(400, f"Failed to add cron, {e}") from None
    if cron["random"] and cron["interval"] < 0:
        raise RPCError(400, "Failed to add cron, random needs an interval")
    try:
        spec = jsonx.loads(cron["workflowspec"])
    except orjson.JSONDecodeError:
        raise RPCError(400, "Failed to add cron, workflowspec is not valid JSON") from None
    _, specs = parse_workflow_spec(spec, rt.settings.max_string)
    from ..workflows import build_workflow

    try:
        build_workflow(cron["colonyname"], specs, signer, "", 0)
    except RPCError as e:
        raise RPCError(400, f"Failed to add cron, {e.message}") from None

    def op(tx: Any) -> Any:
        kind, who = require_member(tx, cron["colonyname"], signer)
        cron["initiatorname"] = member_name(kind, who)
        tx.put_cron(cron)
        return cron
    return await rt.store.write(op)


@rpc("getcronmsg")
async def get_cron(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    cid = get_str(msg, "cronid")

    def q(tx: Any) -> Any:
        cron = tx.get_cron(cid)
        if cron is None:
            raise RPCError(500, f"Failed to get cron, cron with id {cid} not found")
        require_member(tx, cron["colonyname"], signer)
        return cron
    return await rt.store.read(q)


@rpc("getcronsmsg")
async def get_crons(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, count = msg.get("colonyname"), get_int(msg, "count", 100)
    if count > rt.settings.max_list_count:
        raise RPCError(400, f"Failed to get crons, count exceeds the limit {rt.settings.max_list_count}")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        return tx.list_crons(colony, max(count, 0))
    return await rt.store.read(q)


@rpc("removecronmsg")
async def remove_cron(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    cid = get_str(msg, "cronid")

    def op(tx: Any) -> Any:
        cron = tx.get_cron(cid)
        if cron is None:
            raise RPCError(500, f"Failed to remove cron, cron with id {cid} not found")
        require_member(tx, cron["colonyname"], signer)
        tx.remove_cron(cid)
        return {}
    return await rt.store.write(op)


@rpc("runcronmsg")
async def run_cron(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    cid = get_str(msg, "cronid")
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        cron = tx.get_cron(cid)
        if cron is None:
            raise RPCError(500, f"Failed to run cron, cron with id {cid} not found")
        # Unlike upstream (which runs it before checking), membership is checked first.
        require_member(tx, cron["colonyname"], signer)
        _trigger(rt, tx, cron, now)
        tx.put_cron(cron)
        return cron
    return await rt.store.write(op)
