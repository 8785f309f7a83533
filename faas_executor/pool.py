"""The warm worker pool: at most `size` workers (plus overflow slots for nested calls), each
pre-started without a function or holding one (function, version).

Slot bookkeeping (`Slots`) is a pure state machine: which worker a call gets, which idle worker
to evict, which older versions to retire. `WorkerPool` is the thin I/O shell that spawns and
kills `WorkerHandle`s according to it. A worker is isolated once when it starts; every later
call of the same version reuses it (warm) until it times out, crashes, runs out of memory, nears
its lifetime CPU budget or reaches `max_calls`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sandbox
from .bundle import Bundle
from .cgroups import CgroupRoot
from .handle import LogSink, NestedHook, Outcome, Reason, WorkerHandle, WorkerStartError

__all__ = ["BLANK", "Decision", "PoolSettings", "Slots", "WorkerPool"]

log = logging.getLogger(__name__)
Key = tuple[str, str]
BLANK: Key = ("", "")  # a pre-started worker: sandboxed with the default policy, no function yet


@dataclass(frozen=True)
class PoolSettings:
    """Limits and layers for every worker (a bundle's own memory/network settings override)."""

    scratch_root: str
    size: int = 2
    memory_mb: int = 256
    cpu_seconds: int = 60
    cpu_budget_seconds: int = 3600
    nofile: int = 256
    fsize_mb: int = 256
    nproc: int = 64
    uid_base: int | None = 64100
    cgroup_overhead_mb: int = 64
    namespaces: bool = True
    landlock: bool = True
    seccomp: bool = True
    cgroups: bool = True
    max_calls: int = 10_000
    max_overflow: int = 8  # extra slots for nested calls (see Slots.acquire)
    start_timeout: float = 30.0
    max_log_bytes: int = 1 << 20
    python: str = field(default_factory=lambda: sys.executable)
    extra_read_paths: tuple[str, ...] = ()  # also readable by workers (installed requirements)


# ---- pure bookkeeping ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """Where a call for `key` runs: reuse the warm worker in `slot`, load the function into the
    pre-started worker there (`load`), or start one there (after stopping `evict`, an idle worker
    of another key); `retire` lists idle slots holding an older version of the same function."""

    slot: int
    reuse: bool
    evict: bool = False
    retire: tuple[int, ...] = ()
    load: bool = False  # the slot holds a pre-started worker: load the function into it


@dataclass
class _Slot:
    key: Key | None = None
    busy: bool = False
    last_used: int = 0


class Slots:
    """Which slot each call uses. No I/O; the caller serialises access."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        self.size = size
        self.slots = [_Slot() for _ in range(size)]
        self._clock = 0

    def reserve_empty(self) -> list[int]:
        """Mark every empty slot busy for pre-starting a worker (release it with keep=True)."""
        empty = [i for i, s in enumerate(self.slots) if not s.busy and s.key is None]
        for i in empty:
            self.slots[i].key, self.slots[i].busy = BLANK, True
        return empty

    def acquire(self, key: Key, overflow: int = 0, blank_ok: bool = False) -> Decision | None:
        """A decision for `key`, or None when every slot is busy. With `overflow` > 0 (a nested
        call, whose caller holds a slot while it waits) up to that many slots beyond the pool's
        size may be added, so nested calls can never wait on their own callers."""
        self._clock += 1
        retire = tuple(i for i, s in enumerate(self.slots)
                       if not s.busy and s.key is not None and s.key[0] == key[0] and s.key != key)
        for i in retire:
            self.slots[i].key = None
        idle_same = [i for i, s in enumerate(self.slots) if not s.busy and s.key == key]
        if idle_same:
            i = max(idle_same, key=lambda j: self.slots[j].last_used)  # most recently used: warmest
            return self._take(i, key, Decision(i, reuse=True, retire=retire))
        if blank_ok:
            blank = [i for i, s in enumerate(self.slots) if not s.busy and s.key == BLANK]
            if blank:
                return self._take(blank[0], key, Decision(blank[0], reuse=False, retire=retire, load=True))
        empty = [i for i, s in enumerate(self.slots) if not s.busy and s.key is None]
        if empty:
            return self._take(empty[0], key, Decision(empty[0], reuse=False, retire=retire))
        idle = [i for i, s in enumerate(self.slots) if not s.busy]
        if idle:
            i = min(idle, key=lambda j: self.slots[j].last_used)  # least recently used
            return self._take(i, key, Decision(i, reuse=False, evict=True, retire=retire))
        if len(self.slots) < self.size + overflow:
            self.slots.append(_Slot())
            i = len(self.slots) - 1
            return self._take(i, key, Decision(i, reuse=False, retire=retire))
        return None

    def _take(self, i: int, key: Key, decision: Decision) -> Decision:
        s = self.slots[i]
        s.key, s.busy, s.last_used = key, True, self._clock
        return decision

    def release(self, slot: int, keep: bool) -> None:
        """The call in `slot` ended; `keep` = its worker stays warm for the next call."""
        s = self.slots[slot]
        s.busy = False
        if not keep:
            s.key = None

    def warm(self) -> list[Key]:
        return [s.key for s in self.slots if s.key is not None and s.key != BLANK]


# ---- I/O shell ----------------------------------------------------------------------------------

class WorkerPool:
    """Runs calls in warm sandboxed workers; thread-safe (one call per executor thread)."""

    def __init__(self, settings: PoolSettings, nested: NestedHook | None = None) -> None:
        self.settings = settings
        self.nested = nested
        self.caps = sandbox.detect(settings.python)
        self._slots = Slots(settings.size)
        self._workers: dict[int, WorkerHandle] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._since: dict[int, float] = {}  # slot -> when its running call started
        self._typical: float | None = None  # moving average of call durations (s), for calls_are_short
        self._reported_off = False
        self.uid_lease: UidLease | None = None
        if self.caps.root and settings.uid_base is not None:
            self.uid_lease = UidLease(settings.uid_base, settings.size + settings.max_overflow)
        self.uid_base = self.uid_lease.uids[0] if self.uid_lease else None
        self.keep_read_search = False
        self.read_paths = sandbox.default_read_paths() + tuple(settings.extra_read_paths)
        if self.uid_base is not None:
            needed = (sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve()),
                      str(Path(settings.scratch_root).resolve().parent))
            self.keep_read_search = not all(sandbox.readable_by(p, self.uid_base, self.uid_base) for p in needed)
        self.cgroup_root: CgroupRoot | None = None
        if settings.cgroups and self.caps.cgroup:
            try:
                self.cgroup_root = CgroupRoot(self.caps.cgroup)
            except OSError as e:
                log.warning("cgroup limits unavailable: %s", e)
        Path(settings.scratch_root).mkdir(parents=True, exist_ok=True)
        os.chmod(settings.scratch_root, 0o711)

    def describe(self) -> str:
        """The one log line naming the active isolation layers."""
        return sandbox.describe(self.caps, self._policy_for(0, None), self.cgroup_root is not None)

    def exposure(self) -> str | None:
        """A warning when function code would run as this executor's own uid with nothing between
        them: not root (so no private uid), and neither Landlock nor a user namespace."""
        policy = self._policy_for(0, None)
        if self.caps.root or (policy.landlock and self.caps.landlock_abi) or (policy.namespaces and self.caps.userns):
            return None
        return ("workers run as this executor's uid with neither Landlock nor a user namespace: function "
                "code can read the files this uid can (the state dir, the bundle cache) and signal the "
                "executor; run the executor as root, or where Landlock or user namespaces are allowed")

    def _policy_for(self, slot: int, bundle: Bundle | None) -> sandbox.Policy:
        s = self.settings
        limits = bundle.limits if bundle is not None else None
        return sandbox.Policy(
            scratch=str(Path(s.scratch_root) / f"slot-{slot}"),
            memory_mb=(limits.memory_mb if limits and limits.memory_mb else s.memory_mb),
            cpu_seconds=s.cpu_seconds, cpu_budget_seconds=s.cpu_budget_seconds, nofile=s.nofile,
            fsize_mb=s.fsize_mb, nproc=s.nproc,
            uid=None if self.uid_lease is None else self.uid_lease.uids[slot],
            keep_read_search=self.keep_read_search,
            network=bool(limits and limits.network), namespaces=s.namespaces,
            landlock=s.landlock and self.caps.landlock_abi > 0,
            seccomp=s.seccomp and self.caps.seccomp is None,
            read_paths=self.read_paths)

    def run(self, bundle: Bundle, args: list[Any], kwargs: dict[str, Any], timeout: float,
            on_log: LogSink | None = None, nested: bool = False) -> Outcome:
        """Run one call of `bundle` in a warm worker (starting one if needed). `nested`: the call
        comes from a function running in this pool, which may use the overflow slots."""
        overflow = self.settings.max_overflow if nested else 0
        limits = bundle.limits
        blank_ok = (limits.memory_mb in (None, self.settings.memory_mb)) and not limits.network
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed and not nested:
                    raise RuntimeError("worker pool is closed")
                decision = self._slots.acquire(bundle.key, overflow, blank_ok)
                if decision is not None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Outcome(Reason.TIMEOUT, error=f"timed out after {timeout:g} s waiting for a free worker")
                self._cond.wait(remaining)
            self._since[decision.slot] = time.monotonic()
            stale = [self._workers.pop(i) for i in decision.retire if i in self._workers]
            old = None if decision.reuse or decision.load else self._workers.pop(decision.slot, None)
        limit, timeout = timeout, max(0.0, deadline - time.monotonic())
        for w in stale:
            self._dispose(w)
        if old is not None:
            self._dispose(old)
        keep = False
        try:
            worker = self._workers.get(decision.slot) if decision.reuse or decision.load else None
            if worker is not None and not worker.alive:
                # It died while idle (killed, OOM-killed between calls): none of this call's code
                # ran, so the call goes to a fresh worker instead of failing.
                log.warning("warm worker in slot %d died while idle; starting a fresh one", decision.slot)
                self._workers.pop(decision.slot, None)
                self._dispose(worker)
                worker = None
            if worker is not None and decision.load:
                try:
                    worker.load(bundle, self.settings.start_timeout)
                except WorkerStartError as e:
                    self._workers.pop(decision.slot, None)
                    self._dispose(worker)
                    return e.outcome
            if worker is None:
                try:
                    worker = self._spawn(decision.slot, bundle)
                except WorkerStartError as e:
                    return e.outcome
                self._workers[decision.slot] = worker
            outcome = worker.call(args, kwargs, timeout, on_log, self.nested)
            if outcome.reason is Reason.TIMEOUT:  # the whole limit, also the time spent waiting/starting
                outcome = Outcome(Reason.TIMEOUT, error=f"timed out after {limit:g} s")
            keep = self._keep(worker)
            if not keep:
                self._workers.pop(decision.slot, None)
                self._dispose(worker)
            return outcome
        finally:
            with self._cond:
                took = time.monotonic() - self._since.pop(decision.slot)
                self._typical = took if self._typical is None else 0.8 * self._typical + 0.2 * took
                self._slots.release(decision.slot, keep)
                self._wake_one()

    def _wake_one(self) -> None:
        """A slot is free: wake the longest waiting call (any waiter can take any free slot).
        Under load every other loop thread waits here for a worker; waking them all for each
        freed slot cost ten context switches and as many GIL hand-offs a call. `close()` waits
        for every slot, so once closing, everyone is woken. Call with `_cond` held."""
        if self._closed:
            self._cond.notify_all()
        else:
            self._cond.notify()

    def calls_are_short(self, horizon: float) -> bool:
        """True when calls have usually ended within `horizon` s and none of the running ones
        has taken longer: a call handed to the pool now would wait about that long at most for
        a worker. False before any call ended. (The executor asks before prefetching.)"""
        with self._cond:
            if self._typical is None or self._typical >= horizon:
                return False
            now = time.monotonic()
            return all(now - t < horizon for t in self._since.values())

    def prestart(self) -> int:
        """Start a sandboxed worker without a function in every empty slot, so that a first call
        (with the default memory cap and no network) only has to load its function. Returns how
        many started."""
        with self._cond:
            slots = self._slots.reserve_empty()
        started = 0
        for slot in slots:
            ok = False
            try:
                self._workers[slot] = self._spawn(slot, None)
                ok = True
                started += 1
            except WorkerStartError as e:
                log.warning("pre-starting worker %d failed: %s", slot, e.outcome.error)
            finally:
                with self._cond:
                    self._slots.release(slot, keep=ok)
                    self._cond.notify_all()
        return started

    def _keep(self, w: WorkerHandle) -> bool:
        s = self.settings
        return (w.alive and w.calls < s.max_calls
                and w.cpu_used + s.cpu_seconds < s.cpu_budget_seconds)

    def _spawn(self, slot: int, bundle: Bundle | None) -> WorkerHandle:
        policy = self._policy_for(slot, bundle)
        scratch = Path(policy.scratch)
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        if policy.uid is not None:
            os.chown(scratch, policy.uid, policy.uid)
            _reap_uid(policy.uid)
        cgroup = None
        if self.cgroup_root is not None:
            memory = (policy.memory_mb + self.settings.cgroup_overhead_mb) * sandbox.MiB if policy.memory_mb else None
            cgroup = self.cgroup_root.create(f"slot-{slot}", memory, self.settings.nproc)
        worker = WorkerHandle(bundle, policy, cgroup, self.settings.python, self.settings.max_log_bytes)
        try:
            layers = worker.start(self.settings.start_timeout)
        except BaseException:  # WorkerStartError, or an OSError spawning it: leave nothing behind
            self._dispose(worker)
            raise
        off = [layer for layer in layers if ":off" in layer]
        if off and not self._reported_off:
            self._reported_off = True  # once: the plan logged at start named this layer as on
            log.warning("worker %s: layers not applied: %s", worker.pid, ", ".join(off))
        log.debug("worker %s for %s started, layers %s", worker.pid, worker.name, layers)
        return worker

    def _dispose(self, w: WorkerHandle) -> None:
        w.stop()
        if w.cgroup is not None:
            w.cgroup.remove()
        if w.policy.uid is not None:
            _reap_uid(w.policy.uid)
        shutil.rmtree(w.policy.scratch, ignore_errors=True)

    def warm_keys(self) -> list[Key]:
        with self._cond:
            return self._slots.warm()

    def workers(self) -> dict[int, WorkerHandle]:
        """Live workers by slot (for tests and stats)."""
        return dict(self._workers)

    def close(self) -> None:
        """Stop every worker and remove cgroups and scratch dirs. Waits for running calls."""
        with self._cond:
            self._closed = True
            while any(s.busy for s in self._slots.slots):
                self._cond.wait()
            workers = list(self._workers.values())
            self._workers.clear()
        for w in workers:
            self._dispose(w)
        if self.cgroup_root is not None:
            self.cgroup_root.remove()
        if self.uid_lease is not None:
            self.uid_lease.release()
        shutil.rmtree(self.settings.scratch_root, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_dir() -> Path:
    for d in (Path("/run/colonyfaas"), Path(tempfile.gettempdir()) / "colonyfaas-uids"):
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            return d
        except OSError:
            continue
    raise OSError("no writable directory for uid locks")


def _uids_running() -> set[int]:
    """Real uids of the processes running now."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                found.add(entry.stat().st_uid)
            except OSError:
                pass
    return found


class UidLease:
    """Private uids for a pool's slots, held with one flock'ed file per uid so that pools in other
    executor processes on the machine never pick the same ones (each slot's uid is reaped with
    kill(-1) when its worker goes, which must hit only that worker's processes)."""

    def __init__(self, base: int, count: int, limit: int = 4096) -> None:
        directory = _lock_dir()
        running = _uids_running()
        self.uids: list[int] = []
        self._files: list[int] = []
        uid = base
        while len(self.uids) < count:
            if uid >= base + limit:
                self.release()
                raise OSError(f"no {count} free uids in {base}..{base + limit - 1}")
            if uid not in running:
                fd = os.open(directory / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                else:
                    self.uids.append(uid)
                    self._files.append(fd)
            uid += 1

    def release(self) -> None:
        for fd in self._files:
            os.close(fd)
        self._files = []


def _reap_uid(uid: int) -> None:
    """Kill every process left running under a worker's private uid (escaped its process group).

    kill(-1) from a process with that uid reaches exactly the processes of that uid.
    """
    try:
        subprocess.run(["kill", "-KILL", "-1"], user=uid, group=uid, extra_groups=[],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False,
                       env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as e:
        log.debug("reaping uid %s: %s", uid, e)
