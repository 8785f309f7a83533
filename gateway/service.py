"""The gateway's core: arguments → FuncSpec → submit → wait → result, over one shared client."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from sdk import Conditions, FuncSpec, Process, ProcessState, messages
from sdk.cfs import REVISION_ENV
from sdk.errors import ColoniesConnectionError, ColoniesError, ColoniesTimeoutError, NotFoundError

from .callbacks import CallbackSender
from .catalog import FunctionCatalog
from .errors import (
    BadRequest,
    Conflict,
    FunctionFailed,
    GatewayError,
    NotFound,
    ResultTimeout,
    ServerUnavailable,
    from_colonies,
)
from .idempotency import IdempotencyConflict, IdempotencyStore, fingerprint
from .metrics import Metrics, Outcome
from .pubsub import Ended, ProcessWaiter, TooLargeForSocket
from .rpc import LeanRPC
from .settings import Settings
from .signature import FunctionInfo, ParameterError, bind, convert_query

__all__ = ["Call", "Gateway", "Result", "error_text", "output_value", "parse_timeout", "process_view", "server_key",
           "split_body"]

log = logging.getLogger(__name__)

EXEC_GRACE = 5  # seconds
OUR_SERVER = "colonyfaas"  # the start of our server's versionmsg buildversion

STATE_NAMES = {
    ProcessState.WAITING: "waiting",
    ProcessState.RUNNING: "running",
    ProcessState.SUCCESS: "successful",
    ProcessState.FAILED: "failed",
    ProcessState.CANCELLED: "cancelled",
}


def server_key(function: str, idempotency_key: str) -> str:
    """The server-side idempotency key of an HTTP Idempotency-Key: the same on every gateway
    replica and across restarts, so a retry reaching another replica finds the first process."""
    return hashlib.sha256(f"{function}\0{idempotency_key}".encode()).hexdigest()


@dataclass(frozen=True)
class Call:
    """An invocation as the HTTP layer parsed it (before the signature check)."""

    function: str
    query: tuple[tuple[str, str], ...] = ()  # raw query pairs, converted with the signature
    body: Any = None  # the parsed JSON body of a POST (None: no body)
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Result:
    processid: str
    value: Any
    seconds: float


def output_value(process: Process | Ended) -> Any:
    """The function's return value: the executor closes with output = [result]."""
    out = process.output
    if len(out) == 1:
        return out[0]
    return out or None


def error_text(process: Process | Ended) -> str:
    return "\n".join(str(e) for e in process.errors) or "the function failed without an error text"


def _time(value: datetime) -> str | None:
    if value.year == 1:
        return None
    return value.isoformat().replace("+00:00", "Z")


def process_view(process: Process) -> dict[str, Any]:
    """The JSON of GET /processes/{id}."""
    view: dict[str, Any] = {
        "processid": process.processid,
        "function": process.spec.funcname,
        "state": STATE_NAMES.get(process.state, str(int(process.state))),
    }
    if process.state == ProcessState.SUCCESS:
        view["result"] = output_value(process)
    elif process.state in (ProcessState.FAILED, ProcessState.CANCELLED):
        view["error"] = error_text(process)
    view.update(submitted=_time(process.submissiontime), started=_time(process.starttime),
                ended=_time(process.endtime), retries=process.retries)
    return view


class Gateway:
    """Everything a route needs; owns the client, the function cache, the shared waiter, the stores."""

    def __init__(self, settings: Settings, client: Any, waiter: ProcessWaiter | None = None,
                 callbacks: CallbackSender | None = None, rpc: LeanRPC | None = None) -> None:
        self.settings = settings
        self.client = client
        # submit and get_process, on every invocation's path: see rpc.py for why not `client`.
        self.rpc = rpc or LeanRPC(settings.server_host, settings.server_port, settings.server_tls,
                                  settings.prvkey, timeout=settings.rpc_timeout,
                                  max_connections=settings.rpc_connections, unix_socket=settings.server_socket)
        self.catalog = FunctionCatalog(client, settings.colony, settings.label, settings.cache_ttl)
        self.waiter = waiter or ProcessWaiter(settings.pubsub_url, settings.prvkey, settings.colony,
                                              settings.executortype, unix_socket=settings.server_socket)
        self.callbacks = callbacks or CallbackSender(settings.callback_attempts, settings.callback_backoff,
                                                     settings.callback_timeout)
        self.idempotency = IdempotencyStore(settings.idempotency_ttl, settings.idempotency_max_keys)
        self.metrics = Metrics()
        self._submitting: dict[tuple[str, str], asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting_cache: tuple[float, dict[str, int] | None, bool] = (0.0, None, False)
        self._server_known = False  # whether the server's flavour was asked (see _know_server)
        # Per function: (the catalog's info it was built from, the wire form of its spec).
        self._templates: dict[str, tuple[FunctionInfo, dict[str, Any]]] = {}

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.waiter.close()
        await self.callbacks.aclose()
        await self.rpc.aclose()

    # -- preparing and submitting --------------------------------------------------------------------

    async def prepare(self, call: Call) -> tuple[FunctionInfo, list[Any], dict[str, Any]]:
        """Look the function up and check the arguments (once more against a fresh revision on error)."""
        info = await self.catalog.get(call.function)
        try:
            args, kwargs = self._bind(info, call)
        except ParameterError as first:
            # Even a revision checked a moment ago may be stale: the caller may just have redeployed.
            info = await self.catalog.get(call.function, refresh=True)
            try:
                args, kwargs = self._bind(info, call)
            except ParameterError as e:
                raise BadRequest(str(e), function=call.function) from first
        return info, args, kwargs

    @staticmethod
    def _bind(info: FunctionInfo, call: Call) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        if call.body is not None:  # no body (a GET): no need to name the parameters
            try:
                args, kwargs = split_body(call.body, [p.name for p in info.params or ()])
            except BadRequest as e:
                raise ParameterError(e.message) from None
        if call.query:
            query = convert_query(info, call.query)
            both = sorted(set(query) & set(kwargs)) if kwargs else None
            if both:  # which one the caller meant is a guess: say so instead of dropping one
                raise ParameterError(f"parameter{'s' if len(both) > 1 else ''} {', '.join(map(repr, both))} "
                                     "given both in the query string and in the body")
            kwargs.update(query)
        return bind(info, args, kwargs)

    def spec(self, info: FunctionInfo, args: list[Any], kwargs: dict[str, Any]) -> FuncSpec:
        s = self.settings
        return FuncSpec(
            nodename=info.name,
            funcname=info.name,
            args=args,
            kwargs=kwargs,
            priority=0,
            maxwaittime=-1,
            # The executor enforces the function's own timeout and fails the process; the server's
            # maxexectime (which re-queues) must not beat it to it.
            maxexectime=info.timeout + EXEC_GRACE if info.timeout else s.default_exec_timeout,
            maxretries=info.retries if info.retries is not None else 3,
            conditions=Conditions(colonyname=s.colony, executortype=s.executortype),
            env=self.revision_hint(info.name),
        )

    def wire_spec(self, info: FunctionInfo, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """`spec(...).to_wire()`, the form submitted, without a pydantic model per call: a copy of
        the function's template with the call's arguments and revision hint filled in."""
        cached = self._templates.get(info.name)
        if cached is None or cached[0] is not info:  # first call, or a new revision
            cached = self._templates[info.name] = (info, self.spec(info, [], {}).to_wire())
        template = cached[1]
        # Fresh nested containers, as to_wire gives: no two calls' specs share a mutable part.
        wire = {**template, "args": _jsonable(args) if args else [],
                "kwargs": _jsonable(kwargs) if kwargs else {}, "env": self.revision_hint(info.name),
                "channels": list(template["channels"])}
        conditions = wire["conditions"] = {**template["conditions"]}
        conditions["gpu"] = {**conditions["gpu"]}
        conditions["dependencies"] = list(conditions["dependencies"])
        return wire

    def revision_hint(self, name: str) -> dict[str, str]:
        """The revision the call was bound against (docs/BUNDLE.md, "Revision hint"): the executor
        runs it without asking the server for the newest one. Empty once the catalog's entry is
        past its TTL, so a deploy is never hidden for longer than the catalog's own re-check."""
        revision = self.catalog.revision(name)
        if revision is None:
            return {}
        return {REVISION_ENV: revision[1]}

    async def submit(self, call: Call) -> tuple[str, bool]:
        """Submit the call (or find the one its Idempotency-Key stands for): (processid, reused)."""
        info, args, kwargs = await self.prepare(call)
        key = call.idempotency_key
        if not key:
            return await self._submit(info, args, kwargs, secrets.token_hex(16)), False
        slot = (info.name, key)
        try:
            existing = self.idempotency.reserve(info.name, key, fingerprint(args, kwargs))
        except IdempotencyConflict as e:
            raise Conflict(str(e), function=info.name) from None
        if existing is not None:
            if existing.processid is not None:
                return existing.processid, True
            pending = self._submitting.get(slot)
            if pending is not None:
                return await asyncio.shield(pending), True
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._submitting[slot] = fut
        try:
            pid = await self._submit(info, args, kwargs, server_key(info.name, key))
        except BaseException as e:
            self.idempotency.release(info.name, key)
            # Requests waiting on this key get an error of their own, never our cancellation.
            fut.set_exception(e if isinstance(e, GatewayError) else ServerUnavailable(
                f"the first request with Idempotency-Key {key!r} did not complete its submission; retry"))
            fut.exception()
            raise
        finally:
            self._submitting.pop(slot, None)
        self.idempotency.complete(info.name, key, pid)
        fut.set_result(pid)
        return pid, False

    async def _submit(self, info: FunctionInfo, args: list[Any], kwargs: dict[str, Any], key: str) -> str:
        """Submit with the server-side idempotency key `key`, resent for up to submit_retry seconds
        while the server cannot be reached or its answer is lost: a resent submission finds the
        process the first one stored (colonyfaas' server), so an answer lost to a restart
        neither fails the call nor queues it twice."""
        spec = self.wire_spec(info, args, kwargs)
        give_up = time.monotonic() + self.settings.submit_retry
        delay = 0.05
        while True:
            try:
                process = await self.rpc.submit(spec, key)
                break
            except (ColoniesConnectionError, ColoniesTimeoutError) as e:
                if time.monotonic() + delay > give_up:
                    raise from_colonies(e, f"submitting {info.name}") from None
                log.info("submitting %s: %s (resending)", info.name, e)
            except ColoniesError as e:
                if e.status == 409:  # the server knows this key for another call (a gateway restarted since)
                    raise Conflict(f"Idempotency-Key used for {info.name} with different arguments",
                                   function=info.name) from None
                if e.status != 503 or time.monotonic() + delay > give_up:  # 503: the server's database
                    raise from_colonies(e, f"submitting {info.name}") from None
                log.info("submitting %s: %s (resending)", info.name, e)
            await asyncio.sleep(delay)  # backoff between attempts
            delay = min(delay * 2, 1.0)
        log.info("submitted %s process %s", info.name, process.processid)
        return str(process.processid)

    # -- waiting --------------------------------------------------------------------------------------

    async def get_process(self, processid: str) -> Process:
        try:
            return await self.rpc.get_process(processid)
        except NotFoundError:
            raise NotFound(f"no process with id {processid}", processid=processid) from None
        except ColoniesError as e:
            raise from_colonies(e, f"fetching process {processid}") from None

    async def wait(self, processid: str, timeout: float, reused: bool = False) -> Process | None:
        """The finished process, or None after `timeout`: pubsub, then one get_process at the
        deadline (which also answers for a process the subscription could not see)."""
        if reused:
            process = await self.get_process(processid)
            if process.state.is_final:
                return process
        if not self._server_known:
            await self._know_server()
        done = await self.waiter.wait(processid, timeout)
        return done if done is not None else await self._final_or_none(processid)

    async def _final_or_none(self, processid: str) -> Process | None:
        """At a wait's deadline one get_process answers for anything pubsub could not see."""
        process = await self.get_process(processid)
        return process if process.state.is_final else None

    async def _run(self, call: Call, timeout: float) -> tuple[str, Process | Ended | None]:
        """Submit and wait: (processid, the ended process or None after `timeout`)."""
        if not self._server_known:
            await self._know_server()
        if self.waiter.submit_on_socket and not call.idempotency_key:
            info, args, kwargs = await self.prepare(call)
            key = secrets.token_hex(16)
            try:
                pid, process = await self.waiter.submit_and_wait(
                    self.wire_spec(info, args, kwargs), timeout, self.settings.rpc_timeout, key)
            except (TooLargeForSocket, ColoniesConnectionError, ColoniesTimeoutError) as e:
                # Too large, or the socket broke before the server said whether it took the call:
                # over HTTP with the same key, which finds the process if it was stored.
                if not isinstance(e, TooLargeForSocket):
                    log.info("submitting %s on the socket: %s (resending over HTTP)", info.name, e)
                pid = await self._submit(info, args, kwargs, key)
                return pid, await self.wait(pid, timeout)
            except ColoniesError as e:
                raise from_colonies(e, f"submitting {info.name}") from None
            log.info("submitted %s process %s", info.name, pid)
            if process is not None:
                return pid, process
            try:
                return pid, await self._final_or_none(pid)
            except NotFound:
                # Not stored: the frame never reached the server, nor its resubmission on a new
                # socket within the wait (a batched call has no acknowledgement to wait for).
                raise ServerUnavailable(f"the server did not receive the call of {info.name}; it did not run "
                                        "and can be sent again") from None
        pid, reused = await self.submit(call)
        return pid, await self.wait(pid, timeout, reused)

    async def _know_server(self) -> None:
        """Against colonyfaas' own server one subscription per call is enough (see pubsub.py).
        Asked once; until it answers, calls subscribe the upstream way (twice), which works with both."""
        try:
            version = await self.rpc.send(messages.version())
        except ColoniesError as e:
            log.info("server version unknown (%s); subscribing for SUCCESS and FAILED", e)
            return
        self._server_known = True
        if str(version.get("buildversion", "")).startswith(OUR_SERVER):
            self.waiter.one_subscription()
            self.waiter.submit_on_socket = True
            extensions = version.get("extensions")
            self.waiter.batch_submit = isinstance(extensions, list) and "submitbatch" in extensions
            self.waiter.sessions = isinstance(extensions, list) and "sessions" in extensions

    async def invoke(self, call: Call, timeout: float) -> Result:
        """Run a call synchronously; raises GatewayError subclasses for every non-200 outcome."""
        started = time.monotonic()
        self.metrics.in_flight += 1
        outcome = Outcome.UNAVAILABLE
        try:
            pid, process = await self._run(call, timeout)
            if process is None:
                outcome = Outcome.TIMEOUT
                raise ResultTimeout(
                    f"no result from {call.function} within {timeout:g} s; the invocation is still queued or "
                    f"running: GET /processes/{pid}", processid=pid, status_url=f"/processes/{pid}")
            if process.state != ProcessState.SUCCESS:
                outcome = Outcome.ERROR
                raise FunctionFailed(error_text(process), processid=pid)
            outcome = Outcome.SUCCESS
            return Result(pid, output_value(process), time.monotonic() - started)
        except GatewayError as e:
            if e.status == 400 or e.status == 422:
                outcome = Outcome.BAD_REQUEST
            elif e.status == 404:
                outcome = Outcome.NOT_FOUND
            raise
        finally:
            self.metrics.in_flight -= 1
            ran = outcome in (Outcome.SUCCESS, Outcome.ERROR, Outcome.TIMEOUT)
            self.metrics.record(call.function, outcome, time.monotonic() - started if ran else None)

    # -- async invocations ---------------------------------------------------------------------------

    async def invoke_async(self, call: Call, callback_url: str | None) -> tuple[str, bool]:
        try:
            pid, reused = await self.submit(call)
        except GatewayError as e:
            self.metrics.record(call.function, Outcome.BAD_REQUEST if e.status in (400, 422) else
                                Outcome.NOT_FOUND if e.status == 404 else Outcome.UNAVAILABLE)
            raise
        self.metrics.record(call.function, Outcome.ACCEPTED)
        if callback_url and not reused:
            task = asyncio.get_running_loop().create_task(self._deliver(pid, call.function, callback_url),
                                                          name=f"callback-{pid}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return pid, reused

    async def _deliver(self, pid: str, function: str, url: str) -> None:
        try:
            process = await self.wait(pid, self.settings.callback_wait)
            body: dict[str, Any]
            if process is None:
                body = {"processid": pid, "function": function, "state": "timeout",
                        "error": f"no result within {self.settings.callback_wait:g} s"}
            else:
                body = process_view(process)
        except GatewayError as e:
            body = {"processid": pid, "function": function, "state": "unknown", "error": e.message}
        ok = await self.callbacks.send(url, body, {"X-Process-Id": pid, "X-Function-Name": function})
        self.metrics.record_callback("delivered" if ok else "failed")

    # -- reads -------------------------------------------------------------------------------------------

    async def logs(self, processid: str, count: int, since: int) -> list[dict[str, Any]]:
        process = await self.get_process(processid)  # 404 for an unknown id, whatever the server says
        try:
            logs = await self.client.get_logs(self.settings.colony, processid=process.processid, count=count,
                                              since=since)
        except ColoniesError as e:
            raise from_colonies(e, f"fetching logs of {processid}") from None
        return [{"timestamp": lg.timestamp, "executorname": lg.executorname, "message": lg.message}
                for lg in logs or []]

    async def functions(self) -> list[dict[str, Any]]:
        names = await self.catalog.names()
        infos = await asyncio.gather(*(self._summary(n) for n in names))
        return [i for i in infos if i is not None]

    async def _summary(self, name: str) -> dict[str, Any] | None:
        try:
            info = await self.catalog.get(name)
        except NotFound:
            return None  # removed between the listing and the lookup
        doc = (info.doc or "").strip().splitlines()
        return {"name": name, "signature": info.signature_text, "summary": doc[0] if doc else None,
                "version": info.version, "url": f"/function/{name}"}

    async def function(self, name: str) -> dict[str, Any]:
        info = await self.catalog.get(name, refresh=True)
        return {**info.describe(), "versions": await self.catalog.versions(name), "url": f"/function/{name}"}

    async def server_version(self) -> str:
        try:
            v = await self.client.version()
        except ColoniesError as e:
            raise from_colonies(e, "health check") from None
        return str(v) if not isinstance(v, dict) else str(v.get("buildversion", v))

    async def waiting(self) -> tuple[dict[str, int] | None, bool]:
        """Waiting processes per executor type (capped at 100 each, the protocol's page size; the
        colony's exact total under the key ""), and whether the server answered. Cached briefly so a
        scrape storm is a few queries. All of it within settings.health_timeout, like /healthz: a
        server that accepts connections but never answers held a scrape for the RPC timeout of
        each of the queries (10 s apiece) and made it time out."""
        stamp, cached, up = self._waiting_cache
        if time.monotonic() - stamp < self.settings.metrics_cache_seconds:
            return cached, up
        try:
            counts = await asyncio.wait_for(self._count_waiting(), self.settings.health_timeout)
        except (ColoniesError, asyncio.TimeoutError) as e:  # the builtin TimeoutError only from 3.11
            log.info("metrics: cannot count waiting processes: %s",
                     e if isinstance(e, ColoniesError) else f"no answer in {self.settings.health_timeout:g} s")
            self._waiting_cache = (time.monotonic(), None, False)
            return None, False
        self._waiting_cache = (time.monotonic(), counts, True)
        return counts, True

    async def _count_waiting(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for et in self.settings.metrics_executortypes:
            procs = await self.client.get_processes(self.settings.colony, ProcessState.WAITING, count=100,
                                                    executortype=et)
            counts[et] = len(procs or [])
        stats = await self.client.colony_stats(self.settings.colony)
        counts[""] = stats.waitingprocesses
        return counts


def parse_timeout(header: str | None, default: float, maximum: float) -> float:
    """The X-Timeout header (seconds) or the default; 400 for nonsense."""
    if header is None or not header.strip():
        return default
    try:
        value = float(header.strip().rstrip("s"))
    except ValueError:
        raise BadRequest(f"X-Timeout must be a number of seconds, got {header!r}") from None
    if not 0 < value <= maximum:
        raise BadRequest(f"X-Timeout must be between 0 and {maximum:g} seconds, got {header!r}")
    return value


def _jsonable(value: Any) -> Any:
    """What FuncSpec.to_wire makes of a value in an `Any` field (NaN and Infinity become null)."""
    return to_jsonable_python(value, inf_nan_mode="null")


def split_body(body: Any, info_params: Sequence[str] | None = None) -> tuple[list[Any], dict[str, Any]]:
    """POST body → (args, kwargs): an object is keyword arguments, unless it is exactly
    {"args": [...], "kwargs": {...}} (either key optional); an array is positional arguments."""
    if body is None:
        return [], {}
    if isinstance(body, list):
        return list(body), {}
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object (keyword arguments), "
                         'an array (positional arguments) or {"args": [...], "kwargs": {...}}')
    keys = set(body)
    named = set(info_params or ())
    if keys and keys <= {"args", "kwargs"} and not (keys & named) and \
            isinstance(body.get("args", []), list) and isinstance(body.get("kwargs", {}), dict):
        return list(body.get("args", [])), dict(body.get("kwargs", {}))
    return [], dict(body)
