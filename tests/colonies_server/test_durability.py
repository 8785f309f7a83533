"""kill -9 under load: every submit the server acknowledged is still there after a restart on the same file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from tests.colonies_server.conftest import Rpc, envelope, poll
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ProcessServer, ServerHandle

N_SUBMITTERS = 4
KILL_AFTER = 150  # acknowledged submits before the kill


def test_acknowledged_submits_survive_kill_9(tmp_path: Path, db_url: str) -> None:
    db = db_url  # a fresh SQLite file or PostgreSQL database, once per backend
    first = ProcessServer(db=db, dev=True, log=tmp_path / "server-1.log")
    handle = first.start()
    acked: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def submitter(k: int) -> None:
        client = Rpc(handle, timeout=10)
        i = 0
        try:
            while not stop.is_set():
                i += 1
                try:
                    reply = client.submit(DEV_COLONY, DEV_PRVKEY, "cli", args=[k, i])
                except AssertionError as e:  # an error envelope: not acknowledged, but worth knowing
                    failures.append(str(e))
                    continue
                except Exception:  # the server died mid-request: not acknowledged
                    return
                with lock:
                    acked.append(reply["processid"])
        finally:
            client.close()

    threads = [threading.Thread(target=submitter, args=(k,), daemon=True, name=f"submit-{k}")
               for k in range(N_SUBMITTERS)]
    try:
        for t in threads:
            t.start()
        poll(lambda: len(acked), lambda n: n >= KILL_AFTER // 2, timeout=60, what="acknowledged submits")
        # Also acknowledged before the crash: one process closed, one running.
        control = Rpc(handle)
        try:
            finished = control.assign(DEV_COLONY, DEV_PRVKEY).payload["processid"]
            control.ok({"msgtype": "closesuccessfulmsg", "processid": finished, "out": ["kept"]}, DEV_PRVKEY)
            running = control.assign(DEV_COLONY, DEV_PRVKEY).payload["processid"]
        finally:
            control.close()
        poll(lambda: len(acked), lambda n: n >= KILL_AFTER, timeout=60, what=f"{KILL_AFTER} acknowledged submits")
        first.kill()  # SIGKILL while the submitters are still sending
    finally:
        stop.set()
        first.kill()
        for t in threads:
            t.join(15)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures[:3]
    assert len(set(acked)) == len(acked) >= KILL_AFTER

    second = ProcessServer(db=db, dev=True, log=tmp_path / "server-2.log")
    handle2 = second.start()
    client = Rpc(handle2)
    try:
        missing = []
        for pid in acked:
            reply = client.call({"msgtype": "getprocessmsg", "processid": pid}, DEV_PRVKEY)
            if reply.status != 200 or reply.error:
                missing.append((pid, reply.describe()))
            else:
                assert reply.payload["processid"] == pid
                assert reply.payload["state"] == {finished: 2, running: 1}.get(pid, 0), reply.payload
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged processes lost: {missing[:3]}"
        stats = client.ok({"msgtype": "getcolonystatsmsg", "colonyname": DEV_COLONY}, DEV_PRVKEY)
        assert stats["waitingprocesses"] >= len(acked) - 2 and stats["runningprocesses"] == 1
        assert client.get_process(finished, DEV_PRVKEY)["out"] == ["kept"]
        # The restarted server is fully usable: the running process can be closed by its executor, and the
        # dev executor can take one of the waiting survivors.
        client.ok({"msgtype": "closesuccessfulmsg", "processid": running, "out": []}, DEV_PRVKEY)
        taken = client.assign(DEV_COLONY, DEV_PRVKEY, timeout=-1)
        assert taken.status == 200, taken.describe()
        assert taken.payload["processid"] in set(acked) - {finished, running}
    finally:
        client.close()
        second.stop()


def test_silent_executor_lease_requeues_its_work(rpc: Rpc) -> None:
    """Extension (docs/SDK-API.md): an executor that heartbeats and then goes silent (killed) loses its work
    after `lease` seconds, without waiting for maxexectime; the old executor can no longer close it."""
    colony = rpc.add_colony()
    user = rpc.add_user(colony)
    dead, alive = rpc.add_executor(colony), rpc.add_executor(colony)
    process = rpc.submit(colony.name, user.prvkey)
    rpc.ok({"msgtype": "executorheartbeatmsg", "colonyname": colony.name, "executorname": dead.name,
            "lease": 0.5}, dead.prvkey)
    assert rpc.assign(colony.name, dead.prvkey).payload["processid"] == process["processid"]
    back = poll(lambda: rpc.get_process(process["processid"], user.prvkey), lambda p: p["state"] == 0,
                timeout=10, what="re-queue after the lease expired")
    assert back["retries"] == 1 and back["assignedexecutorid"] == "" and not back["isassigned"]
    taken = rpc.assign(colony.name, alive.prvkey)
    assert taken.status == 200 and taken.payload["processid"] == process["processid"], taken.describe()
    late = rpc.call({"msgtype": "closesuccessfulmsg", "processid": process["processid"], "out": []}, dead.prvkey)
    assert late.status == 403 and late.error, late.describe()
    rpc.ok({"msgtype": "closesuccessfulmsg", "processid": process["processid"], "out": ["ok"]}, alive.prvkey)


def test_disconnected_long_poll_takes_no_work(rpc: Rpc, module_server: ServerHandle) -> None:
    """A killed executor's parked assign must not swallow the next submit (docs/SERVER.md, Scheduler)."""
    colony = rpc.add_colony()
    user = rpc.add_user(colony)
    dead, alive = rpc.add_executor(colony), rpc.add_executor(colony)
    gone = threading.Event()

    def parked_then_killed() -> None:
        # The client gives up after 0.5 s and closes its connection, like a killed process would.
        with httpx.Client(timeout=0.5) as client:
            try:
                client.post(module_server.api, content=json.dumps(envelope(
                    {"msgtype": "assignprocessmsg", "colonyname": colony.name, "timeout": 30}, dead.prvkey)))
            except httpx.TimeoutException:
                pass
        gone.set()

    t = threading.Thread(target=parked_then_killed, daemon=True)
    t.start()
    assert gone.wait(15)
    t.join(5)
    process = rpc.submit(colony.name, user.prvkey)
    taken = rpc.assign(colony.name, alive.prvkey, timeout=5)
    assert taken.status == 200 and taken.payload["processid"] == process["processid"], (
        f"the process went elsewhere: {rpc.get_process(process['processid'], user.prvkey)}")
