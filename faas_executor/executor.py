"""The executor's lifecycle: register, heartbeat, N assign loops → run → close/fail, drain, unregister.

It talks to the server only through the SDK. `request_stop()` (the CLI wires SIGTERM/SIGINT to
it) stops assigning; calls already assigned run to the end, then the pool stops and the executor
unregisters. `run(burst=True)` returns once nothing is left to assign (for tests and batch jobs).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from sdk import (
    BadRequestError,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesTimeoutError,
    ConflictError,
    NotFoundError,
    Process,
    id_from_prvkey,
    messages,
    messages_cfs,
    new_prvkey,
)
from sdk.cfs import REVISION_ENV
from sdk.client import Colonies
from sdk.fastrpc import FastRPC

from .bundle import Bundle, BundleError
from .cache import BundleCache, ChecksumMismatch
from .call import TUTORIAL_FUNCNAME, CallError, call_from_spec, call_timeout
from .config import ExecutorSettings, default_state_dir
from .courier import Courier, Ticket
from .handle import Outcome, Reason
from .pool import WorkerPool
from .requirements import RequirementsInstaller

__all__ = ["MAX_NESTING", "Executor", "FunctionNotDeployed", "NestedCallError", "StateDirError"]

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_NESTING = 8
RETRY_OUTAGE_S = 120.0
SHORT_CALL_S = 0.1
"""Prefetch (ExecutorSettings.prefetch) takes calls beyond the workers only while calls end within this."""
IDLE_PREFETCH_WAIT_S = 5.0
"""The longest a prefetcher sleeps while the loops hold fewer calls than there are workers. Only a
safety net: it is woken when they fill up (_count_held) and when run() stops (_wake_prefetchers)."""
COURIER_LINGER_S = 0.002
"""How long the courier waits for more closes to share a message (see courier.py)."""
BATCH_EXTENSION = "closeandassignbatch"
"""The server's name (versionmsg "extensions") for the batched closeandassignmsg the courier sends."""
SESSIONS_EXTENSION = "sessions"
"""The server's name for connection sessions (docs/SERVER.md), which the executor's FastRPC then binds."""


class FunctionNotDeployed(LookupError):
    """No file `/faas/<name>` exists in CFS."""


class NestedCallError(Exception):
    """A function called from another function failed; the message is its error text."""


class StateDirError(OSError):
    """The state directory cannot be used (the message says why and what to do)."""


class Executor:
    """One registered executor: `concurrency` assign loops and `prefetch` prefetching loops sharing
    `concurrency` warm workers. Under load the prefetchers keep the next call at hand, so a worker
    that frees does not sit idle through a round trip to the server. They never park on the
    server and take nothing while a worker lacks a call or calls are long (`_prefetch_ok`), so a
    call does not wait here behind a long one while another executor could run it."""

    def __init__(self, settings: ExecutorSettings, client: Colonies) -> None:
        self.settings = settings
        self.client = client
        # The RPCs on every call's path (assign, getfilemsg, close/fail, add_log) go over the SDK's
        # lean sender: ~0.15 ms of CPU each instead of ~1 ms through httpx (see sdk.fastrpc).
        self.rpc = FastRPC.for_client(client)
        self.prvkey = settings.prvkey or new_prvkey()
        self.executorid = id_from_prvkey(self.prvkey)
        _claim_state_dir(settings.state_dir, shared=settings.state_dir == default_state_dir())
        self.cache = BundleCache(settings.cache_dir)
        _sweep_scratch(settings.state_dir)
        self.requirements = RequirementsInstaller(Path(settings.state_dir) / "requirements")
        pool = settings.pool_settings()
        pool = replace(pool, extra_read_paths=(*pool.extra_read_paths, str(self.requirements.root)))
        self.pool = WorkerPool(pool, nested=self._nested_call)
        self.stopping = threading.Event()
        self._heartbeat_stop = threading.Event()
        self.registered = False
        self.calls = 0
        self.heartbeats = 0
        self._lock = threading.Lock()
        self._held = 0  # processes assigned here and not yet closed (running or waiting for a worker)
        self._held_changed = threading.Condition(self._lock)
        self.held_peak = 0  # the most processes held at once (at most concurrency + prefetch)
        self._context = threading.local()  # the process a thread is running, for nested calls
        self._retry_wait = threading.Event()
        self._newest: dict[str, str] = {}  # name -> checksum of the newest revision the server named
        self._close_and_assign = True  # until the server says it has no closeandassignmsg
        self._courier: Courier | None = None  # when the server takes batched closes (adopt_extensions)

    # -- lifecycle ------------------------------------------------------------------------------

    def register(self) -> None:
        """Register and approve with the colony key, or use the already registered executor key."""
        s = self.settings
        if s.colony_prvkey:
            executor = {"executorid": self.executorid, "executorname": s.executorname,
                        "executortype": s.executortype, "colonyname": s.colonyname}
            try:
                self.client.add_executor(executor, prvkey=s.colony_prvkey)
            except (BadRequestError, ConflictError) as e:
                if "already exists" not in e.message:
                    raise
                # A restart under the same name (the old registration stays, UNREGISTERED or
                # not): replace it. Its running calls, if any, go back to the queue.
                log.warning("executor name %s is taken in %s; replacing that registration",
                            s.executorname, s.colonyname)
                self.client.remove_executor(s.colonyname, s.executorname, prvkey=s.colony_prvkey)
                self.client.add_executor(executor, prvkey=s.colony_prvkey)
            self.client.approve_executor(s.colonyname, s.executorname, prvkey=s.colony_prvkey)
            self.registered = True
        if s.register_functions:
            self._register_functions()
        self.adopt_extensions()
        log.info("executor %s (%s, type %s) ready in colony %s, concurrency %d, prefetch %d%s",
                 s.executorname, self.executorid[:12], s.executortype, s.colonyname, s.concurrency, s.prefetch,
                 (", closes batched under load" if self._courier is not None else "")
                 + (", connections bound to its identity" if self.rpc.sessions else ""))
        log.info("%s", self.pool.describe())
        exposed = self.pool.exposure()
        if exposed:
            log.warning("%s", exposed)

    def _register_functions(self) -> None:
        s = self.settings
        names = {TUTORIAL_FUNCNAME}
        try:
            names |= {f.name for f in self.client.get_files(s.colonyname, s.label, prvkey=self.prvkey)}
        except ColoniesError as e:
            log.info("cannot list %s for function registration: %s", s.label, e)
        for name in sorted(names):
            try:
                self.client.add_function(s.colonyname, s.executorname, name, prvkey=self.prvkey)
            except ColoniesError as e:  # optional: assignment does not depend on it
                log.debug("add_function %s: %s", name, e)

    @property
    def courier(self) -> Courier | None:
        """The courier batching closes under load (None: one message per call; see adopt_extensions)."""
        return self._courier

    def adopt_extensions(self) -> None:
        """What the server's extensions allow: connection sessions (no signature per message on
        connections bound to our identity, sdk.fastrpc), and under load, batched closes (courier.py)
        when the server names the batched closeandassignmsg and prefetch is on (only then do
        several calls end back to back)."""
        if self._courier is not None:
            return
        try:
            version = self.client.version()
        except ColoniesError as e:
            log.info("server version unknown (%s): one signed message per call", e)
            return
        extensions = version.get("extensions") if isinstance(version, dict) else None
        if not isinstance(extensions, list):
            return
        self.rpc.sessions = SESSIONS_EXTENSION in extensions
        if BATCH_EXTENSION in extensions and self.settings.prefetch >= 1:
            # At most `prefetch` closes a message: the loops still holding a call then keep the
            # workers busy while the message is out (with every loop in it, they would sit idle).
            self._courier = Courier(self._send_closes, batch=self.settings.prefetch, linger=COURIER_LINGER_S)
            self._courier.start()

    def _send_closes(self, tickets: list[Ticket]) -> tuple[list[Process], list[dict[str, Any]]]:
        closes = [(t.processid, [t.outcome.value], None) if t.outcome.ok else (t.processid, None, [t.outcome.error])
                  for t in tickets]
        return self.rpc.send(messages.close_many_and_assign(closes, self.settings.colonyname, -1, len(tickets),
                                                            slim=True, prvkey=self.prvkey))

    def request_stop(self) -> None:
        """Graceful drain: take no new work, finish what is running. Safe from a signal handler."""
        self.stopping.set()

    def run(self, burst: bool = False) -> int:
        """Register, serve until `request_stop()` (or, with `burst`, until nothing is queued), drain."""
        threads: list[threading.Thread] = []
        try:
            self.register()
            started = self.pool.prestart()
            log.info("%d workers pre-started (sandboxed, waiting for their first function)", started)
            threads.append(threading.Thread(target=self._heartbeat_loop, name="faas-heartbeat", daemon=True))
            threads += [threading.Thread(target=self._assign_loop, args=(burst,), name=f"faas-assign-{i}",
                                         daemon=True) for i in range(self.settings.concurrency)]
            threads += [threading.Thread(target=self._assign_loop, args=(burst, True), name=f"faas-prefetch-{i}",
                                         daemon=True) for i in range(self.settings.prefetch)]
            for t in threads:
                t.start()
            for t in threads[1:1 + self.settings.concurrency]:
                t.join()
            # The assign loops end only when stopping, or in a burst once nothing is left: then the
            # prefetchers, which never see an empty queue while they wait, finish what they hold.
            self.stopping.set()
        finally:
            self.stopping.set()
            self._wake_prefetchers()
            for t in threads[1:]:
                if t.ident is not None:  # started
                    t.join()
            # Heartbeats go on until every assigned call is closed: a drain longer than the lease
            # must not get its running calls re-queued.
            self._heartbeat_stop.set()
            if threads and threads[0].ident is not None:
                threads[0].join()
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        """Stop workers; unregister the executor if this process registered it."""
        if self._courier is not None:
            self._courier.close()
            log.info("the courier closed %d calls in %d messages, %.1f a message (under load)",
                     self._courier.tickets, self._courier.messages,
                     self._courier.tickets / max(1, self._courier.messages))
            self._courier = None
        self.pool.close()
        self.rpc.close()
        if self.registered and self.settings.unregister_on_exit:
            try:
                self.client.remove_executor(self.settings.colonyname, self.settings.executorname,
                                            prvkey=self.settings.colony_prvkey)
                log.info("executor %s unregistered", self.settings.executorname)
            except ColoniesError as e:
                log.warning("unregistering %s failed: %s", self.settings.executorname, e)
            self.registered = False

    def _heartbeat_loop(self) -> None:
        s = self.settings
        interval = s.lease / 3
        while not self._heartbeat_stop.is_set():
            try:
                self.client.heartbeat(s.colonyname, s.executorname, s.lease, prvkey=self.prvkey)
                self.heartbeats += 1
            except (BadRequestError, NotFoundError) as e:
                log.info("server does not support executor leases (%s); relying on maxexectime", e)
                return
            except ColoniesError as e:
                log.warning("heartbeat failed: %s", e)
            self._heartbeat_stop.wait(interval)

    def _assign_loop(self, burst: bool, prefetcher: bool = False) -> None:
        """Take a process, run it, close it and take the next, until stopping. A `prefetcher`
        never parks on the server: it asks once (timeout -1) and only while `_prefetch_ok`."""
        s = self.settings
        wait = -1.0 if prefetcher else s.assign_timeout
        process: Process | None = None
        misses = 0
        while True:
            if process is None:
                if prefetcher and not self._wait_for_prefetch(misses):
                    return
                if self.stopping.is_set():
                    return
                try:
                    process = self.rpc.send(messages.assign(s.colonyname, wait, prvkey=self.prvkey))
                except Exception as e:  # ColoniesError, or anything else: the loop must survive it
                    log.warning("assign failed: %s", e)
                    self.stopping.wait(1.0)  # the server is away: back off instead of spinning
                    continue
                if process is None:
                    if burst:
                        return
                    misses += 1
                    continue
                misses = 0
                self._count_held(1)
            # Assigned work always runs to the end, also when a stop arrived meanwhile.
            pid, started = process.processid, time.monotonic()
            outcome = self._run(process)
            took = time.monotonic() - started  # the call's own time, not the next long-poll's
            courier = self._courier
            busy = (prefetcher or courier is not None) and self._prefetch_ok(own=1)
            take_next = not self.stopping.is_set() and (not prefetcher or busy)
            if take_next and courier is not None and busy:
                nxt = self._via_courier(courier, pid, outcome)  # saturated: one message for several calls
            else:
                nxt = self._finish(pid, outcome, take_next=take_next, timeout=wait)
            # A line per successful call at a thousand calls a second is noise, and formatting and
            # writing it cost ~5 % of the executor's CPU: successes at DEBUG, anything else at INFO.
            log.log(logging.DEBUG if outcome.ok else logging.INFO, "process %s %s %s in %.3f s", pid[:12],
                    process.spec.funcname, outcome.reason.value, took)
            if nxt is None:
                self._count_held(-1)
                if burst:
                    return
            process = nxt

    def _count_held(self, delta: int) -> None:
        with self._held_changed:
            self._held += delta
            self.held_peak = max(self.held_peak, self._held)
            # Only prefetchers wait here, for the loops to hold a call per worker: wake them when
            # that can have become true. (At low load a notify per change woke every prefetcher
            # twice a call, and they took turns at the GIL while the call's own thread needed it.)
            if self._held >= self.settings.concurrency:
                self._held_changed.notify_all()

    def _prefetch_ok(self, own: int = 0) -> bool:
        """Whether a prefetcher holding `own` processes should take one more: only while the other
        loops hold one per worker (so every worker has a call), calls are short, and the server
        is ours (it answers closeandassignmsg and one-try assigns)."""
        with self._lock:
            others = self._held - own
        return (self._close_and_assign and others >= self.settings.concurrency
                and self.pool.calls_are_short(SHORT_CALL_S))

    def _wait_for_prefetch(self, misses: int) -> bool:
        """Block until `_prefetch_ok`, after a back-off that doubles with each empty answer in a
        row (5 ms up to 1 s); False when stopping."""
        if misses and self.stopping.wait(min(1.0, 0.005 * 2 ** min(misses - 1, 8))):
            return False
        while not self.stopping.is_set():
            with self._held_changed:
                if self._held < self.settings.concurrency:
                    # Nothing to prefetch for until the loops hold a call per worker, and only
                    # _count_held makes that true: it notifies. No polling meanwhile (ten
                    # prefetchers looking every 0.1 s woke an idle executor ~180 times a second);
                    # run() wakes them to stop.
                    self._held_changed.wait(IDLE_PREFETCH_WAIT_S)
                    continue
            if self._prefetch_ok():
                return True
            with self._held_changed:
                self._held_changed.wait(0.1)  # how long the running calls have taken decides: look again
        return False

    def _wake_prefetchers(self) -> None:
        """Prefetchers waiting for the loops to fill up look at `stopping` now."""
        with self._held_changed:
            self._held_changed.notify_all()

    # -- one process ----------------------------------------------------------------------------

    def _run(self, process: Process) -> Outcome:
        """Run one assigned process's call; every failure becomes the Outcome to fail it with."""
        pid = process.processid
        spec = process.spec
        with self._lock:
            self.calls += 1
        self._context.processid = pid
        try:
            call = call_from_spec(spec.funcname, spec.args, spec.kwargs, process.input)
            if call.tutorial:
                self._log(pid, "Executing function \n")  # what the tutorial's executor logs
            hint = (spec.env or {}).get(REVISION_ENV)
            bundle = self._riding_out_outages(lambda: self.resolve(call.function, hint),
                                              f"process {pid[:12]}: fetching {call.function}")
            if bundle.requirements:
                bundle = replace(bundle, site=self.requirements.site_for(bundle.name, bundle.requirements))
            timeout = call_timeout(bundle.limits.timeout, spec.maxexectime, self.settings.default_timeout)
            return self.pool.run(bundle, call.args, call.kwargs, timeout,
                                 on_log=lambda _stream, text: self._log(pid, text))
        except (CallError, FunctionNotDeployed, BundleError, ChecksumMismatch) as e:
            return Outcome(Reason.LOAD, error=str(e))
        except ColoniesError as e:
            return Outcome(Reason.LOAD, error=f"fetching function {spec.funcname!r} failed: {e}")
        except Exception as e:  # an executor-side fault must still end the process, not the loop
            log.exception("process %s: executor error", pid[:12])
            return Outcome(Reason.CRASH, error=f"executor error: {type(e).__name__}: {e}")

    def resolve(self, name: str, hint: str | None = None) -> Bundle:
        """The newest deployed version of `name`: one metadata lookup, bytes fetched once per version.

        `hint` (the FuncSpec's revision hint, docs/BUNDLE.md) skips the lookup when it names the
        revision the server last called newest and that bundle is cached; any other hint (a newer
        deploy, a stale or forged one) is ignored and the server is asked.
        """
        s = self.settings
        if hint and self._newest.get(name) == hint:
            cached = self.cache.get(name, hint)
            if cached is not None:
                return cached
        try:
            files = self.rpc.send(messages_cfs.get_file(s.colonyname, s.label, name, True, prvkey=self.prvkey))
        except NotFoundError:
            files = []
        if not files:
            raise FunctionNotDeployed(f"function {name!r} is not deployed (no file {s.label}/{name} in CFS)")
        newest = files[0]
        self._newest[name] = newest.checksum
        return self.cache.get_or_fetch(name, newest.checksum, lambda: self.client.download_bytes(
            s.colonyname, s.label, fileid=newest.fileid, prvkey=self.prvkey))

    def _finish(self, pid: str, outcome: Outcome, take_next: bool = False,
                timeout: float | None = None) -> Process | None:
        """Close or fail the process; with `take_next`, also take the next one, waiting up to
        `timeout` s (default: the assign timeout; < 0: one try) (None: none came).

        Against our server both go in one round trip (closeandassignmsg); any other server refuses
        that message type once, and from then on close and assign are sent separately.
        """
        if take_next and self._close_and_assign:
            s = self.settings
            merged = messages.close_and_assign(
                pid, s.colonyname, s.assign_timeout if timeout is None else timeout,
                output=[outcome.value] if outcome.ok else None,
                errors=None if outcome.ok else [outcome.error], slim=True, prvkey=self.prvkey)
            try:
                return self.rpc.send(merged)
            except (ColoniesConnectionError, ColoniesTimeoutError) as e:
                # Whether the close landed is unknown: the plain close below, retried through the
                # outage, settles it (closing a SUCCESS process again is accepted).
                log.info("closing process %s: server unreachable (%s); retrying", pid[:12], e)
            except ColoniesError as e:
                if "payloadtype" not in e.message.lower():
                    # The close was refused (e.g. re-assigned after maxexectime): the server decides.
                    log.warning("closing process %s failed: %s", pid[:12], e)
                    return None
                log.info("the server has no closeandassignmsg (%s); closing and assigning separately", e)
                self._close_and_assign = False
        close = (messages.close(pid, [outcome.value], prvkey=self.prvkey) if outcome.ok
                 else messages.fail(pid, [outcome.error], prvkey=self.prvkey))
        try:
            self._riding_out_outages(lambda: self.rpc.send(close), f"closing process {pid[:12]}")
        except ColoniesError as e:  # e.g. re-assigned after maxexectime: the server decides
            log.warning("closing process %s failed: %s", pid[:12], e)
        return None

    def _via_courier(self, courier: Courier, pid: str, outcome: Outcome) -> Process | None:
        """Close through the courier and take the next process it brings (None: none was waiting,
        and the loop then long-polls on its own)."""
        ticket = Ticket(pid, outcome)
        try:
            courier.post(ticket)
        except RuntimeError:  # closed meanwhile (shutdown): close it on our own
            return self._finish(pid, outcome)
        ticket.done.wait()
        if ticket.failed:  # whether the close landed is unknown: the plain close, retried, settles it
            return self._finish(pid, outcome)
        return ticket.process

    def _riding_out_outages(self, fn: Callable[[], T], what: str) -> T:
        """fn(), retried with backoff for up to RETRY_OUTAGE_S while the server is unreachable.

        A server that is briefly away (restarting) must not cost an assigned call: failing or
        dropping it would leave it to maxexectime to re-queue, and the function would run again.
        Any answer from the server (also an error) ends the retries.
        """
        deadline = time.monotonic() + RETRY_OUTAGE_S
        delay = 0.1
        while True:
            try:
                return fn()
            except (ColoniesConnectionError, ColoniesTimeoutError) as e:
                # Only the Colonies server is waited for; an S3 outage (the SDK's "S3:" errors)
                # fails the call at once with a clear message, as before.
                if e.message.startswith("S3:") or time.monotonic() + delay > deadline:
                    raise
                log.info("%s: server unreachable (%s); retrying", what, e)
            self._retry_wait.wait(delay)  # an Event never set: an interruptible sleep
            delay = min(delay * 2, 2.0)

    def _log(self, pid: str, text: str) -> None:
        try:
            self.rpc.send(messages.add_log(pid, text, prvkey=self.prvkey))
        except ColoniesError as e:
            log.debug("add_log %s: %s", pid[:12], e)

    # -- nested calls ---------------------------------------------------------------------------

    def _nested_call(self, name: str, args: list[Any], kwargs: dict[str, Any], timeout: float) -> Any:
        """A function's call of another deployed function, run by this executor on the caller's
        behalf (user code never holds a key).

        It runs here, in another warm worker of the pool (an overflow slot when all are busy),
        within the caller's remaining time, and its output lines go to the caller's process log
        prefixed with `[name]`. Not through the server queue: there a nested call could wait
        behind queued callers that hold every executor's slots, i.e. deadlock under load.
        """
        depth = getattr(self._context, "depth", 0)
        if depth >= MAX_NESTING:
            raise NestedCallError(f"call of {name!r}: nested calls deeper than {MAX_NESTING}")
        if timeout <= 0:
            raise NestedCallError(f"no time left to call {name!r}")
        try:
            call = call_from_spec(name, args, kwargs)
            bundle = self.resolve(call.function)
        except (CallError, FunctionNotDeployed, BundleError, ChecksumMismatch, ColoniesError) as e:
            raise NestedCallError(str(e)) from None
        if bundle.limits.timeout:
            timeout = min(timeout, bundle.limits.timeout)
        pid = getattr(self._context, "processid", "")
        self._context.depth = depth + 1
        try:
            outcome = self.pool.run(bundle, call.args, call.kwargs, timeout, nested=True,
                                    on_log=lambda _s, text: self._log(pid, _prefix(name, text)) if pid else None)
        finally:
            self._context.depth = depth
        if outcome.ok:
            return outcome.value
        raise NestedCallError(outcome.error)


def _prefix(name: str, text: str) -> str:
    return "".join(f"[{name}] {line}" for line in text.splitlines(keepends=True))


def _claim_state_dir(path: str, shared: bool) -> None:
    """Create the state directory; when it is the `shared` default under TMPDIR, also check that
    it is this uid's own, and take write access to it away from everyone else. Anyone may create
    that path in a shared /tmp before the executor does, and whoever can write in it could plant
    packages that the workers import (the installed requirements). StateDirError says what is
    wrong."""
    uid = os.geteuid()
    hint = "; --state-dir DIR picks another directory"
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
        st = os.lstat(path) if shared else os.stat(path)  # an explicit one may be a symlink
    except OSError as e:
        raise StateDirError(f"state dir {path}: {e.strerror} (uid {uid}){hint}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StateDirError(f"state dir {path} is a symbolic link, not a directory of this uid's own{hint}")
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirError(f"state dir {path} is not a directory{hint}")
    if shared and st.st_uid != uid:
        raise StateDirError(f"state dir {path} belongs to uid {st.st_uid}, not to this executor's uid {uid}: "
                            f"remove it if that is expected{hint}")
    if shared and st.st_mode & 0o022:  # ours, made under a lax umask: close it
        log.warning("state dir %s could be written by other users (mode %o); removing their write access",
                    path, stat.S_IMODE(st.st_mode))
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o022)


def _sweep_scratch(state_dir: str) -> None:
    """Remove scratch dirs left by executors of this machine that died (`scratch-<pid>-*`)."""
    import shutil

    for d in Path(state_dir).glob("scratch-*-*"):
        try:
            pid = int(d.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)
