"""One builder per Colonies RPC (protocol §4): message fields as pycolonies sends them, typed replies."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from .call import Call, as_list, as_model, as_none, as_optional_model, as_raw
from .models import (
    Attribute,
    Colony,
    Executor,
    FuncSpec,
    Function,
    Log,
    Process,
    ProcessGraph,
    Statistics,
    User,
    WireModel,
    WorkflowSpec,
)

__all__ = [
    "NO_PROCESS",
    "add_attribute",
    "add_child",
    "add_colony",
    "add_executor",
    "add_executor_log",
    "add_function",
    "add_log",
    "add_user",
    "approve_executor",
    "assign",
    "bind_connection",
    "close",
    "close_and_assign",
    "close_many_and_assign",
    "colony_stats",
    "connection_nonce",
    "fail",
    "get_attribute",
    "get_colonies",
    "get_colony",
    "get_executor",
    "get_executors",
    "get_functions",
    "get_logs",
    "get_process",
    "get_processes",
    "get_processgraph",
    "get_processgraphs",
    "get_users",
    "heartbeat",
    "keyed_process_id",
    "reject_executor",
    "remove_all_processes",
    "remove_all_processgraphs",
    "remove_colony",
    "remove_executor",
    "remove_function",
    "remove_process",
    "remove_processgraph",
    "remove_user",
    "search_logs",
    "server_info",
    "set_output",
    "statistics",
    "submit",
    "submit_workflow",
    "version",
    "wire",
]

NO_PROCESS = "No process available"
"""Start of the assign error text that means "the queue is empty" (protocol §8.6)."""


def wire(obj: WireModel | Mapping[str, Any]) -> dict[str, Any]:
    """A model or a plain mapping as the JSON object to send."""
    return obj.to_wire() if isinstance(obj, WireModel) else dict(obj)


def _msg(msgtype: str, **fields: Any) -> dict[str, Any]:
    return {"msgtype": msgtype, **fields}


# -- server --------------------------------------------------------------------------------------

def version(*, prvkey: str | None = None) -> Call[dict[str, Any]]:
    """Server build version (`versionmsg`, unsigned on the server side)."""
    return Call(_msg("versionmsg"), as_raw, prvkey)


def _token(field: str) -> Any:
    def parse(payload: Any) -> str:
        value = payload.get(field) if isinstance(payload, dict) else None
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a reply with a {field!r} string, got {payload!r}"[:200])
        return value

    return parse


def connection_nonce() -> Call[str]:
    """Protocol extension (our server only, "sessions" in versionmsg's extensions; unsigned): a
    nonce for binding the connection this is sent on (docs/SERVER.md, "Connection sessions")."""
    return Call(_msg("connectionnoncemsg"), _token("nonce"))


def bind_connection(nonce: str, *, prvkey: str | None = None) -> Call[str]:
    """Protocol extension ("sessions"): bind the connection that `nonce` came on to the signer.
    Returns the session token; envelopes on that connection may then carry
    `build_envelope(..., session=token)` instead of a signature."""
    return Call(_msg("bindconnectionmsg", nonce=nonce), _token("session"), prvkey)


def server_info(*, prvkey: str | None = None) -> Call[dict[str, Any]]:
    """Server build and listener info (`getserverinfomsg`)."""
    return Call(_msg("getserverinfomsg"), as_raw, prvkey)


def statistics(*, prvkey: str | None = None) -> Call[Statistics]:
    """Server-wide counters; server owner only."""
    return Call(_msg("getstatisticsmsg"), as_model(Statistics), prvkey)


# -- colonies ------------------------------------------------------------------------------------

def add_colony(colony: Colony | Mapping[str, Any], *, prvkey: str | None = None) -> Call[Colony]:
    """Create a colony (server owner)."""
    return Call(_msg("addcolonymsg", colony=wire(colony)), as_model(Colony), prvkey)


def remove_colony(name: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("removecolonymsg", colonyname=name), as_none, prvkey)


def get_colonies(*, prvkey: str | None = None) -> Call[list[Colony]]:
    return Call(_msg("getcoloniesmsg"), as_list(Colony), prvkey)


def get_colony(name: str, *, prvkey: str | None = None) -> Call[Colony]:
    return Call(_msg("getcolonymsg", colonyname=name), as_model(Colony), prvkey)


def colony_stats(name: str, *, prvkey: str | None = None) -> Call[Statistics]:
    return Call(_msg("getcolonystatsmsg", colonyname=name), as_model(Statistics), prvkey)


# -- users ---------------------------------------------------------------------------------------

def add_user(user: User | Mapping[str, Any], *, prvkey: str | None = None) -> Call[User]:
    """Add a user to `user.colonyname` (colony owner)."""
    return Call(_msg("addusermsg", user=wire(user)), as_model(User), prvkey)


def get_users(colony: str, *, prvkey: str | None = None) -> Call[list[User]]:
    return Call(_msg("getusersmsg", colonyname=colony), as_list(User), prvkey)


def remove_user(colony: str, name: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("removeusermsg", colonyname=colony, name=name), as_none, prvkey)


# -- executors -----------------------------------------------------------------------------------

def add_executor(executor: Executor | Mapping[str, Any], *, prvkey: str | None = None) -> Call[Executor]:
    """Register an executor (colony owner); it starts PENDING until approved."""
    return Call(_msg("addexecutormsg", executor=wire(executor)), as_model(Executor), prvkey)


def approve_executor(colony: str, name: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("approveexecutormsg", colonyname=colony, executorname=name), as_none, prvkey)


def reject_executor(colony: str, name: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("rejectexecutormsg", colonyname=colony, executorname=name), as_none, prvkey)


def remove_executor(colony: str, name: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("removeexecutormsg", colonyname=colony, executorname=name), as_none, prvkey)


def get_executors(colony: str, *, prvkey: str | None = None) -> Call[list[Executor]]:
    return Call(_msg("getexecutorsmsg", colonyname=colony), as_list(Executor), prvkey)


def get_executor(colony: str, name: str, *, prvkey: str | None = None) -> Call[Executor]:
    return Call(_msg("getexecutormsg", colonyname=colony, executorname=name), as_model(Executor), prvkey)


def heartbeat(colony: str, executorname: str, lease: float, *, prvkey: str | None = None) -> Call[None]:
    """Protocol extension: opt in to a lease; silent for `lease` seconds = running work re-queued."""
    return Call(_msg("executorheartbeatmsg", colonyname=colony, executorname=executorname, lease=lease),
                as_none, prvkey)


# -- functions -----------------------------------------------------------------------------------

def add_function(colony: str, executorname: str, funcname: str, *,
                 prvkey: str | None = None) -> Call[Function]:
    fun = {"executorname": executorname, "colonyname": colony, "funcname": funcname}
    return Call(_msg("addfunctionmsg", fun=fun), as_model(Function), prvkey)


def get_functions(colony: str, executorname: str | None = None, *,
                  prvkey: str | None = None) -> Call[list[Function]]:
    fields: dict[str, Any] = {"colonyname": colony}
    if executorname is not None:
        fields["executorname"] = executorname
    return Call(_msg("getfunctionsmsg", **fields), as_list(Function), prvkey)


def remove_function(functionid: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("removefunctionmsg", functionid=functionid), as_none, prvkey)


# -- processes -----------------------------------------------------------------------------------

def submit(spec: FuncSpec | Mapping[str, Any], *, idempotency_key: str | None = None,
           prvkey: str | None = None) -> Call[Process]:
    """Queue a function call; the reply is the WAITING process.

    `idempotency_key` (colonyfaas' server; others ignore it): a submission sent again with the same
    key by the same identity in the same colony answers with the process the first one stored, in
    whatever state it is now, so a submit whose reply was lost can be resent safely (409 if the key
    was used for another function call)."""
    if idempotency_key:
        return Call(_msg("submitfuncspecmsg", spec=wire(spec), idempotencykey=idempotency_key),
                    as_model(Process), prvkey)
    return Call(_msg("submitfuncspecmsg", spec=wire(spec)), as_model(Process), prvkey)


def keyed_process_id(signer: str, colony: str, idempotency_key: str) -> str:
    """The id colonyfaas' server gives the process of a submission with `idempotency_key` by the
    identity `signer` (its id, not its key) in `colony` (docs/SERVER.md, "Idempotent submissions"):
    known before the server answers, so a caller can wait for it without an acknowledgement."""
    return hashlib.sha256(f"{signer}\0{colony}\0{idempotency_key}".encode()).hexdigest()


def assign(colony: str, timeout: float, availablecpu: str = "", availablemem: str = "", *,
           prvkey: str | None = None) -> Call[Process | None]:
    """Take the next process (long-polls up to `timeout` s; < 0 = one try); None when there is none."""
    fields: dict[str, Any] = {"timeout": timeout, "colonyname": colony}
    if availablecpu:
        fields["availablecpu"] = availablecpu
    if availablemem:
        fields["availablemem"] = availablemem
    return Call(_msg("assignprocessmsg", **fields), as_optional_model(Process), prvkey, none_if=NO_PROCESS)


def get_process(processid: str, *, prvkey: str | None = None) -> Call[Process]:
    return Call(_msg("getprocessmsg", processid=processid), as_model(Process), prvkey)


def get_processes(colony: str, state: int, count: int = 100, executortype: str | None = None, *,
                  label: str | None = None, initiator: str | None = None, processgraphid: str | None = None,
                  prvkey: str | None = None) -> Call[list[Process]]:
    """Processes of one state (0-3), at most `count` (<= 100 on the Go server); the server applies
    one of executortype / initiator (a user name) / label. `processgraphid` with state -1 lists a
    workflow's processes (pycolonies' get_processes_for_workflow; an extension of our server)."""
    fields: dict[str, Any] = {"colonyname": colony, "count": count, "state": int(state)}
    for key, value in (("executortype", executortype), ("label", label), ("initiator", initiator),
                       ("processgraphid", processgraphid)):
        if value:
            fields[key] = value
    return Call(_msg("getprocessesmsg", **fields), as_list(Process), prvkey)


def remove_process(processid: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("removeprocessmsg", processid=processid), as_none, prvkey)


def remove_all_processes(colony: str, state: int = -1, *, prvkey: str | None = None) -> Call[None]:
    """Remove non-workflow processes (-1 = every state but RUNNING); colony owner."""
    return Call(_msg("removeallprocessesmsg", colonyname=colony, state=int(state)), as_none, prvkey)


def close(processid: str, output: list[Any] | None = None, *, prvkey: str | None = None) -> Call[None]:
    """Mark the assigned process SUCCESS, replacing its output when `output` is non-empty."""
    return Call(_msg("closesuccessfulmsg", processid=processid, out=list(output or [])), as_none, prvkey)


def fail(processid: str, errors: list[str] | str, *, prvkey: str | None = None) -> Call[None]:
    """Mark the assigned process FAILED with these error texts."""
    errs = [errors] if isinstance(errors, str) else [str(e) for e in errors]
    return Call(_msg("closefailedmsg", processid=processid, errors=errs), as_none, prvkey)


def close_and_assign(processid: str, colony: str, timeout: float, *, output: list[Any] | None = None,
                     errors: list[str] | str | None = None, slim: bool = False,
                     prvkey: str | None = None) -> Call[Process | None]:
    """Protocol extension (our server only): `close` (or `fail`, when `errors` is given) the
    assigned process, then `assign` the next one, in one round trip. None when no process came
    within `timeout`. A refused close raises its own error and assigns nothing; the upstream
    server answers 403 "invalid rpcMsg.PayloadType" (send close and assign separately then).

    `slim`: the next process comes with only what running it takes — `processid`, `input` and
    the spec's `funcname`, `args`, `kwargs`, `env` and `maxexectime`; every other field is its
    default (docs/SERVER.md). A server without it sends the whole process, which parses the same."""
    fields: dict[str, Any] = {"processid": processid, "colonyname": colony, "timeout": timeout}
    if errors is None:
        fields.update(successful=True, out=list(output or []))
    else:
        fields.update(successful=False, errors=[errors] if isinstance(errors, str) else [str(e) for e in errors])
    if slim:
        fields["assigned"] = "slim"
    return Call(_msg("closeandassignmsg", **fields), _next_process, prvkey)


def _next_process(payload: Any) -> Process | None:
    process = (payload or {}).get("process")
    return None if process is None else Process.model_validate(process)


def close_many_and_assign(closes: Sequence[tuple[str, list[Any] | None, list[str] | None]], colony: str,
                          timeout: float, count: int, *, slim: bool = False,
                          prvkey: str | None = None) -> Call[tuple[list[Process], list[dict[str, Any]]]]:
    """Protocol extension (our server only, "closeandassign" in versionmsg's extensions): close
    several processes — each `(processid, output, None)`, or `(processid, None, errors)` to fail
    it — and assign up to `count` more, in one round trip and one transaction; long-polls up to
    `timeout` s for one (< 0: one try) when none is waiting. Returns (processes assigned, closes
    refused as {"processid", "status", "message"}): a refused close does not stop the others.
    `slim` as for close_and_assign."""
    items: list[dict[str, Any]] = []
    for pid, output, errors in closes:
        if errors is None:
            items.append({"processid": pid, "successful": True, "out": list(output or [])})
        else:
            items.append({"processid": pid, "successful": False, "errors": [str(e) for e in errors]})
    fields: dict[str, Any] = {"closes": items, "colonyname": colony, "timeout": timeout, "count": count}
    if slim:
        fields["assigned"] = "slim"
    return Call(_msg("closeandassignmsg", **fields), _assigned_and_refused, prvkey)


def _assigned_and_refused(payload: Any) -> tuple[list[Process], list[dict[str, Any]]]:
    payload = payload or {}
    return ([Process.model_validate(p) for p in payload.get("processes") or ()],
            [r for r in payload.get("refused") or () if isinstance(r, dict)])


def set_output(processid: str, output: list[Any], *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("setoutputmsg", processid=processid, out=list(output)), as_none, prvkey)


# -- attributes ----------------------------------------------------------------------------------

def add_attribute(processid: str, key: str, value: str, *, prvkey: str | None = None) -> Call[Attribute]:
    """Attach an OUT attribute to a running process (the assigned executor only)."""
    attribute = {"key": key, "value": value, "targetid": processid, "attributetype": 1}
    return Call(_msg("addattributemsg", attribute=attribute), as_model(Attribute), prvkey)


def get_attribute(attributeid: str, *, prvkey: str | None = None) -> Call[Attribute]:
    return Call(_msg("getattributemsg", attributeid=attributeid), as_model(Attribute), prvkey)


# -- logs ----------------------------------------------------------------------------------------

def add_log(processid: str, message: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("addlogmsg", processid=processid, message=message), as_none, prvkey)


def add_executor_log(colony: str, executorname: str, message: str, *,
                     prvkey: str | None = None) -> Call[None]:
    return Call(_msg("addexecutorlogmsg", colonyname=colony, executorname=executorname, message=message),
                as_none, prvkey)


def get_logs(colony: str, processid: str | None = None, executorname: str | None = None, count: int = 100,
             since: int = 0, latest: bool = False, *, prvkey: str | None = None) -> Call[list[Log]]:
    """Logs of a process or of an executor; `since` is Unix ns, `latest` = the newest `count`."""
    fields: dict[str, Any] = {"colonyname": colony, "processid": processid or "",
                              "executorname": executorname or "", "count": count, "since": since}
    if latest:
        fields["latest"] = True
    return Call(_msg("getlogsmsg", **fields), as_list(Log), prvkey)


def search_logs(colony: str, text: str, days: int = 1, count: int = 100, *,
                prvkey: str | None = None) -> Call[list[Log]]:
    return Call(_msg("searchlogsmsg", colonyname=colony, text=text, days=days, count=count),
                as_list(Log), prvkey)


# -- workflows -----------------------------------------------------------------------------------

def submit_workflow(spec: WorkflowSpec | Mapping[str, Any], *,
                    prvkey: str | None = None) -> Call[ProcessGraph]:
    return Call(_msg("submitworkflowspecmsg", spec=wire(spec)), as_model(ProcessGraph), prvkey)


def get_processgraph(processgraphid: str, *, prvkey: str | None = None) -> Call[ProcessGraph]:
    return Call(_msg("getprocessgraphmsg", processgraphid=processgraphid), as_model(ProcessGraph), prvkey)


def get_processgraphs(colony: str, count: int = 100, state: int = 0, *,
                      prvkey: str | None = None) -> Call[list[ProcessGraph]]:
    """Workflows of one state (the server's default, when omitted, is WAITING)."""
    return Call(_msg("getprocessgraphsmsg", colonyname=colony, count=count, state=int(state)),
                as_list(ProcessGraph), prvkey)


def remove_processgraph(processgraphid: str, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("removeprocessgraphmsg", processgraphid=processgraphid), as_none, prvkey)


def remove_all_processgraphs(colony: str, state: int = -1, *, prvkey: str | None = None) -> Call[None]:
    return Call(_msg("removeallprocessgraphsmsg", colonyname=colony, state=int(state)), as_none, prvkey)


def add_child(processgraphid: str, parentprocessid: str, childprocessid: str,
              spec: FuncSpec | Mapping[str, Any], insert: bool = False, *,
              prvkey: str | None = None) -> Call[Process]:
    """Add a process to a running workflow below `parentprocessid` (its assigned executor only)."""
    msg = _msg("addchildmsg", processgraphid=processgraphid, parentprocessid=parentprocessid,
               childprocessid=childprocessid, insert=insert, spec=wire(spec))
    return Call(msg, as_model(Process), prvkey)
