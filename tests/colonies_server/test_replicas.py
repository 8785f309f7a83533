"""Two server processes on one PostgreSQL database: wake-ups, exactly-once assignment, timer fail-over."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.colonies_server.conftest import Colony, Identity, Rpc, poll
from tests.harness.postgres import fresh_postgres
from tests.harness.server import ProcessServer, ServerHandle

LEADER_LINE = "this replica now runs the timers"


class Replicas:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.servers = [ProcessServer(db=url, log=tmp_path / f"replica{i}.log", args=["--log-level", "info"])
                        for i in range(2)]
        self.handles: list[ServerHandle] = []

    def start(self) -> None:
        # The first replica takes the timer lock before the second one exists: the test knows the leader.
        self.handles.append(self.servers[0].start())
        poll(lambda: self.log(0), lambda text: LEADER_LINE in text, timeout=20, what="replica 0 to lead")
        self.handles.append(self.servers[1].start())

    def log(self, i: int) -> str:
        path = self.servers[i].log
        assert path is not None
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    with fresh_postgres("cf_replicas") as url:
        r = Replicas(url, tmp_path)
        try:
            r.start()
            yield r
        finally:
            r.stop()


@pytest.fixture
def clients(replicas: Replicas) -> Iterator[list[Rpc]]:
    cs = [Rpc(h) for h in replicas.handles]
    yield cs
    for c in cs:
        c.close()


def _setup(clients: list[Rpc], executors: int) -> tuple[Colony, Identity, list[Identity]]:
    """A colony with a user (who submits) and approved executors."""
    a = clients[0]
    colony = a.add_colony()
    return colony, a.add_user(colony), [a.add_executor(colony) for _ in range(executors)]


def test_assign_on_one_replica_wakes_on_submit_to_the_other(clients: list[Rpc]) -> None:
    a, b = clients
    colony, user, (exe,) = _setup(clients, 1)
    assert b.assign(colony.name, exe.prvkey, timeout=0.2).status == 404
    for _ in range(3):
        with ThreadPoolExecutor(1) as pool:
            # 3 s < the 5 s fallback wake-up: only the NOTIFY from replica A can end this wait with work.
            waiting = pool.submit(b.assign, colony.name, exe.prvkey, 3)
            p = a.submit(colony.name, user.prvkey)
            reply = waiting.result(timeout=30)
        assert reply.status == 200, reply.describe()
        assert reply.payload["processid"] == p["processid"]
        b.ok({"msgtype": "closesuccessfulmsg", "processid": p["processid"], "out": []}, exe.prvkey)


def test_pubsub_on_one_replica_sees_a_close_on_the_other(clients: list[Rpc], replicas: Replicas) -> None:
    from pycolonies import Colonies

    a, b = clients
    colony, user, (exe,) = _setup(clients, 1)
    p = a.submit(colony.name, user.prvkey)
    pc = Colonies(replicas.handles[1].host, replicas.handles[1].port)
    process = pc.get_process(p["processid"], user.prvkey)
    assert a.assign(colony.name, exe.prvkey, timeout=5).status == 200
    with ThreadPoolExecutor(1) as pool:
        # Subscribed on replica B while the process is RUNNING; the close happens on replica A.
        waited = pool.submit(pc.wait, process, 20, user.prvkey)
        a.ok({"msgtype": "closesuccessfulmsg", "processid": p["processid"], "out": ["done"]}, exe.prvkey)
        done = waited.result(timeout=60)
    assert (done.state, done.processid) == (2, p["processid"])


def test_eight_executors_over_two_replicas_assign_each_process_exactly_once(clients: list[Rpc]) -> None:
    total = 1000
    colony, user, executors = _setup(clients, 8)
    with ThreadPoolExecutor(4) as pool:
        chunks = [range(i, total, 4) for i in range(4)]
        list(pool.map(lambda ch: [clients[n % 2].submit(colony.name, user.prvkey) for n in ch], chunks))
    assigned: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        rpc = Rpc(clients[i % 2].handle)  # executors 0,2,4,6 on replica A; 1,3,5,7 on replica B
        exe = executors[i]
        try:
            while True:
                reply = rpc.assign(colony.name, exe.prvkey, timeout=1)
                if reply.status == 404:
                    return
                assert reply.status == 200, reply.describe()
                pid = reply.payload["processid"]
                with lock:
                    assigned.append((pid, exe.name))
                rpc.ok({"msgtype": "closesuccessfulmsg", "processid": pid, "out": []}, exe.prvkey)
        finally:
            rpc.close()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    pids = [pid for pid, _ in assigned]
    assert len(pids) == total and len(set(pids)) == total
    per_replica = [sum(1 for _, name in assigned if name in {e.name for e in executors[r::2]}) for r in (0, 1)]
    assert all(n > 0 for n in per_replica), per_replica
    stats = clients[1].ok({"msgtype": "getcolonystatsmsg", "colonyname": colony.name}, user.prvkey)
    assert (stats["successfulprocesses"], stats["waitingprocesses"], stats["runningprocesses"]) == (total, 0, 0)


def test_kill_9_of_the_timer_replica_hands_the_timers_over(clients: list[Rpc], replicas: Replicas) -> None:
    a, b = clients
    colony, user, (exe,) = _setup(clients, 1)
    p = b.submit(colony.name, user.prvkey, maxexectime=1, maxretries=5)
    assert b.assign(colony.name, exe.prvkey, timeout=5).status == 200
    replicas.servers[0].kill()  # the leader (see Replicas.start); the executor never closes the process
    poll(lambda: replicas.log(1), lambda text: LEADER_LINE in text, timeout=30, what="replica 1 to take over")
    q = poll(lambda: b.get_process(p["processid"], user.prvkey), lambda q: q["retries"] >= 1, timeout=30,
             what="maxexectime re-assignment by the surviving replica")
    assert q["state"] in (0, 1)
    reply = b.assign(colony.name, exe.prvkey, timeout=10)
    assert reply.status == 200 and reply.payload["processid"] == p["processid"], reply.describe()


def test_a_lease_taken_on_one_replica_is_enforced_by_the_timer_replica(clients: list[Rpc]) -> None:
    a, b = clients  # replica A (clients[0]) runs the timers; the executor only ever talks to B
    colony, user, (dead, alive) = _setup(clients, 2)
    p = b.submit(colony.name, user.prvkey)
    b.ok({"msgtype": "executorheartbeatmsg", "colonyname": colony.name, "executorname": dead.name, "lease": 0.5},
         dead.prvkey)
    assert b.assign(colony.name, dead.prvkey, timeout=5).payload["processid"] == p["processid"]
    back = poll(lambda: a.get_process(p["processid"], user.prvkey), lambda q: q["state"] == 0, timeout=20,
                what="the timer replica to re-queue after the lease expired")
    assert back["retries"] == 1 and back["assignedexecutorid"] == ""
    taken = a.assign(colony.name, alive.prvkey, timeout=5)
    assert taken.status == 200 and taken.payload["processid"] == p["processid"], taken.describe()
