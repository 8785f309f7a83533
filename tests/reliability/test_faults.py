"""Faults under a running load through the gateway: nothing accepted is lost, duplicated or answered wrongly.

Each test runs `echo(token, x)` calls through the gateway while it kills or stops one component,
then reads every stored process from the server's database and matches them with what each
client got (tests/reliability/load.py). The figures are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from sdk import ProcessState
from tests.harness.require import require
from tests.harness.unix import connected_on

from .conftest import FUNCTIONS as FUNCTIONS_FILE
from .figures import report
from .load import Load, tally, unfinished
from .pg import PrivatePostgres, pg_bin
from .stack import Stack, children_of, wait_until

NO_FAULTS = {"lost": 0, "duplicated": 0, "wrong": 0, "unclean": 0}


@pytest.fixture(scope="module")
def fault_stack(shared_stack: Stack) -> Stack:
    """One stack for the module: each test breaks it, and `_heal` makes it whole again afterwards."""
    return shared_stack


@pytest.fixture(autouse=True)
def _heal(fault_stack: Stack) -> Iterator[None]:
    yield
    fault_stack.heal()


def mine(load: Load, processes: list[dict]) -> list[dict]:
    """The processes of this load's invocations (the stack is shared by the module's tests)."""
    return [p for p in processes if (p.get("spec") or {}).get("kwargs", {}).get("token") in load.records]


def settle(stack: Stack, timeout: float = 150) -> list[dict]:
    """Every stored process of the colony once none is waiting or running any more."""
    return wait_until(lambda: (ps := stack.processes()) and unfinished(ps) == 0 and ps, timeout,
                      "every process to end")


def workers_of(pid: int) -> list[int]:
    """The worker processes of one executor: its children running the worker bootstrap."""
    found = []
    for kid in children_of(pid):
        try:
            cmdline = Path(f"/proc/{kid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-I" in cmdline and b"-c" in cmdline:
            found.append(kid)
    return found


def test_kill9_of_an_executor_and_its_workers_loses_nothing(fault_stack: Stack) -> None:
    stack = fault_stack
    load = Load(stack.url, concurrency=8, delay=0.2, tag="exkill").start()
    t0 = time.monotonic()
    try:
        load.wait_finished(30, timeout=60)
        victim = stack.executors["rel-executor-1"]
        killed_workers = len(workers_of(victim.pid))
        victim.kill9()  # the executor and its workers, mid-call
        killed_at = time.monotonic()
        # The survivor keeps serving; the server re-queues the dead one's calls when its lease ends.
        load.wait_finished(30, timeout=90)
        replacement = stack.start_executor("rel-executor-1")  # same name and key, as a supervisor does
        load.wait_finished(30, timeout=90)
        assert replacement.alive()
    finally:
        load.stop()
    processes = settle(stack)
    t = tally(load, processes)
    requeued = [p for p in mine(load, processes) if p["retries"] > 0]
    report("kill9_executor", sent=t.sent, accepted=t.accepted, failed=t.failed_answers, **t.bad(),
           requeued=len(requeued), workers_killed=killed_workers, max_latency_s=round(max(
               r.latency for r in load.records.values()), 2), seconds=round(time.monotonic() - t0, 1),
           killed_after_s=round(killed_at - t0, 1))
    assert t.bad() == NO_FAULTS, t.examples
    assert t.failed_answers == 0 and t.failed_processes == 0, t.errors_seen
    assert t.accepted == t.sent
    assert requeued, "the test should have killed the executor while it ran calls"


def test_kill9_of_worker_processes_fails_only_their_call_with_a_clear_error(fault_stack: Stack) -> None:
    stack = fault_stack
    load = Load(stack.url, concurrency=8, delay=0.3, tag="wkill").start()
    killed: list[int] = []
    try:
        load.wait_finished(20, timeout=60)
        for round_ in range(3):
            executor = stack.executors[f"rel-executor-{round_ % 2 + 1}"]
            workers = wait_until(lambda ex=executor: workers_of(ex.pid), 30, "a worker of the executor")
            os.kill(workers[0], signal.SIGKILL)
            killed.append(workers[0])
            load.wait_finished(15, timeout=60)
        assert all(ex.alive() for ex in stack.executors.values()), "an executor died with its worker"
    finally:
        load.stop()
    processes = settle(stack)
    t = tally(load, processes)
    crash_texts = [e for p in processes if p["state"] == ProcessState.FAILED for e in p.get("errors") or []]
    report("kill9_worker", sent=t.sent, accepted=t.accepted, workers_killed=len(killed),
           failed_answers=t.failed_answers, failed_processes=t.failed_processes, **t.bad(),
           error_texts=sorted({e.splitlines()[-1][:100] for e in crash_texts}))
    assert t.bad() == NO_FAULTS, t.examples
    assert t.accepted == t.sent
    # A worker killed mid-call fails that call (once) with a text saying so; an idle one fails nothing.
    assert t.failed_processes <= len(killed)
    assert all("worker crashed" in e or "killed" in e for e in crash_texts), crash_texts


def test_kill9_of_the_server_then_restart_on_the_same_database(fault_stack: Stack) -> None:
    stack = fault_stack
    load = Load(stack.url, concurrency=8, delay=0.1, retry_seconds=90, wait=5, tag="srvkill").start()
    t0 = time.monotonic()
    try:
        load.wait_finished(40, timeout=60)
        stack.server.kill9()
        down_at = time.monotonic()
        # Clients see the outage (503 from the gateway or a reset) and keep retrying.
        wait_until(lambda: any(s in ("503", "502") for s in load.errors_seen()), 30, "clients to see the outage")
        stack.restart_server()
        up_at = time.monotonic()
        load.wait_finished(60, timeout=150)
    finally:
        load.stop()
    processes = settle(stack)
    t = tally(load, processes)
    report("kill9_server", sent=t.sent, accepted=t.accepted, retried=t.retried, refused=t.refused,
           failed=t.failed_answers, **t.bad(), server_down_s=round(up_at - down_at, 1),
           errors_seen=t.errors_seen, requeued=sum(1 for p in mine(load, processes) if p["retries"] > 0),
           max_latency_s=round(max(r.latency for r in load.records.values()), 1),
           seconds=round(time.monotonic() - t0, 1))
    assert t.bad() == NO_FAULTS, t.examples
    assert t.refused == 0 and t.failed_answers == 0 and t.failed_processes == 0, t.errors_seen
    assert t.accepted == t.sent


def test_kill9_of_a_server_on_a_unix_socket_its_clients_come_back_through_it(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Gateway and executors reach the server through its Unix socket; after kill -9 the socket
    file is left behind, the restarted server replaces it, and the load goes on through it."""
    stack = Stack(tmp_path_factory.mktemp("unix-stack"), unix_socket=True)
    try:
        stack.start(deploy=FUNCTIONS_FILE)
        load = Load(stack.url, concurrency=8, delay=0.1, retry_seconds=90, wait=5, tag="udskill").start()
        try:
            load.wait_finished(30, timeout=60)
            stack.server.kill9()
            assert Path(stack.unix_socket).is_socket()  # stale: nobody accepts on it
            wait_until(lambda: any(s in ("503", "502") for s in load.errors_seen()), 30, "clients to see the outage")
            stack.restart_server()
            load.wait_finished(60, timeout=150)
        finally:
            load.stop()
        t = tally(load, settle(stack))
        report("kill9_server_unix_socket", sent=t.sent, accepted=t.accepted, retried=t.retried, refused=t.refused,
               failed=t.failed_answers, **t.bad(), errors_seen=t.errors_seen)
        assert t.bad() == NO_FAULTS, t.examples
        assert t.refused == 0 and t.failed_answers == 0 and t.failed_processes == 0, t.errors_seen
        assert t.accepted == t.sent
        # The gateway's and the executors' connections are on the socket (the server's ends of them).
        assert connected_on(stack.unix_socket) >= 3
    finally:
        stack.close()


def test_kill9_of_the_gateway_async_calls_survive_and_sync_callers_can_find_theirs(fault_stack: Stack) -> None:
    stack = fault_stack
    load = Load(stack.url, mode="mixed", concurrency=8, delay=0.5, max_calls=80, tag="gwkill").start()
    try:
        load.wait_finished(24, timeout=60)
        stack.gateway.kill9()
        # Every client in flight gets its answer (a connection error) and the load winds down.
        wait_until(lambda: sum(r.status == "refused" for r in load.records.values()) >= 2, 30,
                   "clients to see the dead gateway")
    finally:
        load.stop()
    processes = settle(stack)
    t = tally(load, processes)
    # The async calls accepted before the crash all ended successfully (tally counts them as lost otherwise).
    accepted_async = [r for r in load.records.values() if r.mode == "async" and r.processid]
    # A sync caller whose connection died holds no process id; it finds its invocation through the
    # server (the gateway is gone), by the arguments it sent.
    refused_sync = {r.token: r for r in load.records.values() if r.mode == "sync" and r.status == "refused"}
    found: dict[str, object] = {}
    with stack.client() as client:
        for state in (ProcessState.SUCCESS, ProcessState.FAILED):
            for p in client.get_processes(stack.colony, int(state), count=100) or []:
                token = p.spec.kwargs.get("token")
                if token in refused_sync:
                    found[token] = p
    stored_for_refused = {p["spec"]["kwargs"]["token"] for p in processes
                          if p["spec"]["kwargs"].get("token") in refused_sync}
    wrong_found = [tok for tok, p in found.items() if p.state != ProcessState.SUCCESS  # type: ignore[attr-defined]
                   or p.output != [{"token": tok, "sq": refused_sync[tok].x ** 2}]]  # type: ignore[attr-defined]
    stack.gateway.start()
    after = Load(stack.url, mode="mixed", concurrency=4, max_calls=20, tag="gwback").start()
    try:
        after.wait_finished(20, timeout=60)
    finally:
        after.stop()
    t_after = tally(after, settle(stack))
    report("kill9_gateway", sent=t.sent, accepted=t.accepted, accepted_async=len(accepted_async), **t.bad(),
           sync_connection_errors=len(refused_sync), sync_submitted_before_crash=len(stored_for_refused),
           found_via_server=len(found), after_restart_ok=t_after.answered + t_after.accepted - t_after.answered)
    assert t.bad() == NO_FAULTS, t.examples
    assert accepted_async, "the test should have accepted async calls before the crash"
    assert set(found) == stored_for_refused and not wrong_found
    assert t_after.bad() == NO_FAULTS and t_after.accepted == 20, t_after.examples


def test_s3_down_cached_functions_keep_working_deploy_fails_clearly_then_recovers(
        fault_stack: Stack, tmp_path: Path) -> None:
    stack = fault_stack
    warm = Load(stack.url, concurrency=8, max_calls=40, tag="warm").start()
    try:
        warm.wait_finished(40, timeout=60)
    finally:
        warm.stop()
    executors_used = {p["assignedexecutorid"] for p in mine(warm, settle(stack))}
    assert len(executors_used) == 2, "both executors should have cached echo before S3 goes away"

    load = Load(stack.url, concurrency=8, tag="s3down").start()
    newfn = tmp_path / "late.py"
    newfn.write_text("def late(x: int) -> int:\n    return x + 1\n")
    try:
        load.wait_finished(20, timeout=60)
        stack.weed.stop()
        down_at = time.monotonic()
        load.wait_finished(60, timeout=90)
        refused_deploy = stack.deploy(newfn, check=False)
        load.wait_finished(20, timeout=60)
        stack.weed.start()
        up_s = time.monotonic() - down_at
        load.wait_finished(20, timeout=60)
    finally:
        load.stop()
    t = tally(load, settle(stack))
    deployed = stack.deploy(newfn)
    late = httpx.get(f"{stack.url}/function/late", params={"x": 41}, timeout=60)
    message = (refused_deploy.stderr.strip().splitlines() or [""])[-1]
    report("s3_down", sent=t.sent, accepted=t.accepted, failed=t.failed_answers, **t.bad(), s3_down_s=round(up_s, 1),
           deploy_exit=refused_deploy.returncode, deploy_message=message[:200])
    assert t.bad() == NO_FAULTS, t.examples
    assert t.failed_answers == 0 and t.accepted == t.sent, t.errors_seen
    assert refused_deploy.returncode != 0
    assert message.startswith("faas: ") and str(stack.weed.server.port) in message, refused_deploy.stderr
    assert "Traceback" not in refused_deploy.stderr
    assert "new" in deployed.stdout
    assert late.status_code == 200 and late.json()["result"] == 42, late.text


def test_a_result_computed_while_the_server_is_down_is_delivered_once_it_is_back(fault_stack: Stack) -> None:
    """The executor must not drop a finished call's result because the server was briefly away.

    The call runs while the server is killed; once the server is back on the same database the
    result must be delivered — not thrown away and the function run a second time when
    maxexectime re-queues the process (retries > 0).
    """
    stack = fault_stack
    from sdk import FuncSpec

    stack.deploy(FUNCTIONS_FILE, "--function", "once", "--timeout", "20")
    # The call must still be running when the server dies: 6 s leaves room for a loaded machine
    # between "RUNNING" being seen and the kill.
    spec = FuncSpec.model_validate({"funcname": "once", "kwargs": {"token": "t-once", "delay": 6.0},
                                    "maxexectime": 25, "maxretries": 3,
                                    "conditions": {"colonyname": stack.colony, "executortype": "faas-executor"}})
    logs = {name: len(ex.tail(10**9)) for name, ex in stack.executors.items()}

    def new_lines() -> str:
        return "".join(ex.tail(10**9)[logs[name]:] for name, ex in stack.executors.items())

    with stack.client() as client:
        pid = client.submit(spec).processid
        # Running means the function itself is executing (its first output line reached the
        # server), not just assigned: before that the executor may still need the server to fetch it.
        wait_until(lambda: any("started t-once" in entry.message
                               for entry in client.get_logs(stack.colony, processid=pid)),
                   30, "the function to start running")
    stack.server.kill9()
    assert f"process {pid[:12]} once" not in new_lines(), "the call ended before the server was killed"
    # The executor reports on the process once the call has ended (whatever it then does with it).
    try:
        wait_until(lambda: f"closing process {pid[:12]}" in new_lines(), 40,
                   "the executor to finish the call while the server is down")
    except AssertionError as e:
        raise AssertionError(f"{e}; executor output since the call was submitted:\n{new_lines()[-4000:]}") from None
    stack.restart_server()
    with stack.client() as client:
        done = wait_until(lambda: (p := client.get_process(pid)).state in (ProcessState.SUCCESS, ProcessState.FAILED)
                          and p, 60, "the process to end")
    report("result_during_server_outage", state=int(done.state), retries=done.retries, output=done.output)
    assert done.state == ProcessState.SUCCESS and done.output == ["t-once"]
    assert done.retries == 0, (
        "the result computed while the server was down was dropped by the executor; the process stayed "
        f"RUNNING until maxexectime re-queued it and the function ran again (retries={done.retries})")


def test_a_call_given_to_a_worker_that_died_while_idle_runs_on_a_fresh_one(fault_stack: Stack) -> None:
    """A warm worker can die between calls (OOM killer, an operator's kill). The next call it is
    handed never started, so it must run on a fresh worker instead of failing."""
    stack = fault_stack
    warm = Load(stack.url, concurrency=4, max_calls=16, delay=0.2, tag="idlewarm").start()
    try:
        warm.wait_finished(16, timeout=60)
    finally:
        warm.stop()
    settle(stack)
    idle = [w for ex in stack.executors.values() for w in workers_of(ex.pid)]
    assert idle, "the warm-up should have left idle workers"
    for pid in idle:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(Path(f"/proc/{pid}/cmdline").exists() and Path(f"/proc/{pid}/cmdline").read_bytes()
                               for pid in idle), 10, "the killed workers to be gone")
    load = Load(stack.url, concurrency=4, max_calls=16, tag="idlekill").start()
    try:
        load.wait_finished(16, timeout=60)
    finally:
        load.stop()
    t = tally(load, settle(stack))
    report("kill9_idle_workers", idle_workers_killed=len(idle), sent=t.sent, ok=t.answered,
           failed=t.failed_answers, **t.bad(),
           errors=sorted({s[:90] for r in load.records.values() for s in r.seen}))
    assert t.bad() == NO_FAULTS, t.examples
    assert t.failed_answers == 0, (
        f"{t.failed_answers} of {t.sent} calls failed only because the idle worker they were given had died: "
        f"{sorted({s[:90] for r in load.records.values() for s in r.seen})}")


def test_postgresql_restarted_under_load_loses_nothing(make_stack: Callable[..., Stack]) -> None:
    """The server on PostgreSQL (a private cluster, not the machine's shared one) while PostgreSQL
    is stopped like a crash (`pg_ctl -m immediate`) and started again."""
    require(pg_bin(), "PostgreSQL binaries (initdb, pg_ctl) and root", "apt-get install postgresql")
    pg = PrivatePostgres().init()
    try:
        stack = make_stack(db=pg.url)
        load = Load(stack.url, concurrency=8, delay=0.1, retry_seconds=90, wait=5, tag="pgrestart").start()
        try:
            load.wait_finished(40, timeout=60)
            t_down = time.monotonic()
            pg.stop("immediate")
            # Down until the clients notice (the gateway answers 502/503 and they retry).
            wait_until(lambda: any(s in ("502", "503") for s in load.errors_seen()), 30,
                       "clients to see the database outage")
            pg.start()
            down_s = time.monotonic() - t_down
            load.wait_finished(60, timeout=120)
        finally:
            load.stop()
        processes = settle(stack)
        t = tally(load, processes)
        report("postgres_restart", sent=t.sent, accepted=t.accepted, retried=t.retried, refused=t.refused,
               failed=t.failed_answers, **t.bad(), postgres_down_s=round(down_s, 1), errors_seen=t.errors_seen,
               requeued=sum(1 for p in mine(load, processes) if p["retries"] > 0))
        assert t.bad() == NO_FAULTS, t.examples
        assert t.refused == 0 and t.failed_answers == 0, t.errors_seen
        assert t.accepted == t.sent
        assert stack.server.alive(), "the server must survive its database restarting"
    finally:
        pg.close()
