"""SqliteStore: group commit, per-operation savepoints, events after COMMIT, persistence across reopen."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from colonies_server.store import DatabaseInUse, StoreUnavailable, open_store
from colonies_server.store.sqlite import SqliteStore


async def _open(path: Path) -> SqliteStore:
    store = SqliteStore(str(path))
    await store.open()
    return store


async def test_group_commit_and_savepoints(tmp_path: Path) -> None:
    store = await _open(tmp_path / "s.db")
    events: list[tuple[Any, ...]] = []
    store.on_commit = events.extend

    def add(name: str) -> Any:
        def op(tx: Any) -> str:
            tx.add_colony({"colonyid": "c" * 64, "name": name})
            tx.emit("added", name)
            if name == "bad":
                raise ValueError("boom")
            return name
        return store.write(op)

    results = await asyncio.gather(*(add(n) for n in ["a", "bad", "b"]), return_exceptions=True)
    assert results[0] == "a" and results[2] == "b" and isinstance(results[1], ValueError)
    assert store.batches == 1 and store.ops == 3  # one transaction for the three operations
    assert [c["name"] for c in await store.read(lambda tx: tx.list_colonies())] == ["a", "b"]
    assert events == [("added", "a"), ("added", "b")]  # the failed op's event is dropped
    await store.close()


@pytest.mark.parametrize("sync", ["NORMAL", "FULL"])
async def test_a_failing_operation_alone_in_its_batch_leaves_nothing(tmp_path: Path, sync: str) -> None:
    # A batch of one runs without a savepoint: its failure rolls back the whole transaction.
    store = SqliteStore(str(tmp_path / "one.db"), synchronous=sync)
    await store.open()
    events: list[tuple[Any, ...]] = []
    store.on_commit = events.extend

    def bad(tx: Any) -> None:
        tx.add_colony({"colonyid": "c" * 64, "name": "half"})
        tx.emit("added", "half")
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        await store.write(bad)
    assert await store.read(lambda tx: tx.get_colony("half")) is None
    await store.write(lambda tx: tx.add_colony({"colonyid": "c" * 64, "name": "next"}))
    assert [c["name"] for c in await store.read(lambda tx: tx.list_colonies())] == ["next"]
    assert events == [] and store.batches == 2
    await store.close()
    again = await _open(tmp_path / "one.db")
    assert [c["name"] for c in await again.read(lambda tx: tx.list_colonies())] == ["next"]
    await again.close()


async def test_the_wal_starts_over_under_steady_writes(tmp_path: Path) -> None:
    # Writes one after another, never idle: passive checkpoints alone never catch up with them,
    # and the WAL kept everything written (1.3 GB in 20 s of gateway load; ~250 MB/s here).
    path = tmp_path / "w.db"
    store = SqliteStore(str(path), synchronous="NORMAL", checkpoint_period=0.02, wal_restart_frames=256)
    await store.open()
    loop = asyncio.get_running_loop()
    written, sizes = 0, []
    try:
        start = loop.time()
        while loop.time() - start < 2.0:
            doc = {"colonyid": "c" * 64, "name": f"c{written}", "pad": "x" * 3000}  # a page or more each
            await store.write(lambda tx, doc=doc: tx.add_colony(doc))
            written += 1
            if written % 500 == 0:
                sizes.append(Path(f"{path}-wal").stat().st_size)
        restarts = store.wal_restarts
    finally:
        await store.close()
    assert restarts >= 1
    # After a restart the WAL holds a small part of what went through it (without, all of it).
    assert min(sizes[len(sizes) // 4:]) < written * 4096 / 8


async def test_a_wal_restart_leaves_the_database_to_this_process_alone(tmp_path: Path) -> None:
    # POSIX locks belong to a process, and closing any descriptor of a file drops all of them. The
    # checkpointer once fsynced the database through a descriptor of its own and closed it after
    # each WAL restart: the server's connections lost their lock on the database file, so the
    # next program to open it (`sqlite3 colonies.db .tables`, a backup) took itself for the last
    # connection when it closed, checkpointed and deleted the WAL under the running server, and
    # the server's next writes corrupted the database.
    path = tmp_path / "l.db"
    store = SqliteStore(str(path), synchronous="NORMAL", checkpoint_period=0.01, wal_restart_frames=64)
    await store.open()
    written = 0

    async def write_some(n: int) -> None:
        nonlocal written
        for _ in range(n):
            doc = {"colonyid": "c" * 64, "name": f"c{written}", "pad": "x" * 3000}
            await store.write(lambda tx, doc=doc: tx.add_colony(doc))
            written += 1
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while store.wal_restarts == 0 and loop.time() < deadline:
            await write_some(50)
        assert store.wal_restarts >= 1
        await asyncio.sleep(0.05)  # let that restart finish
        peek = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT count(*) FROM colonies').fetchall(); c.close()"
        subprocess.run([sys.executable, "-c", peek, str(path)], check=True, timeout=60)
        assert Path(f"{path}-wal").exists(), "another program's connection deleted the running server's WAL"
        await write_some(200)
    finally:
        await store.close()
    again = await _open(path)
    try:
        assert await again.read(lambda tx: tx.count_colonies()) == written
        assert await again.read(lambda tx: tx.c.execute("PRAGMA integrity_check").fetchall()) == [("ok",)]
    finally:
        await again.close()


async def test_one_store_at_a_time_on_a_database_file(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    first = await _open(path)
    try:
        second = SqliteStore(str(path))
        with pytest.raises(DatabaseInUse, match=rf"database {path} is in use by another colonies server \(pid {os.getpid()}\)"):
            await second.open()
        await first.write(lambda tx: tx.add_colony({"colonyid": "c" * 64, "name": "still"}))  # unharmed
    finally:
        await first.close()
    again = await _open(path)  # free once the first is closed
    assert await again.read(lambda tx: tx.get_colony("still")) is not None
    await again.close()


async def test_a_filesystem_without_flock_still_serves_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    import errno
    import fcntl

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    store = await _open(tmp_path / "nfs.db")
    try:
        await store.write(lambda tx: tx.add_colony({"colonyid": "c" * 64, "name": "ok"}))
    finally:
        await store.close()
    assert "a second server on it would not be refused" in caplog.text


async def test_a_store_that_fails_to_open_says_which_file_and_leaves_it_free(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an SQLite database" * 200)
    for _ in range(2):  # the second attempt fails the same way, not as "in use"
        with pytest.raises(StoreUnavailable, match=f"cannot open database {path}: file is not a database"):
            await SqliteStore(str(path)).open()
    (tmp_path / "afile").write_text("")
    with pytest.raises(StoreUnavailable, match=f"cannot open database {tmp_path}/afile/x.db: (File exists|Not a directory)"):
        await SqliteStore(str(tmp_path / "afile" / "x.db")).open()


async def test_acknowledged_writes_survive_reopen(tmp_path: Path) -> None:
    store = await _open(tmp_path / "p.db")
    await store.write(lambda tx: tx.add_colony({"colonyid": "c" * 64, "name": "kept"}))
    await store.close()
    again = await _open(tmp_path / "p.db")
    assert await again.read(lambda tx: tx.get_colony("kept")) == {"colonyid": "c" * 64, "name": "kept"}
    await again.close()


async def test_meta_and_sequences(tmp_path: Path) -> None:
    store = await _open(tmp_path / "m.db")
    assert await store.write(lambda tx: [tx.next_seq("n"), tx.next_seq("n")]) == [1, 2]
    await store.close()


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(f"sqlite:///{tmp_path / 'x.db'}"), SqliteStore)
    assert type(open_store("postgresql://localhost/db")).__name__ == "PostgresStore"  # connects on open()
    with pytest.raises(ValueError, match="unsupported"):
        open_store("mysql://x")
    with pytest.raises(ValueError):
        SqliteStore("x.db", synchronous="OFF")


def test_sqlite_tx_implements_the_tx_protocol(tmp_path: Path) -> None:
    import sqlite3

    from colonies_server.store import TxProtocol
    from colonies_server.store.sqlite_tx import SqliteTx

    conn = sqlite3.connect(tmp_path / "x.db")
    try:
        assert isinstance(SqliteTx(conn), TxProtocol)
    finally:
        conn.close()
