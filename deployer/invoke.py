"""Calling deployed functions through the server (SDK submit → wait), their logs and processes."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sdk import ColoniesError, ColoniesTimeoutError, Conditions, FuncSpec, Log, Process, ProcessState

from .bundle import Bundle
from .callargs import CallWords, check_arguments, convert_call_words
from .deploy import Target, latest_bundle, sdk_errors
from .errors import DeployerError

__all__ = [
    "DEFAULT_EXECUTOR_TYPE",
    "Invocation",
    "STATES",
    "call_spec",
    "follow_logs",
    "invocation_of",
    "invoke",
    "invoke_words",
    "list_processes",
    "result_of",
]

log = logging.getLogger(__name__)

DEFAULT_EXECUTOR_TYPE = "faas-executor"
# Seconds the server waits past a function's own timeout before it re-queues the call, so the
# executor's timeout (which fails the call with a clear reason) always fires first.
EXEC_GRACE = 5
STATES = {"waiting": ProcessState.WAITING, "running": ProcessState.RUNNING,
          "successful": ProcessState.SUCCESS, "failed": ProcessState.FAILED}
STATE_NAMES = {v: k for k, v in STATES.items()} | {ProcessState.CANCELLED: "cancelled"}


@dataclass(frozen=True)
class Invocation:
    """How a call ended: the process, and for a finished one its result or error text."""

    process: Process
    result: Any = None

    @classmethod
    def of(cls, process: Process) -> Invocation:
        """A process as an Invocation, with its result when it has succeeded."""
        return cls(process, result_of(process) if process.state == ProcessState.SUCCESS else None)

    @property
    def processid(self) -> str:
        return self.process.processid

    @property
    def state(self) -> str:
        return STATE_NAMES.get(self.process.state, str(self.process.state))

    @property
    def error(self) -> str:
        return "\n".join(self.process.errors)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"processid": self.processid, "function": self.process.spec.funcname,
                               "state": self.state}
        if self.process.state == ProcessState.SUCCESS:
            doc["result"] = self.result
        elif self.process.state.is_final:
            doc["error"] = self.error
        return doc


def call_spec(bundle: Bundle, colony: str, args: Sequence[Any], kwargs: dict[str, Any],
              executortype: str = DEFAULT_EXECUTOR_TYPE) -> FuncSpec:
    """The FuncSpec of one call: funcname = function name, args/kwargs = the call's arguments.

    A function deployed with a timeout gets maxexectime = timeout + EXEC_GRACE, and with
    retries gets maxretries; otherwise the SDK defaults (no limit) apply.
    """
    spec = FuncSpec(funcname=bundle.name, args=list(args), kwargs=dict(kwargs),
                    conditions=Conditions(colonyname=colony, executortype=executortype))
    if bundle.limits.timeout:
        spec.maxexectime = math.ceil(bundle.limits.timeout) + EXEC_GRACE
    if bundle.limits.retries is not None:
        spec.maxretries = bundle.limits.retries
    return spec


def result_of(process: Process) -> Any:
    """The call's value: executors close with a one-element output."""
    out = list(process.output)
    return out[0] if len(out) == 1 else (out or None)


def invoke(target: Target, name: str, args: Sequence[Any], kwargs: dict[str, Any], *,
           wait: bool = True, timeout: float = 60.0, executortype: str = DEFAULT_EXECUTOR_TYPE) -> Invocation:
    """Submit one call of a deployed function and (unless wait=False) wait for its end.

    Raises DeployerError for an unknown function or arguments that do not fit its signature,
    and ColoniesTimeoutError (translated to a DeployerError naming the process) on timeout.
    """
    bundle = latest_bundle(target, name)
    return _submit(target, name, bundle, args, kwargs, wait, timeout, executortype)


def invoke_words(target: Target, name: str, words: CallWords, *, wait: bool = True, timeout: float = 60.0,
                 executortype: str = DEFAULT_EXECUTOR_TYPE) -> Invocation:
    """`invoke` with command-line words, each converted by the annotation its parameter has in the
    newest version's recorded signature (`callargs.convert_call_words`)."""
    bundle = latest_bundle(target, name)
    args, kwargs = convert_call_words(words, bundle.signature)
    return _submit(target, name, bundle, args, kwargs, wait, timeout, executortype)


def _submit(target: Target, name: str, bundle: Bundle, args: Sequence[Any], kwargs: dict[str, Any],
            wait: bool, timeout: float, executortype: str) -> Invocation:
    check_arguments(name, bundle.signature, args, kwargs)
    with sdk_errors(target):
        process = target.client.submit(call_spec(bundle, target.colony, args, kwargs, executortype))
        log.info("submitted %s as process %s", name, process.processid)
        if not wait:
            return Invocation(process)
        try:
            done = target.client.wait(process, timeout)
        except ColoniesTimeoutError:
            raise DeployerError(f"{name}: no result after {timeout:g} s; process {process.processid} "
                                f"is still queued or running (see `faas logs {process.processid} -f`)"
                                f"{_no_executor_hint(target, executortype)}") from None
    return Invocation.of(done)


def invocation_of(target: Target, processid: str) -> Invocation:
    """A process as it is now, with its result when it has succeeded."""
    with sdk_errors(target):
        return Invocation.of(target.client.get_process(processid))


def _no_executor_hint(target: Target, executortype: str) -> str:
    """A hint when nothing could have taken the call: no executor of that type in the colony."""
    try:
        executors = target.client.get_executors(target.colony)
    except ColoniesError:
        return ""
    if any(e.executortype == executortype for e in executors or ()):
        return ""
    return (f"; no executor of type {executortype!r} is registered in colony {target.colony!r} "
            "(start one with `faas executor start`)")


def _log_key(entry: Log) -> tuple[int, str]:
    return (entry.timestamp, entry.message)


def _new_logs(target: Target, processid: str, since: int, seen: set[tuple[int, str]]) -> list[Log]:
    """Logs at or after `since` not yet seen, in time order (pages of 100)."""
    found: list[Log] = []
    while True:
        page = target.client.get_logs(target.colony, processid=processid, count=100, since=since)
        fresh = [e for e in sorted(page, key=_log_key) if _log_key(e) not in seen]
        for entry in fresh:
            seen.add(_log_key(entry))
        found.extend(fresh)
        if len(page) < 100 or not fresh:
            return found
        since = max(e.timestamp for e in page)


def follow_logs(target: Target, processid: str, follow: bool = False, poll: float = 1.0) -> Iterator[Log]:
    """The process's logs; with follow, keep yielding new ones until the process has ended."""
    with sdk_errors(target):
        process = target.client.get_process(processid)
        seen: set[tuple[int, str]] = set()
        since = 0
        while True:
            final = process.state.is_final
            for entry in _new_logs(target, processid, since, seen):
                since = max(since, entry.timestamp)
                yield entry
            if not follow or final:
                return
            try:
                # Blocks until the process ends or `poll` seconds pass: no busy loop.
                process = target.client.wait(processid, poll)
            except ColoniesTimeoutError:
                continue


def list_processes(target: Target, states: Sequence[ProcessState], count: int = 100,
                   executortype: str | None = DEFAULT_EXECUTOR_TYPE) -> list[Process]:
    """Processes in the given states (newest submissions first), at most `count` per state."""
    with sdk_errors(target):
        found: list[Process] = []
        for state in states:
            found.extend(target.client.get_processes(target.colony, int(state), count, executortype))
    return sorted(found, key=lambda p: p.submissiontime, reverse=True)
