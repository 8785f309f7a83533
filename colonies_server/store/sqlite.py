"""SQLite store: WAL, one connection owned by the event loop, group commit with a savepoint per operation.

Why in the loop thread rather than a writer thread: Python's sqlite3 releases the GIL around every step,
so a writer thread re-acquires the GIL several times per statement while the loop thread is busy; under
load that convoy costs more than the statements. Statements here take microseconds; the expensive part,
the COMMIT (fsync with synchronous=FULL, ~0.1-0.2 ms), is paid once per batch: every operation queued
during one loop iteration joins the same transaction, and their futures resolve only after COMMIT.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .base import DatabaseInUse, EventSink, StoreUnavailable
from .schema import SCHEMA, SCHEMA_VERSION
from .sqlite_tx import SqliteTx

__all__ = ["SqliteStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def _hold(path: str) -> int:
    """A descriptor of the database file (created if missing) with an exclusive flock on it, so that
    a second server on the same file is refused instead of serving beside the first: each would
    keep caches of what only it writes, and neither would wake the executors parked at the other.

    Taken before this process opens any connection to the file, and closed only after the last one
    (see _Checkpointer.__init__). flock locks are not SQLite's POSIX locks: neither disturbs the
    other, and the sqlite3 shell or a backup program can still open the database meanwhile."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):  # a filesystem without flock
            log.warning("cannot lock %s (%s): a second server on it would not be refused", path, e.strerror)
            return fd
        if not isinstance(e, BlockingIOError):
            os.close(fd)
            raise
        holder = _flock_holder(os.fstat(fd).st_ino)
        os.close(fd)  # no connection of this process is open on the file yet: no lock to lose
        who = f" (pid {holder})" if holder else ""
        raise DatabaseInUse(
            f"database {path} is in use by another colonies server{who}: an SQLite database serves one server "
            "(several replicas share a PostgreSQL database, docs/SERVER.md)") from None
    return fd


def _flock_holder(inode: int) -> int | None:
    """The pid holding a flock on this inode, from /proc/locks (Linux), or None."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        if len(f) >= 6 and f[1] == "FLOCK" and f[5].rsplit(":", 1)[-1] == str(inode) and f[4].isdigit():
            return int(f[4])
    return None


CACHE_KIB = -8192
"""The write connection's page cache (PRAGMA cache_size: negative is KiB); see SqliteStore.open."""


class _Checkpointer:
    """WAL checkpoints on their own connection in a daemon thread.

    Auto-checkpointing is off on the loop's connection: a checkpoint copies pages into the database and
    fsyncs it (milliseconds here), which would stall the event loop inside some unlucky COMMIT. PASSIVE
    checkpoints run concurrently with the writer; the sqlite3 module releases the GIL while they work.

    A PASSIVE checkpoint never takes the writer's lock, so under steady load it never catches up: the
    writer commits again before it has copied the last frames, the WAL is never started over, and it
    grew by ~60 MB/s at 1,100 calls/s (1.3 GB in 20 s). Once the WAL holds `restart_frames` frames, a
    RESTART checkpoint waits for a gap between two of the writer's transactions, copies what is left
    (little, after the PASSIVE one), fsyncs and starts the WAL over; the writer waits meanwhile
    (~10-20 ms here, once per `restart_frames`). The file keeps its size and is written over;
    `journal_size_limit` on the writer's connection cuts it back if it ever grew past 4× that.
    """

    def __init__(self, path: str, fd: int, period: float, restart_frames: int) -> None:
        self.path = path
        # The fsyncs before a restart go through the store's descriptor of the file (_hold), open
        # for as long as its connections are. POSIX locks belong to the process, and closing any
        # descriptor of the file drops every lock SQLite holds on it: a descriptor of its own,
        # closed after each restart, left the server without its lock on the database file, and
        # the next program to open the database (the sqlite3 shell, a backup) took itself for its
        # last user when it closed, and deleted the server's WAL.
        self._fd = fd
        self.period = period
        self.restart_frames = restart_frames
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            while not self._stop.wait(self.period):
                try:
                    _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= self.restart_frames:
                        self._restart(conn)
                except sqlite3.Error as e:
                    log.warning("checkpoint failed: %s", e)
        finally:
            conn.close()

    def _restart(self, conn: sqlite3.Connection) -> None:
        """Start the WAL over with the writer held back as briefly as possible: flush the pages the
        passive checkpoints copied to disk first, without any lock, so that the RESTART, which holds
        the writer's lock, has only the last few frames to copy and little to sync."""
        os.fsync(self._fd)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        os.fsync(self._fd)
        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        self.restarts += 1


class _Committer:
    """Runs COMMIT in a daemon thread (used with synchronous=FULL/EXTRA, where COMMIT is an fsync).

    The sqlite3 module releases the GIL during the fsync, so the loop keeps parsing and verifying
    requests meanwhile; they form the next batch, which starts when this COMMIT is done.
    """

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[tuple[sqlite3.Connection, Callable[[BaseException | None], None]] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._run, name="sqlite-commit", daemon=True)
        self._thread.start()

    def commit(self, conn: sqlite3.Connection, done: Callable[[BaseException | None], None]) -> None:
        self._q.put((conn, done))

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            conn, done = item
            err: BaseException | None = None
            try:
                conn.execute("COMMIT")
            except Exception as e:  # handed to the loop, which fails the batch
                err = e
            done(err)


class SqliteStore:
    """The Store protocol on one SQLite file (see module docstring for the commit strategy)."""

    inline_ops = True  # operations run on the loop's thread (Store.inline_ops)

    def __init__(self, path: str, synchronous: str = "FULL", max_batch: int = 2000,
                 checkpoint_period: float = 1.0, wal_restart_frames: int = 16_384) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"sqlite synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = path
        self.synchronous = synchronous.upper()
        self.max_batch = max_batch
        self.checkpoint_period = checkpoint_period
        self.wal_restart_frames = wal_restart_frames  # ~64 MiB of 4 KiB pages (see _Checkpointer)
        self._checkpointer: _Checkpointer | None = None
        self.on_commit: EventSink | None = None
        self._conn: sqlite3.Connection | None = None
        self._tx: SqliteTx | None = None
        self._pending: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.ops = 0
        # synchronous=FULL/EXTRA: COMMIT (an fsync) runs in a thread and reads use a second connection,
        # so the loop never waits for the disk; NORMAL commits are only write()s and stay inline.
        self._offload = self.synchronous in ("FULL", "EXTRA") and path != ":memory:"
        self._committer: _Committer | None = None
        self._committing = False
        self._rconn: sqlite3.Connection | None = None
        self._rtx: SqliteTx | None = None
        self._fd = -1

    async def open(self) -> None:
        """Open (creating) the database; DatabaseInUse if another store has it open, StoreUnavailable
        naming the file if it cannot be opened (a directory in the way, no permission, not SQLite)."""
        self._loop = asyncio.get_running_loop()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._fd = _hold(self.path)
        except OSError as e:
            raise StoreUnavailable(f"cannot open database {self.path}: {e.strerror or e}"
                                   + (f" ({e.filename})" if e.filename and e.filename != self.path else "")) from e
        try:
            conn = self._connect_and_migrate()
        except BaseException as e:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if isinstance(e, sqlite3.Error):
                raise StoreUnavailable(f"cannot open database {self.path}: {e}") from e
            raise
        self._conn = conn
        self._tx = SqliteTx(conn)
        self._tx.cache_members = True  # this connection sees every write (see SqliteTx.member)
        if self._offload:
            self._rconn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                          cached_statements=512)
            self._rconn.execute("PRAGMA query_only=ON")
            self._rtx = SqliteTx(self._rconn)
            self._committer = _Committer()
        if self.path != ":memory:" and self.checkpoint_period > 0:
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it (see _Checkpointer)
            # Truncated back only past 4× the restart size: cutting it at every restart cost the
            # loop an ftruncate of ~7 ms each time, and the next frames would grow it again.
            conn.execute(f"PRAGMA journal_size_limit={4 * self.wal_restart_frames * 4096}")
            self._checkpointer = _Checkpointer(self.path, self._fd, self.checkpoint_period,
                                             self.wal_restart_frames)
            self._checkpointer.start()

    def _connect_and_migrate(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=512)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("PRAGMA busy_timeout=5000")
            # 8 MiB, not more: at every COMMIT SQLite walks every page its cache holds (pcache1's
            # truncate to the database's size, from sqlite3PagerCommitPhaseTwo), so a 64 MiB cache that
            # had filled cost each commit tens of microseconds (~8 % of the server's CPU per call at
            # concurrency 1, bench/README.md "Seventh round"). The pages the hot path touches (the right
            # edges of the process table and its indexes) fit many times over; a cold read is a
            # pread from the OS page cache.
            conn.execute(f"PRAGMA cache_size={CACHE_KIB}")
            conn.execute("BEGIN IMMEDIATE")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        while self._committing:  # let an in-flight COMMIT land and resolve its futures
            await asyncio.sleep(0.001)
        self._offload = False  # whatever is still queued commits inline now
        if self._pending:
            self._flush()
        if self._committer is not None:
            self._committer.stop()
            self._committer = None
        if self._rconn is not None:
            self._rconn.close()
            self._rconn = None
            self._rtx = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._conn is not None:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:
                log.warning("final checkpoint failed: %s", e)
            self._conn.close()
            self._conn = None
        if self._fd >= 0:  # last, after every connection (see _hold)
            os.close(self._fd)
            self._fd = -1

    @property
    def wal_restarts(self) -> int:
        """How often the checkpointer started a grown WAL over (see _Checkpointer)."""
        return self._checkpointer.restarts if self._checkpointer is not None else 0

    @property
    def tx(self) -> SqliteTx:
        if self._tx is None:
            raise RuntimeError("store is not open")
        return self._tx

    async def read(self, fn: Callable[[Any], T]) -> T:
        """Run a read-only function now; it only sees committed data."""
        return fn(self._rtx if self._rtx is not None else self.tx)

    def write(self, fn: Callable[[Any], T]) -> asyncio.Future[T]:
        """Queue fn(tx) for the next group commit; the future resolves after COMMIT (or with fn's error)."""
        if self._loop is None or self._conn is None:
            raise RuntimeError("store is not open")
        fut: asyncio.Future[T] = self._loop.create_future()
        self._pending.append((fn, fut))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending and not self._committing:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
            self._run_batch(batch)

    def _run_batch(self, batch: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]]) -> None:
        conn, tx = self._conn, self.tx
        assert conn is not None
        done: list[tuple[asyncio.Future[Any], Any, BaseException | None, list[tuple[Any, ...]]]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        # A savepoint per operation, so one failing operation is rolled back alone; a batch of one
        # (every batch at low load) needs none: its failure rolls back the whole transaction.
        alone = len(batch) == 1
        for fn, fut in batch:
            if fut.cancelled():
                continue  # the caller is gone (e.g. a disconnected long-poll): nothing to acknowledge
            tx.events = []
            if not alone:
                conn.execute("SAVEPOINT op")
            try:
                result = fn(tx)
            except Exception as e:  # one failing operation must not poison the batch
                tx.invalidate()
                if alone:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                done.append((fut, None, e, []))
            else:
                if not alone:
                    conn.execute("RELEASE op")
                done.append((fut, result, None, tx.events))
        tx.events = []
        if not conn.in_transaction:  # the batch of one failed: nothing left to commit
            self._committed(done, None)
            return
        if self._offload and self._committer is not None and self._loop is not None:
            self._committing = True
            loop = self._loop

            def landed(err: BaseException | None) -> None:  # in the committer thread
                loop.call_soon_threadsafe(self._committed, done, err)
            self._committer.commit(conn, landed)
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._committed(done, e)
            return
        self._committed(done, None)

    def _committed(self, done: list[tuple[asyncio.Future[Any], Any, BaseException | None, list[tuple[Any, ...]]]],
                   err: BaseException | None) -> None:
        """After COMMIT (or its failure): resolve the batch's futures and publish its events."""
        self._committing = False
        conn, tx = self._conn, self._tx
        if err is not None:
            log.warning("commit failed, %d operations rolled back: %s", len(done), err)
            if tx is not None:
                tx.invalidate()
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
            for fut, _, _, _ in done:
                if not fut.done():
                    fut.set_exception(err)
        else:
            self.batches += 1
            self.ops += len(done)
            sink = self.on_commit
            for fut, result, e, events in done:
                if events and sink is not None:
                    sink(events)
                if fut.done():
                    continue
                if e is not None:
                    fut.set_exception(e)
                else:
                    fut.set_result(result)
        if self._pending and not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._flush)
