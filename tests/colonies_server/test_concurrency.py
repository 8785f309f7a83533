"""20 executors long-polling while 1,000 processes are submitted: each is assigned exactly once and closed."""

from __future__ import annotations

import threading
from collections import Counter

from tests.colonies_server.conftest import Identity, Rpc, funcspec, poll
from tests.harness.server import ServerHandle

N_EXECUTORS = 20
N_SUBMITTERS = 4
N_PROCESSES = 1000


def test_many_executors_many_processes(module_server: ServerHandle, rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user = rpc.add_user(colony)
    executors = [rpc.add_executor(colony, "cli") for _ in range(N_EXECUTORS)]
    stop = threading.Event()
    lock = threading.Lock()
    submitted: list[str] = []
    assigned: list[tuple[str, str]] = []  # (processid, executor id)
    closed: list[str] = []
    errors: list[str] = []

    def executor(ident: Identity) -> None:
        client = Rpc(module_server)
        try:
            while not stop.is_set():
                reply = client.assign(colony.name, ident.prvkey, timeout=1)
                if reply.status == 404:
                    continue
                if reply.status != 200 or reply.error:
                    errors.append(f"assign by {ident.name}: {reply.describe()}")
                    continue
                pid = reply.payload["processid"]
                with lock:
                    assigned.append((pid, ident.id))
                done = client.call({"msgtype": "closesuccessfulmsg", "processid": pid, "out": [ident.name]},
                                   ident.prvkey)
                if done.status != 200 or done.error:
                    errors.append(f"close {pid} by {ident.name}: {done.describe()}")
                    continue
                with lock:
                    closed.append(pid)
        except Exception as e:  # reported by the main thread
            errors.append(f"executor {ident.name} crashed: {e!r}")
        finally:
            client.close()

    def submitter(n: int, k: int) -> None:
        client = Rpc(module_server)
        try:
            for i in range(n):
                process = client.submit(colony.name, user.prvkey, "cli", args=[k, i])
                with lock:
                    submitted.append(process["processid"])
        except Exception as e:
            errors.append(f"submitter {k} crashed: {e!r}")
        finally:
            client.close()

    workers = [threading.Thread(target=executor, args=(e,), daemon=True, name=f"exe-{i}")
               for i, e in enumerate(executors)]
    submitters = [threading.Thread(target=submitter, args=(N_PROCESSES // N_SUBMITTERS, k), daemon=True,
                                   name=f"submit-{k}") for k in range(N_SUBMITTERS)]
    try:
        for t in workers + submitters:
            t.start()
        for t in submitters:
            t.join(120)
        assert not any(t.is_alive() for t in submitters), "submitters did not finish"
        assert not errors, errors[:5]
        assert len(submitted) == N_PROCESSES
        poll(lambda: len(closed), lambda n: n >= N_PROCESSES or bool(errors), timeout=120, interval=0.1,
             what="every process closed")
    finally:
        stop.set()
        for t in workers:
            t.join(15)
    assert not any(t.is_alive() for t in workers), "executors did not stop"
    assert not errors, errors[:5]

    times_assigned = Counter(pid for pid, _ in assigned)
    assert [pid for pid, n in times_assigned.items() if n > 1] == [], "assigned more than once"
    assert set(times_assigned) == set(submitted), "assigned processes differ from submitted ones"
    assert sorted(closed) == sorted(submitted)
    # Work was spread over the executors (long-polls really wait in parallel).
    assert len({exe for _, exe in assigned}) > 1

    stats = rpc.ok({"msgtype": "getcolonystatsmsg", "colonyname": colony.name}, user.prvkey)
    assert (stats["waitingprocesses"], stats["runningprocesses"], stats["successfulprocesses"],
            stats["failedprocesses"]) == (0, 0, N_PROCESSES, 0)
    for state in (0, 1, 3):
        assert rpc.ok({"msgtype": "getprocessesmsg", "colonyname": colony.name, "count": 100, "state": state},
                      user.prvkey) is None
    listed = rpc.ok({"msgtype": "getprocessesmsg", "colonyname": colony.name, "count": 100, "state": 2},
                    user.prvkey)
    assert len(listed) == 100 and {p["state"] for p in listed} == {2}
    by_exe = dict(assigned)
    for pid in submitted:
        process = rpc.get_process(pid, user.prvkey)
        assert process["state"] == 2 and process["assignedexecutorid"] == by_exe[pid], pid
        assert len(process["out"]) == 1


FAN = 30


def test_fan_out_fan_in_workflow_with_parallel_executors(module_server: ServerHandle, rpc: Rpc) -> None:
    """root → FAN middle nodes → join, run by 10 executors at once: the join runs once, after all middles,
    with their outputs concatenated in its parents' order; the graph ends SUCCESS."""
    colony = rpc.add_colony()
    user = rpc.add_user(colony)
    executors = [rpc.add_executor(colony, "cli") for _ in range(10)]
    middles = [f"m{i:02d}" for i in range(FAN)]
    specs = [funcspec(colony.name, "cli", "root")]
    specs += [funcspec(colony.name, "cli", m, dependencies=["root"]) for m in middles]
    specs.append(funcspec(colony.name, "cli", "join", dependencies=middles))
    graph = rpc.ok({"msgtype": "submitworkflowspecmsg", "spec": {"colonyname": colony.name, "functionspecs": specs}},
                   user.prvkey)
    lock = threading.Lock()
    ran: list[str] = []
    join_input: list[object] = []
    errors: list[str] = []
    stop = threading.Event()

    def executor(ident: Identity) -> None:
        client = Rpc(module_server)
        try:
            while not stop.is_set():
                reply = client.assign(colony.name, ident.prvkey, timeout=1)
                if reply.status == 404:
                    continue
                if reply.status != 200:
                    errors.append(reply.describe())
                    continue
                p = reply.payload
                name = p["spec"]["nodename"]
                with lock:
                    ran.append(name)
                    if name == "join":
                        join_input.extend(p["in"])
                done = client.call({"msgtype": "closesuccessfulmsg", "processid": p["processid"], "out": [name]},
                                   ident.prvkey)
                if done.status != 200:
                    errors.append(done.describe())
        except Exception as e:
            errors.append(repr(e))
        finally:
            client.close()

    threads = [threading.Thread(target=executor, args=(e,), daemon=True) for e in executors]
    try:
        for t in threads:
            t.start()
        final = poll(lambda: rpc.ok({"msgtype": "getprocessgraphmsg", "processgraphid": graph["processgraphid"]},
                                    user.prvkey), lambda g: g["state"] in (2, 3) or bool(errors), timeout=60,
                     what="the workflow to finish")
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not errors, errors[:3]
    assert final["state"] == 2
    assert Counter(ran) == Counter(["root", "join", *middles])
    assert ran[0] == "root" and ran[-1] == "join"
    join = next(pid for pid in graph["processids"]
                if rpc.get_process(pid, user.prvkey)["spec"]["nodename"] == "join")
    parents = rpc.get_process(join, user.prvkey)["parents"]
    expected = [rpc.get_process(pid, user.prvkey)["out"][0] for pid in parents]
    assert sorted(expected) == sorted(middles)
    assert join_input == expected
