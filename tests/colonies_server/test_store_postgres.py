"""PostgresStore: concurrent migrations, SKIP LOCKED assignment, events after COMMIT, 503 while the DB is away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from colonies_server import lifecycle
from colonies_server.cluster import PAYLOAD_LIMIT, Cluster
from colonies_server.config import Settings
from colonies_server.errors import RPCError
from colonies_server.procs import new_process, normalize_spec
from colonies_server.runtime import Runtime
from colonies_server.store.postgres import PostgresStore
from colonies_server.store.postgres_schema import MIGRATIONS
from tests.colonies_server._rpc import Served
from tests.colonies_server.conftest import poll
from tests.harness.postgres import PG_ADMIN, fresh_postgres

T0 = 1_700_000_000 * 1_000_000_000


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_postgres() as u:
        yield u


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(url, pool_size=4)
    await s.open()
    yield s
    await s.close()


def _admin(sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        cur = conn.execute(sql, args or None)
        return cur.fetchall() if cur.description else []


def _proc(n: int, **spec: Any) -> dict[str, Any]:
    return new_process(normalize_spec({"conditions": {"colonyname": "dev", "executortype": "t"}, **spec}),
                       "i" * 64, "me", T0 + n)


async def test_replicas_migrating_at_once_agree_on_one_schema(url: str) -> None:
    stores = [PostgresStore(url, pool_size=1) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        versions = await stores[0].read(lambda tx: tx.c.execute("SELECT version FROM schema_migrations").fetchall())
        assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS) + 1))
        assert await stores[3].read(lambda tx: tx.get_meta("schema_version")) == str(len(MIGRATIONS))
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_concurrent_assigners_on_two_stores_never_share_a_process(url: str) -> None:
    a, b = PostgresStore(url, pool_size=4), PostgresStore(url, pool_size=4)
    await a.open()
    await b.open()
    try:
        procs = [_proc(n) for n in range(120)]
        await a.write(lambda tx: [tx.insert_process(p) for p in procs])
        ex = {"executorid": "e" * 64, "executortype": "t", "executorname": "x"}

        def assign(tx: Any) -> Any:
            p = lifecycle.assign_next(tx, "dev", ex, T0)
            return None if p is None else p["processid"]
        got = await asyncio.gather(*(s.write(assign) for _ in range(80) for s in (a, b)))
        ids = [g for g in got if g is not None]
        assert len(ids) == len(set(ids)) == 120
    finally:
        await a.close()
        await b.close()


async def test_events_only_after_commit_and_never_for_a_failed_write(store: PostgresStore) -> None:
    seen: list[tuple[Any, ...]] = []
    store.on_commit = seen.extend

    def bad(tx: Any) -> None:
        tx.add_colony({"name": "c", "colonyid": "x"})
        tx.emit("wake", "c", "t")
        raise RPCError(400, "no")
    with pytest.raises(RPCError):
        await store.write(bad)
    assert seen == [] and await store.read(lambda tx: tx.get_colony("c")) is None

    def good(tx: Any) -> None:
        tx.add_colony({"name": "c", "colonyid": "x"})
        tx.emit("wake", "c", "t")
    await store.write(good)
    assert seen == [("wake", "c", "t")]


async def test_dropped_connections_are_replaced_transparently(store: PostgresStore, url: str) -> None:
    await store.write(lambda tx: tx.add_colony({"name": "c", "colonyid": "x"}))
    db = url.rsplit("/", 1)[1]
    _admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", db)
    for _ in range(8):  # every pooled connection is dead; each is replaced on first use
        assert (await store.read(lambda tx: tx.get_colony("c")))["colonyid"] == "x"


async def test_a_database_that_is_not_there_at_start_is_refused_clearly(url: str) -> None:
    # Start-up, unlike a later outage, has nothing to serve: it fails with one line saying why.
    from colonies_server.store import StoreUnavailable
    from tests.harness.ports import free_port

    for missing in (f"postgresql://postgres@127.0.0.1:{free_port()}/x", url.rsplit("/", 1)[0] + "/no_such_db"):
        with pytest.raises(StoreUnavailable, match=r"^cannot open the PostgreSQL database: connection failed.*"
                                                   r"(Connection refused|no_such_db)"):
            await PostgresStore(missing, connect_timeout=2).open()


def test_unreachable_database_is_a_503_then_recovers(url: str) -> None:
    db = url.rsplit("/", 1)[1]
    s = Served(url, timer_period=3600, cron_period=3600)
    try:
        prv, _ = s.client.add_executor()
        _admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
        _admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", db)
        status, message = s.client.err({"msgtype": "getprocessesmsg", "colonyname": "dev", "count": 5, "state": 0},
                                       prv)
        assert status == 503 and "database unavailable" in message
        _admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        poll(lambda: s.client.raw({"msgtype": "getprocessesmsg", "colonyname": "dev", "count": 5, "state": 0},
                                  prv).status_code, lambda status: status == 200, timeout=20,
             what="the store to reconnect")
    finally:
        _admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        s.close()


def test_notify_payloads_stay_under_the_limit_and_big_documents_go_by_reference() -> None:
    rt = Runtime(settings=Settings(db="postgresql://x/y"), store=None)  # type: ignore[arg-type]
    cluster = Cluster(rt)
    small = [("process", _proc(n)) for n in range(40)]
    big = _proc(99, args=["x" * 20_000])
    payloads = cluster.encode([*small, ("wake", "dev", "t"), ("process", big)])
    assert len(payloads) > 1 and all(len(p.encode()) < PAYLOAD_LIMIT for p in payloads)
    assert all(p.startswith(cluster.origin + "\n") for p in payloads)
    body = "".join(p.partition("\n")[2] for p in payloads)
    assert big["processid"] in body and "x" * 100 not in body
