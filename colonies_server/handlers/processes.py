"""Processes: submit, assign (long-poll), get, list, remove, close successful/failed, set output, history."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any

from .. import lifecycle
from ..errors import NoReply, RPCError
from ..procs import FAILED, RUNNING, STATES, SUCCESS, WAITING, new_process, normalize_spec, render
from ..registry import rpc
from ..roles import member_name, require_colony_owner, require_member
from ..runtime import Runtime
from .fields import get_int, get_list, get_num, get_str

__all__ = ["assigned_process", "keyed_id", "submit_process"]

MAX_KEY = 512


def assigned_process(tx: Any, processid: str, signer: str, what: str) -> dict[str, Any]:
    """The process, if the signer is a member of its colony and the executor it is assigned to (M and AE)."""
    p = tx.get_process(processid)
    if p is None:
        raise RPCError(500, f"Failed to {what}, process is nil")
    require_member(tx, p["spec"]["conditions"]["colonyname"], signer)
    if not p["assignedexecutorid"]:
        raise RPCError(403, f"Failed to {what}, process is not assigned")
    if p["assignedexecutorid"] != signer:
        raise RPCError(403, f"Failed to {what}, not allowed to {what} of a process assigned to another executor")
    return p  # type: ignore[no-any-return]


@rpc("submitfuncspecmsg")
async def submit(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    return await submit_process(rt, signer, msg)


def keyed_id(msg: dict[str, Any], signer: str) -> tuple[str, str]:
    """Extension: (a submission's "idempotencykey", the process id it stands for); ("", "") without one.

    Derived from the signer, the colony and the key, so a resent submission (its answer lost to a
    dropped connection or a restarted server) finds the process the first one stored instead of
    queueing a second, across replicas too; and nobody else's key can name that process. The
    derivation is part of the extension (docs/SERVER.md): a client can know its process id before
    the server answers (the gateway's batched submissions ask for no acknowledgement).
    """
    key = get_str(msg, "idempotencykey", max_len=MAX_KEY)
    if not key:
        return "", ""
    spec = msg.get("spec")
    cond = spec.get("conditions") if isinstance(spec, dict) else None
    colony = cond.get("colonyname") if isinstance(cond, dict) else None  # (a bad spec is refused later)
    return key, hashlib.sha256(f"{signer}\0{colony}\0{key}".encode()).hexdigest()


def _same_call(stored: dict[str, Any], spec: dict[str, Any], key: str) -> dict[str, Any]:
    s = stored["spec"]
    if (s["funcname"], s["args"], s["kwargs"]) != (spec["funcname"], spec["args"], spec["kwargs"]):
        raise RPCError(409, f"Failed to submit function spec, idempotencykey {key!r} was already used for "
                            "another function call")
    return stored


async def submit_process(rt: Runtime, signer: str, msg: dict[str, Any], processid: str = "",
                         key: str | None = None) -> dict[str, Any]:
    """submitfuncspecmsg's work: the stored process as submitted, WAITING (RPCError if refused).
    `processid`, when given, is the new process's id (submitandsubscribemsg subscribes to it first).
    With an "idempotencykey" a submission whose process exists answers with that process as it is
    now, in whatever state; a caller that read it already with keyed_id passes it as `key`, and
    keyed_id's id as `processid`.

    Hand-off: when an executor that may run it is parked in a long-poll with nothing else on its
    way, the process is stored already assigned to it, in the same transaction, and handed to its
    long-poll when that commits: one transaction and no queue look-up instead of two. A parked
    executor found nothing to run at its last attempt and has had no wake-up since, so no process
    it could take waits ahead of this one. SQLite only (Store.inline_ops)."""
    spec = normalize_spec(msg.get("spec"), max_string=rt.settings.max_string)
    cond = spec["conditions"]
    colony = cond["colonyname"]
    now = rt.now_ns()
    hub = rt.hub if rt.store.inline_ops else None
    claimed: list[Any] = []
    if key is None:
        key, keyed = keyed_id(msg, signer)
        processid = keyed or processid

    def op(tx: Any) -> Any:
        kind, who = require_member(tx, colony, signer)
        if key:
            stored = tx.get_process(processid)
            if stored is not None:
                return _same_call(stored, spec, key)
        p = new_process(spec, signer, member_name(kind, who), now, processid=processid)
        w = None
        if hub is not None and not p["waitforparents"]:
            w = hub.claim(colony, cond["executortype"], cond.get("executornames"))
        if w is None:
            tx.insert_process(p)
            lifecycle.signal(tx, p)
            return p
        claimed.append(w)
        running = lifecycle.start(dict(p), w.executor, now)
        tx.insert_process(running)
        tx.emit("process", p)
        tx.emit("process", running)
        tx.emit("handoff", w, running)
        return p
    stored = rt.store.write(op)

    def settle(f: asyncio.Future[Any]) -> None:
        # The commit's own outcome decides, not this task's: a submitter that goes away while the
        # commit is under way must neither cancel the write nor leave the waiter claimed.
        failed = f.cancelled() or f.exception() is not None  # (retrieves the exception either way)
        if failed and claimed:
            rt.hub.settle(claimed[0], None)  # rolled back: nothing was handed over
    fut = asyncio.ensure_future(stored)
    fut.add_done_callback(settle)
    p: dict[str, Any] = await asyncio.shield(fut)
    return p


def _assigning_executor(tx: Any, colony: Any, signer: str) -> dict[str, Any]:
    # require_member answers with the signer's executor record when it is an approved executor.
    kind, who = require_member(tx, colony, signer)
    if kind != "executor":
        raise RPCError(500, "Failed to assign process, executor not found")
    return who


@rpc("assignprocessmsg")
async def assign(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, timeout = _assign_args(rt, msg, "Failed to assign process")
    e = await rt.store.read(lambda tx: _assigning_executor(tx, colony, signer))
    p = await _long_poll(rt, signer, colony, e, timeout)
    if p is None:
        raise RPCError(404, "Failed to assign process, No process available for assignment")
    return render(p)


def _assign_args(rt: Runtime, msg: dict[str, Any], what: str) -> tuple[Any, float]:
    colony = get_str(msg, "colonyname")
    timeout = get_num(msg, "timeout", 0.0)
    if timeout == 0:
        raise RPCError(400, f"{what}, timeout must not be 0")
    return colony, min(timeout, rt.settings.max_assign_timeout)


async def _long_poll(rt: Runtime, signer: str, colony: str, e: dict[str, Any], timeout: float,
                     first: Callable[[Any], Any] | None = None) -> dict[str, Any] | None:
    """The next process for executor `e`, waiting up to `timeout` s (< 0: one try); None if none came.

    `first` replaces the first attempt's write (closeandassignmsg: the close and the assign in one
    transaction); it must end by returning lifecycle.assign_next's result.
    """
    etype, store, hub = e["executortype"], rt.store, rt.hub
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while True:
        # Park before trying, so a submit committed between the attempt and the wait still wakes us.
        waiter = hub.park(colony, etype, e) if timeout > 0 else None
        try:
            now = rt.now_ns()
            rt.heard_from(signer, now)
            attempt = first or functools.partial(lifecycle.assign_next, colony=colony, executor=e, now_ns=now)
            first = None
            p: dict[str, Any] | None = await store.write(attempt)
            if p is not None:
                return p
            remaining = deadline - time.monotonic()
            if waiter is None or remaining <= 0:
                return None
            timer = loop.call_later(remaining, waiter.event.set)
            waiter.idle = True  # only now may a submission claim it (Hub.claim)
            try:
                await waiter.event.wait()
            finally:
                waiter.idle = False
                timer.cancel()
            if waiter.outcome is not None:  # claimed: a process was (or was not) handed over
                p = await waiter.outcome
                if p is not None:
                    return p
        finally:
            if waiter is not None:
                hub.unpark(waiter)


MAX_CLOSES = 1000
MAX_COUNT = 100


@rpc("closeandassignmsg")
async def close_and_assign(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    """Extension: close (or fail) the signer's process, then assign it the next one; one round trip
    and, when a process is waiting, one transaction instead of two. Reply {"process": p | null};
    a refused close is the close's own error, and nothing is assigned then. With "closes" (a list
    of closes) and "count", see _close_many_and_assign."""
    if "closes" in msg:
        return await _close_many_and_assign(rt, signer, msg)
    reply = _assigned(msg)  # a bad "assigned" is refused before anything is closed
    pid = get_str(msg, "processid")
    successful = msg.get("successful")
    if not isinstance(successful, bool):
        raise RPCError(400, "Failed to close and assign, successful must be true or false")
    out = get_list(msg, "out") if successful else None
    errors = None if successful else _error_texts(msg)
    colony, timeout = _assign_args(rt, msg, "Failed to close and assign")
    e = await rt.store.read(lambda tx: _assigning_executor(tx, colony, signer))
    now = rt.now_ns()

    def first(tx: Any) -> Any:
        if successful:
            _close_successful(tx, pid, signer, out, now)
        else:
            _close_failed(tx, pid, signer, errors or [], now)
        return lifecycle.assign_next(tx, colony=colony, executor=e, now_ns=now)
    p = await _long_poll(rt, signer, colony, e, timeout, first)
    return {"process": reply(p) if p is not None else None}


SLIM_SPEC = ("funcname", "args", "kwargs", "env", "maxexectime")
"""What of a spec an executor needs to run it (faas_executor reads nothing else of an assignment)."""


def _slim_assignment(p: dict[str, Any]) -> dict[str, Any]:
    """An assignment with "assigned": "slim": the process's id, `in` and the spec fields that run
    it. The whole process is ~1.7 KB rendered; ten of them a reply were ~20 KB to encode, send,
    decode and validate for six fields each (bench/README.md, ninth round)."""
    spec = p["spec"]
    return {"processid": p["processid"], "spec": {k: spec[k] for k in SLIM_SPEC if k in spec},
            "in": p.get("in", [])}


def _assigned(msg: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """How the processes assigned by a closeandassignmsg are replied: slim or whole."""
    how = msg.get("assigned", "process")
    if how not in ("process", "slim"):
        raise RPCError(400, 'Failed to close and assign, assigned must be "process" or "slim"')
    return _slim_assignment if how == "slim" else render


def _closes(msg: dict[str, Any]) -> list[tuple[str, bool, list[Any]]]:
    """The "closes" of a batched closeandassignmsg: (processid, successful, out or errors)."""
    raw = msg.get("closes")
    if not isinstance(raw, list) or len(raw) > MAX_CLOSES:
        raise RPCError(400, f"Failed to close and assign, closes must be a list of at most {MAX_CLOSES} closes")
    out: list[tuple[str, bool, list[Any]]] = []
    for c in raw:
        if not isinstance(c, dict):
            raise RPCError(400, "Failed to close and assign, every one of closes must be an object")
        successful = c.get("successful")
        if not isinstance(successful, bool):
            raise RPCError(400, "Failed to close and assign, successful must be true or false")
        out.append((get_str(c, "processid"), successful, get_list(c, "out") if successful else _error_texts(c)))
    return out


async def _close_many_and_assign(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    """Extension, batched: close (or fail) each of "closes", then assign up to "count" processes,
    in one transaction; long-polls for one (up to `timeout`) only when none was waiting. A close
    that is refused is reported in "refused" ({"processid", "status", "message"}) and the others,
    and the assignment, go on. Reply {"processes": [...], "refused": [...]}. An executor with
    several calls finished and room for more sends one message for all of them."""
    closes = _closes(msg)
    reply = _assigned(msg)
    count = get_int(msg, "count", 1)
    if not 0 <= count <= MAX_COUNT:
        raise RPCError(400, f"Failed to close and assign, count must be 0 to {MAX_COUNT}")
    colony = get_str(msg, "colonyname")
    timeout = min(get_num(msg, "timeout", -1.0), rt.settings.max_assign_timeout)
    e = await rt.store.read(lambda tx: _assigning_executor(tx, colony, signer))
    now = rt.now_ns()
    refused: list[dict[str, Any]] = []

    def first(tx: Any) -> Any:
        refused.clear()  # (the write runs once; cleared in case a store ever retries it)
        for pid, successful, data in closes:
            try:  # every check comes before the close writes anything (_close_successful/_failed)
                if successful:
                    _close_successful(tx, pid, signer, data, now)
                else:
                    _close_failed(tx, pid, signer, data, now)
            except RPCError as err:
                refused.append({"processid": pid, "status": err.status, "message": err.message})
        got: list[dict[str, Any]] = []
        while len(got) < count:
            p = lifecycle.assign_next(tx, colony=colony, executor=e, now_ns=now)
            if p is None:
                break
            got.append(p)
        return got or None
    if count == 0 or timeout == 0:
        got = await rt.store.write(first)
    else:
        got = await _long_poll(rt, signer, colony, e, timeout, first)
    procs = [] if got is None else got if isinstance(got, list) else [got]
    return {"processes": [reply(p) for p in procs], "refused": refused}


@rpc("getprocessmsg")
async def get_process(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    pid = get_str(msg, "processid")

    def q(tx: Any) -> Any:
        p = tx.get_process(pid)
        if p is None:
            raise RPCError(404, f"Failed to get process, process with id {pid} not found")
        require_member(tx, p["spec"]["conditions"]["colonyname"], signer)
        return render(p)
    return await rt.store.read(q)


@rpc("getprocessesmsg")
async def get_processes(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony = msg.get("colonyname")
    count, state = get_int(msg, "count", 0), get_int(msg, "state", 0)
    graphid = get_str(msg, "processgraphid")
    if count > rt.settings.max_list_count:
        raise RPCError(400, f"Failed to get processes, count exceeds the limit {rt.settings.max_list_count}")
    # Extension: state -1 with a processgraphid lists a workflow's processes (pycolonies'
    # get_processes_for_workflow); upstream rejects -1 always (quirk §8.10).
    if state not in STATES and not (state == -1 and graphid):
        raise RPCError(400, "Failed to get processes, invalid msg.State")
    initiator, label, etype = get_str(msg, "initiator"), get_str(msg, "label"), get_str(msg, "executortype")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        if initiator and not etype and tx.get_user(colony, initiator) is None:
            raise RPCError(400, f"Failed to get processes, no user with name {initiator}")
        ps = tx.list_processes(colony, state, max(count, 0), executortype=etype, label=label,
                               initiator=initiator, processgraphid=graphid)
        return [render(p) for p in ps] or None
    return await rt.store.read(q)


@rpc("getprocesshistmsg")
async def get_process_hist(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, executorid = msg.get("colonyname"), get_str(msg, "executorid")
    seconds, state = get_int(msg, "seconds", 0), get_int(msg, "state", 0)
    if not 0 <= seconds <= 100 * 365 * 86_400:
        raise RPCError(400, "Failed to get process history, seconds out of range")
    since = rt.now_ns() - seconds * 1_000_000_000

    def q(tx: Any) -> Any:
        try:
            require_member(tx, colony, signer)
        except RPCError:
            raise NoReply() from None  # quirk §8.13
        return [render(p) for p in tx.processes_since(colony, since, state, executorid)] or None
    return await rt.store.read(q)


@rpc("removeprocessmsg")
async def remove_process(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    pid = get_str(msg, "processid")

    def op(tx: Any) -> Any:
        p = tx.get_process(pid)
        if p is None:
            raise RPCError(500, f"Failed to remove process, process with id {pid} not found (process is nil)")
        require_member(tx, p["spec"]["conditions"]["colonyname"], signer)
        if p["processgraphid"]:
            raise RPCError(400, "Failed to remove process, cannot remove a process part of a workflow, "
                                "remove the workflow instead")
        if p["state"] == RUNNING:
            raise RPCError(400, "Failed to remove process, cannot remove a running process")
        tx.delete_process(pid)
        return {}
    return await rt.store.write(op)


@rpc("removeallprocessesmsg")
async def remove_all_processes(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, state = msg.get("colonyname"), get_int(msg, "state", 0)
    if state == RUNNING:
        raise RPCError(400, "Not possible to remove running processes")
    if state not in (-1, WAITING, SUCCESS, FAILED):
        raise RPCError(400, f"Failed to remove processes, invalid state {state}")

    def op(tx: Any) -> Any:
        require_colony_owner(tx, colony, signer)
        tx.remove_all_processes(colony, state)
        return {}
    return await rt.store.write(op)


def _error_texts(msg: dict[str, Any]) -> list[str]:
    return [e if isinstance(e, str) else str(e) for e in get_list(msg, "errors")]


def _close_successful(tx: Any, pid: str, signer: str, out: list[Any] | None, now: int) -> None:
    p = assigned_process(tx, pid, signer, "close process")
    if p["state"] == WAITING:
        raise RPCError(400, "Failed to close process, tried to close a waiting process as successful")
    if p["state"] == FAILED:
        raise RPCError(400, "Failed to close process, tried to set failed process as successful")
    lifecycle.close(tx, p, out, now)


def _close_failed(tx: Any, pid: str, signer: str, errors: list[str], now: int) -> None:
    p = assigned_process(tx, pid, signer, "close process")
    if p["state"] == SUCCESS:
        raise RPCError(400, "Tried to set successful process as failed")
    if p["state"] == FAILED:
        raise RPCError(400, "Tried to set failed process as failed")
    if p["state"] == WAITING:
        raise RPCError(400, "Failed to close process, tried to close a waiting process as failed")
    lifecycle.fail(tx, p, errors, now)


@rpc("closesuccessfulmsg")
async def close_successful(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    pid, out = get_str(msg, "processid"), get_list(msg, "out")
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        _close_successful(tx, pid, signer, out, now)
        return {}
    return await rt.store.write(op)


@rpc("closefailedmsg")
async def close_failed(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    pid = get_str(msg, "processid")
    errors = _error_texts(msg)
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        _close_failed(tx, pid, signer, errors, now)
        return {}
    return await rt.store.write(op)


@rpc("setoutputmsg")
async def set_output(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    pid, out = get_str(msg, "processid"), get_list(msg, "out")

    def op(tx: Any) -> Any:
        p = assigned_process(tx, pid, signer, "set output")
        if p["state"] != RUNNING:
            raise RPCError(403, "Failed to set output, process is not running")
        if out:
            p["out"] = out
            tx.update_process(p)
        return {}
    return await rt.store.write(op)
