"""Several replicas on one PostgreSQL database: signal relay (LISTEN/NOTIFY), leases, timer leadership.

- Every write transaction NOTIFYs its events (store/postgres.py calls `encode`), so the NOTIFY is
  delivered exactly when the write commits. Each replica LISTENs on a dedicated connection and feeds
  the other replicas' events to its own Hub: long-poll assigns wake within milliseconds and /pubsub
  subscriptions see every state change. A NOTIFY payload is limited to 8000 bytes: a process document
  that does not fit is sent as (id, state) and re-read by the receiver.
- Executor leases live in memory on every replica: heartbeats are relayed to all of them, so whichever
  replica runs the timers knows every lease.
- Timers run on the one replica holding a session-level advisory lock on a dedicated connection. When
  that replica dies its connection closes, PostgreSQL releases the lock and another replica takes it
  within `leader_period`. Timer passes lock the rows they change, so even a brief overlap is harmless.
- A slow fallback (every `fallback_period`) wakes parked assigners in case a notification was missed
  (e.g. while the listening connection was being re-established).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

from . import jsonx
from .runtime import Lease, Runtime

__all__ = ["Cluster", "start_cluster"]

log = logging.getLogger(__name__)
LEADER_LOCK = 0x636F6C6F6E79_02  # pg_try_advisory_lock key shared by all replicas
PAYLOAD_LIMIT = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
_DOC_LIMIT = 6000


class _RelayedLeases(dict[str, Lease]):
    """Runtime.leases that tells the other replicas about every lease taken or dropped here."""

    def __init__(self, cluster: Cluster, initial: dict[str, Lease]) -> None:
        super().__init__(initial)
        self.cluster = cluster

    def __setitem__(self, eid: str, lease: Lease) -> None:
        super().__setitem__(eid, lease)
        self.cluster.relay(["lease", eid, lease.colonyname, lease.executorname, lease.lease_ns])

    def __delitem__(self, eid: str) -> None:
        super().__delitem__(eid)
        self.cluster.relay(["unlease", eid])

    def pop(self, eid: str, *default: Any) -> Any:  # type: ignore[override]
        had = eid in self
        value = super().pop(eid, *default)
        if had:
            self.cluster.relay(["unlease", eid])
        return value


class Cluster:
    """The replica-to-replica machinery of one server (see module docstring)."""

    def __init__(self, rt: Runtime, leader_period: float = 0.5, fallback_period: float = 5.0) -> None:
        self.rt = rt
        self.store: Any = rt.store
        self.origin = uuid.uuid4().hex[:16]
        self.leader_period = leader_period
        self.fallback_period = fallback_period
        self.leader = False
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fallback: asyncio.Task[None] | None = None

    def is_leader(self) -> bool:
        return self.leader

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.store.encode = self.encode
        self.rt.leases = _RelayedLeases(self, self.rt.leases)
        self._threads = [threading.Thread(target=self._listen, name="pg-listen", daemon=True),
                         threading.Thread(target=self._lead, name="pg-leader", daemon=True)]
        for t in self._threads:
            t.start()
        self._fallback = asyncio.create_task(self._fallback_wakes())
        # Wait (bounded) until LISTEN is in place, so nothing committed after start-up is missed.
        from .store.postgres import in_thread  # psycopg is only needed with PostgreSQL

        await in_thread(lambda: self.listening.wait(10))

    async def stop(self) -> None:
        self._stop.set()
        if self._fallback is not None:
            self._fallback.cancel()
        for task in [*self._tasks, *([self._fallback] if self._fallback else [])]:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        from .store.postgres import in_thread

        await in_thread(self._join)
        self.store.encode = None

    def _join(self) -> None:
        for t in self._threads:
            t.join(timeout=10)

    # ---- outgoing
    def encode(self, events: list[tuple[Any, ...]]) -> list[str]:
        """Events → NOTIFY payloads (each < 8000 bytes) tagged with this replica's origin."""
        items: list[bytes] = []
        for ev in events:
            if ev[0] == "process":
                p = ev[1]
                doc = jsonx.dumps(["process", p])
                if len(doc) > _DOC_LIMIT:
                    doc = jsonx.dumps(["ref", p["processid"], p["state"]])
                items.append(doc)
            elif ev[0] in ("wake", "wake_colony"):
                items.append(jsonx.dumps(list(ev)))
        out: list[str] = []
        head = self.origin + "\n["
        chunk: list[bytes] = []
        size = len(head) + 1
        for item in items:
            if chunk and size + len(item) + 1 > PAYLOAD_LIMIT:
                out.append(head + b",".join(chunk).decode() + "]")
                chunk, size = [], len(head) + 1
            chunk.append(item)
            size += len(item) + 1
        if chunk:
            out.append(head + b",".join(chunk).decode() + "]")
        return out

    def relay(self, event: list[Any]) -> None:
        """Send one event to the other replicas outside any transaction (leases)."""
        if self._loop is None:
            return
        payload = self.origin + "\n" + jsonx.dumps([event]).decode()
        task = self._loop.create_task(self.store.notify(payload))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("relaying a lease to the other replicas failed: %s", task.exception())

    # ---- incoming
    def deliver(self, payload: str) -> None:
        """One NOTIFY payload from any replica (ours are skipped: they were published locally)."""
        origin, _, body = payload.partition("\n")
        if origin == self.origin:
            return
        hub, leases = self.rt.hub, self.rt.leases
        for ev in jsonx.loads(body):
            kind = ev[0]
            if kind == "process":
                hub.publish([("process", ev[1])])
            elif kind == "wake":
                hub.wake(ev[1], ev[2])
            elif kind == "wake_colony":
                hub.wake_colony(ev[1])
            elif kind == "ref":
                self._track(self._reread(ev[1]))
            elif kind == "lease":
                dict.__setitem__(leases, ev[1], Lease(ev[2], ev[3], int(ev[4]), self.rt.now_ns()))
            elif kind == "unlease":
                dict.pop(leases, ev[1], None)

    def _track(self, coro: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _reread(self, processid: str) -> None:
        p = await self.store.read(lambda tx: tx.get_process(processid))
        if p is not None:
            self.rt.hub.publish([("process", p)])

    async def _fallback_wakes(self) -> None:
        while True:
            await asyncio.sleep(self.fallback_period)
            await self.wake_all()

    async def wake_all(self) -> None:
        """Wake every parked assigner (they re-check the queue); the safety net for missed notifications."""
        if not self.rt.hub.waiting():
            return
        try:
            colonies = await self.store.read(lambda tx: tx.list_colonies())
        except Exception as e:  # noqa: BLE001 - the next round tries again
            log.warning("fallback wake-up failed: %s", e)
            return
        for c in colonies:
            self.rt.hub.wake_colony(c["name"])

    # ---- threads with dedicated connections
    def _listen(self) -> None:
        backoff, outage = 0.1, False
        while not self._stop.is_set():
            conn = None
            try:
                conn = self.store.connect()
                conn.execute(f"LISTEN {self.store.channel}")
                self.listening.set()
                if outage:
                    log.info("listening for other replicas' events again")
                    self._call(lambda: self._track(self.wake_all()))
                backoff, outage = 0.1, False
                while not self._stop.is_set():
                    for n in conn.notifies(timeout=0.5):
                        self._call(lambda payload=n.payload: self.deliver(payload))
            except Exception as e:  # noqa: BLE001 - reconnect with backoff
                if not outage:
                    log.warning("listening connection lost: %s", e)
                outage = True
                self._stop.wait(backoff)
                backoff = min(2.0, backoff * 2)
            finally:
                if conn is not None:
                    conn.close()

    def _lead(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self.store.connect()
                if not self.leader:
                    if conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()[0]:
                        self.leader = True
                        log.info("this replica now runs the timers (maxwaittime, maxexectime, leases, crons)")
                else:
                    conn.execute("SELECT 1")
            except Exception as e:  # noqa: BLE001 - lose leadership, retry on a new connection
                if self.leader:
                    log.warning("timer leadership lost: %s", e)
                self.leader = False
                if conn is not None:
                    conn.close()
                    conn = None
            self._stop.wait(self.leader_period)
        self.leader = False
        if conn is not None:
            conn.close()  # releases the advisory lock at once

    def _call(self, fn: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn)


async def start_cluster(rt: Runtime) -> Cluster | None:
    """The cluster machinery for a PostgreSQL-backed runtime; None for single-process stores (SQLite)."""
    if not rt.settings.db.startswith(("postgresql://", "postgres://")):
        return None
    cluster = Cluster(rt)
    await cluster.start()
    return cluster
