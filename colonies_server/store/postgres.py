"""PostgreSQL store: the Store protocol over psycopg 3, for one or several replicas sharing a database.

fn(tx) is synchronous (the Tx contract), so every operation runs on a small pool of daemon worker
threads, each owning one connection (the connection pool). A write is one transaction: BEGIN, fn(tx),
the NOTIFYs that relay its events to other replicas, COMMIT; the events are published locally after
COMMIT, as with SQLite. Lock conflicts (deadlock, serialization, a unique key two replicas raced for)
re-run fn a few times. A lost connection is retried once on a fresh one; after that the store fails
fast with a 503 while it backs off (up to `max_backoff` seconds) instead of letting requests queue.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import RPCError
from .base import EventSink, StoreUnavailable
from .postgres_schema import migrate
from .postgres_tx import PostgresTx

try:
    import psycopg
    from psycopg import errors as pg_errors
except ImportError as e:  # pragma: no cover - the postgres extra is part of the server image
    raise ImportError("PostgreSQL storage needs psycopg: pip install 'colonyfaas[postgres]'") from e

__all__ = ["PostgresStore", "in_thread"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Encoder = Callable[[list[tuple[Any, ...]]], list[str]]

_CONFLICTS = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.UniqueViolation)
_LOST = (psycopg.OperationalError, psycopg.InterfaceError)
_ATTEMPTS = 5


class _Unknown(Exception):
    """The connection broke during COMMIT: the write may or may not have happened."""


class _Workers:
    """Daemon threads, each with its own connection, running jobs from one queue."""

    def __init__(self, store: PostgresStore, n: int) -> None:
        self.store = store
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._run, name=f"pg-store-{i}", daemon=True) for i in range(n)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join(timeout=10)

    def _run(self) -> None:
        local = threading.local()
        local.conn = None
        while True:
            job = self.jobs.get()
            if job is None:
                break
            loop, fut, fn = job
            try:
                result: Any = fn(local)
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
                loop.call_soon_threadsafe(_settle, fut, None, e)
            else:
                loop.call_soon_threadsafe(_settle, fut, result, None)
        if local.conn is not None:
            local.conn.close()


async def in_thread(fn: Callable[[], T], name: str = "pg-blocking") -> T:
    """Run a blocking call on a new daemon thread (not the loop's default executor, whose threads
    outlive the call and would keep a stopping process or a test's thread check waiting)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(_settle, fut, None, e)
        else:
            loop.call_soon_threadsafe(_settle, fut, result, None)
    threading.Thread(target=run, name=name, daemon=True).start()
    return await fut


def _settle(fut: asyncio.Future[Any], result: Any, err: BaseException | None) -> None:
    if fut.done():
        return
    if err is not None:
        fut.set_exception(err)
    else:
        fut.set_result(result)


class PostgresStore:
    """The Store protocol on PostgreSQL (see module docstring)."""

    inline_ops = False  # operations run in the pool's threads (Store.inline_ops)

    def __init__(self, url: str, pool_size: int = 8, connect_timeout: float = 5.0, op_timeout: float = 30.0,
                 max_backoff: float = 2.0, application_name: str = "colonyfaas") -> None:
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.op_timeout = op_timeout
        self.max_backoff = max_backoff
        self.application_name = application_name
        self.on_commit: EventSink | None = None
        # Set by the cluster relay: events → NOTIFY payloads sent inside the write transaction.
        self.encode: Encoder | None = None
        self.channel = "colonyfaas"
        self._workers: _Workers | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self._backoff = 0.0
        self._lock = threading.Lock()
        self.ops = 0
        self.retries = 0

    # ---- connections
    def connect(self, **kw: Any) -> Any:
        """A new autocommit connection with this store's timeouts (also used by the cluster relay)."""
        return psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout)),
                               application_name=self.application_name, keepalives=1, keepalives_idle=5,
                               keepalives_interval=2, keepalives_count=3,
                               options=f"-c statement_timeout={int(self.op_timeout * 1000)}", **kw)

    def _conn(self, local: Any) -> Any:
        if local.conn is None or local.conn.closed:
            local.conn = self.connect()
        return local.conn

    def _drop(self, local: Any) -> None:
        if local.conn is not None:
            try:
                local.conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            local.conn = None

    def _up(self) -> None:
        if self._backoff:
            with self._lock:
                if self._backoff:
                    log.info("database connection restored")
                self._backoff = 0.0

    def _down(self, err: BaseException) -> RPCError:
        with self._lock:
            self._backoff = min(self.max_backoff, max(0.1, self._backoff * 2))
            self._down_until = time.monotonic() + self._backoff
        log.warning("database unavailable (next try in %.1f s): %s", self._backoff, err)
        return RPCError(503, f"database unavailable, retry later: {str(err).strip()[:200]}")

    # ---- lifecycle
    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        def prepare() -> None:
            with self.connect() as conn:
                migrate(conn)
        try:
            await in_thread(prepare)
        except psycopg.OperationalError as e:  # unreachable, refused, unknown database or user
            raise StoreUnavailable(f"cannot open the PostgreSQL database: {' '.join(str(e).split())}") from e
        self._workers = _Workers(self, self.pool_size)
        self._workers.start()

    async def close(self) -> None:
        if self._workers is not None:
            workers, self._workers = self._workers, None
            await in_thread(workers.stop)

    # ---- operations
    async def read(self, fn: Callable[[Any], T]) -> T:
        result: T = await self._submit(lambda local: self._attempt(local, fn, write=False)[0])
        return result

    async def write(self, fn: Callable[[Any], T]) -> T:
        result, events = await self._submit(lambda local: self._attempt(local, fn, write=True))
        sink = self.on_commit
        if events and sink is not None:
            sink(events)
        return result  # type: ignore[no-any-return]

    async def notify(self, payload: str) -> None:
        """NOTIFY this store's channel outside any transaction (e.g. relayed leases)."""
        def job(local: Any) -> None:
            self._conn(local).execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
        await self._submit(job)

    async def _submit(self, job: Callable[[Any], Any]) -> Any:
        if self._workers is None or self._loop is None:
            raise RuntimeError("store is not open")
        if time.monotonic() < self._down_until:
            raise RPCError(503, "database unavailable, retry later (reconnecting)")
        fut = self._loop.create_future()
        self._workers.jobs.put((self._loop, fut, job))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.op_timeout + self.connect_timeout)
        except asyncio.TimeoutError:
            raise RPCError(503, f"database did not answer within {self.op_timeout:g} s; a write may or may "
                                "not have been applied") from None

    def _attempt(self, local: Any, fn: Callable[[Any], Any], write: bool) -> tuple[Any, list[tuple[Any, ...]]]:
        """Run fn in a transaction (write) or on autocommit statements (read), with the retries above."""
        lost = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                out = self._once(local, fn, write)
            except _Unknown as e:
                self._drop(local)
                self._down(e.__cause__ or e)
                raise RPCError(503, "database connection lost during COMMIT; the write may or may not have "
                                    "been applied") from None
            except _LOST as e:
                conn = local.conn
                if conn is not None and not conn.closed and not conn.broken:
                    # An error on a healthy connection (statement_timeout, lock timeout): not an outage.
                    raise RPCError(503, f"database error, retry later: {str(e).strip()[:200]}") from None
                self._drop(local)
                lost += 1
                if lost > 1:  # one retry on a fresh connection (a pooled one may predate a DB restart)
                    raise self._down(e) from None
                continue
            except _CONFLICTS:
                if attempt >= _ATTEMPTS:
                    raise
                self.retries += 1
                continue
            except pg_errors.DataError as e:
                raise RPCError(400, f"invalid value: {str(e).strip()[:200]}") from None
            self._up()
            self.ops += 1
            return out

    def _once(self, local: Any, fn: Callable[[Any], Any], write: bool) -> tuple[Any, list[tuple[Any, ...]]]:
        conn = self._conn(local)
        tx = PostgresTx(conn, write)
        if not write:
            return fn(tx), []
        conn.execute("BEGIN")
        try:
            result = fn(tx)
            events, encode = tx.events, self.encode
            if events and encode is not None:
                for payload in encode(events):
                    conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
        except BaseException:
            if not conn.broken:
                try:
                    conn.execute("ROLLBACK")
                except _LOST:
                    pass  # the server rolls back a transaction whose connection went away
            raise
        try:
            conn.execute("COMMIT")
        except _LOST as e:
            raise _Unknown("connection lost during COMMIT") from e
        return result, events
