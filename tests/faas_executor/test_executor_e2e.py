"""The executor against our real server and a real S3 (weed): deploy, call, fail, logs, nested, drain."""

from __future__ import annotations

import base64
import json
import random
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from faas_executor.config import ExecutorSettings
from faas_executor.executor import Executor
from faas_executor.pool import PoolSettings
from sdk import Conditions, FuncSpec, ProcessState, S3Config, S3Store
from sdk.cfs import REVISION_ENV
from sdk.client import Colonies
from tests.faas_executor.conftest import bundle_bytes
from tests.harness.s3 import S3Server
from tests.harness.server import COLONY_PRVKEY, DEV_COLONY, DEV_PRVKEY, ServerHandle


@dataclass
class Stack:
    client: Colonies
    executor: Executor
    thread: threading.Thread

    def deploy(self, name: str, code: str, requirements: list[str] | None = None, **limits: object) -> None:
        self.client.upload_bytes(DEV_COLONY, "/faas", name, bundle_bytes(name, textwrap.dedent(code), limits=limits,
                                                                         requirements=requirements))

    def submit(self, funcname: str, *args: object, env: dict[str, str] | None = None, **kwargs: object) -> str:
        spec = FuncSpec(funcname=funcname, args=list(args), kwargs=kwargs or None, maxexectime=60,
                        conditions=Conditions(colonyname=DEV_COLONY, executortype="faas-executor"),
                        env=env or {})
        return self.client.submit(spec).processid

    def result(self, pid: str) -> tuple[ProcessState, list[object], list[str]]:
        p = self.client.wait(pid, 60)
        return p.state, list(p.output), list(p.errors)


def _client(server: ServerHandle, s3: S3Server) -> Colonies:
    store = S3Store(S3Config(endpoint=s3.endpoint, accesskey=s3.access_key, secretkey=s3.secret_key,
                             bucket=s3.bucket, region=s3.region))
    return Colonies(server.host, server.port, prvkey=DEV_PRVKEY, store=store)


@pytest.fixture
def stack(server: ServerHandle, s3_server: S3Server, tmp_path: Path) -> Iterator[Stack]:
    client = _client(server, s3_server)
    settings = ExecutorSettings(
        colonyname=DEV_COLONY, executorname="faas-e2e", colony_prvkey=COLONY_PRVKEY, concurrency=2,
        assign_timeout=1.0, lease=4.0, state_dir=str(tmp_path / "state"),
        pool=PoolSettings(scratch_root=str(tmp_path / "scratch"), size=2, uid_base=64600))
    executor = Executor(settings, _client(server, s3_server))
    thread = threading.Thread(target=executor.run, name="executor-under-test")
    thread.start()
    try:
        yield Stack(client, executor, thread)
    finally:
        executor.request_stop()
        thread.join(timeout=60)
        executor.client.close_connections()
        client.close_connections()


def test_deployed_function_is_called_and_failures_carry_the_traceback(stack: Stack) -> None:
    stack.deploy("convert", """
        def convert(celsius):
            print("converting", celsius)
            return celsius * 9 / 5 + 32
    """)
    stack.deploy("boom", """
        def boom():
            raise RuntimeError("no good")
    """)
    ok = stack.submit("convert", 21.0)
    bad = stack.submit("boom")
    missing = stack.submit("nothere")
    assert stack.result(ok) == (ProcessState.SUCCESS, [pytest.approx(69.8)], [])
    state, _, errors = stack.result(bad)
    assert state == ProcessState.FAILED
    assert "Traceback" in errors[0] and errors[0].rstrip().endswith("RuntimeError: no good")
    state, _, errors = stack.result(missing)
    assert state == ProcessState.FAILED and "'nothere' is not deployed" in errors[0]
    logs = stack.client.get_logs(DEV_COLONY, processid=ok)
    assert "converting 21.0\n" in "".join(log.message for log in logs)


def test_tutorial_form_runs_a_bare_source_file(stack: Stack) -> None:
    source = "def convert(celsius):\n    return (celsius * 9/5) + 32\n"
    stack.client.upload_bytes(DEV_COLONY, "/faas", "convert", source.encode())
    pid = stack.submit("execute", function="convert", arg="21")
    assert stack.result(pid) == (ProcessState.SUCCESS, [pytest.approx(69.8)], [])


def test_a_new_deploy_is_picked_up_on_the_next_call(stack: Stack) -> None:
    stack.deploy("ver", "def ver():\n    return 1\n")
    assert stack.result(stack.submit("ver"))[1] == [1]
    stack.deploy("ver", "def ver():\n    return 2\n")
    assert stack.result(stack.submit("ver"))[1] == [2]
    assert stack.executor.cache.fetches == 2


def test_a_revision_hint_skips_the_lookup_only_for_the_revision_last_seen_newest(stack: Stack) -> None:
    stack.deploy("ver", "def ver():\n    return 1\n")
    old = stack.client.get_file(DEV_COLONY, "/faas", "ver")[0].checksum
    assert stack.result(stack.submit("ver", env={REVISION_ENV: old}))[1] == [1]
    stack.deploy("ver", "def ver():\n    return 2\n")
    new = stack.client.get_file(DEV_COLONY, "/faas", "ver")[0].checksum
    # The caller bound this call to the old revision and the executor has not heard of another:
    # it runs what the caller saw, without asking (how the gateway's cached revision is honoured).
    assert stack.result(stack.submit("ver", env={REVISION_ENV: old}))[1] == [1]
    # A hint it has not seen named newest (here the new one) or no hint: the server is asked.
    assert stack.result(stack.submit("ver", env={REVISION_ENV: new}))[1] == [2]
    assert stack.result(stack.submit("ver", env={REVISION_ENV: old}))[1] == [2]  # stale: ignored now
    assert stack.result(stack.submit("ver", env={REVISION_ENV: "ab" * 32}))[1] == [2]
    assert stack.result(stack.submit("ver"))[1] == [2]


def test_a_function_calls_another_through_its_executor(stack: Stack) -> None:
    stack.deploy("double", "def double(x):\n    return 2 * x\n")
    stack.deploy("outer", """
        from faas_executor.api import call
        def outer(x):
            return call("double", x) + 1
    """)
    assert stack.result(stack.submit("outer", 20)) == (ProcessState.SUCCESS, [41], [])


def test_stop_drains_running_calls_then_unregisters(stack: Stack) -> None:
    # The call spins until a file appears in its scratch dir; we stop the executor while it runs.
    stack.deploy("slow", """
        import os
        def slow():
            print("started")
            while not os.path.exists("go"):
                pass
            return "finished"
    """)
    pid = stack.submit("slow")
    # Wait for the condition "its first line reached the server" (polled: logs have no push).
    poll = threading.Event()
    for _ in range(1200):
        if stack.client.get_logs(DEV_COLONY, processid=pid):
            break
        poll.wait(0.05)
    else:
        pytest.fail("the call never started")
    stack.executor.request_stop()
    # Drain for longer than the 4 s lease: heartbeats go on, so the server must not re-queue it.
    beats = stack.executor.heartbeats
    assert _until(lambda: stack.executor.heartbeats >= beats + 4)
    running = stack.client.get_process(pid)
    assert running.state == ProcessState.RUNNING and running.assignedexecutorid == stack.executor.executorid
    worker = next(iter(stack.executor.pool.workers().values()))
    (Path(worker.policy.scratch) / "call" / "go").touch()
    stack.thread.join(timeout=60)
    assert not stack.thread.is_alive()
    assert stack.result(pid) == (ProcessState.SUCCESS, ["finished"], [])
    executor = stack.client.get_executor(DEV_COLONY, "faas-e2e")
    assert executor.state == 3  # UNREGISTERED


def test_faas_executor_start_serves_and_drains_on_sigterm(server: ServerHandle, s3_server: S3Server,
                                                          tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, **s3_server.env(), "COLONIES_SERVER_HOST": server.host,
           "COLONIES_SERVER_PORT": str(server.port), "COLONIES_SERVER_TLS": "false",
           "COLONIES_COLONY_NAME": DEV_COLONY, "COLONIES_COLONY_PRVKEY": COLONY_PRVKEY}
    client = _client(server, s3_server)
    client.upload_bytes(DEV_COLONY, "/faas", "convert",
                        bundle_bytes("convert", "def convert(c):\n    return c * 9 / 5 + 32\n"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "faas_executor", "start", "--concurrency", "1", "--name", "faas-cli",
         "--assign-timeout", "1", "--state-dir", str(tmp_path / "state"), "--uid-base", "64650"],
        env=env, stderr=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parents[2]))
    try:
        assert proc.stderr is not None
        lines = []
        while not any("sandbox:" in line for line in lines):
            line = proc.stderr.readline()
            assert line, "executor exited: " + "".join(lines)
            lines.append(line)
        spec = FuncSpec(funcname="convert", args=[21.0], maxexectime=60,
                        conditions=Conditions(colonyname=DEV_COLONY, executortype="faas-executor"))
        done = client.wait(client.submit(spec).processid, 60)
        assert (done.state, done.output) == (ProcessState.SUCCESS, [pytest.approx(69.8)])
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(lines) + rest
        assert "unregistered" in rest
        assert client.get_executor(DEV_COLONY, "faas-cli").state == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        client.close_connections()


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll a condition that has no event to wait on (server state, /proc) until it holds."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if condition():
            return True
        tick.wait(0.05)
    return condition()


def test_kill_9_of_the_executor_requeues_its_call_by_lease_and_kills_its_workers(
        server: ServerHandle, s3_server: S3Server, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, **s3_server.env(), "COLONIES_SERVER_HOST": server.host,
           "COLONIES_SERVER_PORT": str(server.port), "COLONIES_SERVER_TLS": "false",
           "COLONIES_COLONY_NAME": DEV_COLONY, "COLONIES_COLONY_PRVKEY": COLONY_PRVKEY}
    uid_base = random.randrange(64700, 65400, 10)  # clear of other test runs on the machine
    client = _client(server, s3_server)
    client.upload_bytes(DEV_COLONY, "/faas", "spin", bundle_bytes("spin", textwrap.dedent("""
        def spin():
            print("started")
            while True:
                pass
    """)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "faas_executor", "start", "--concurrency", "1", "--name", "faas-k9",
         "--assign-timeout", "1", "--lease", "2", "--state-dir", str(tmp_path / "state"),
         "--uid-base", str(uid_base)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        spec = FuncSpec(funcname="spin", maxexectime=600, maxretries=3,
                        conditions=Conditions(colonyname=DEV_COLONY, executortype="faas-executor"))
        pid = client.submit(spec).processid
        assert _until(lambda: bool(client.get_logs(DEV_COLONY, processid=pid)))
        worker_uids = range(uid_base, uid_base + 5)  # its lease starts at the first free uid
        assert _until(lambda: bool(_live_processes(worker_uids)))
        proc.kill()
        proc.wait(timeout=10)
        # Silent for longer than its 2 s lease: the server puts the call back in the queue (well
        # before maxexectime), and the orphaned worker notices its lifeline closed and exits.
        assert _until(lambda: client.get_process(pid).state == ProcessState.WAITING)
        assert _until(lambda: not _live_processes(worker_uids))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        client.close_connections()


def _live_processes(uids: range) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_refused_registration_raises_and_leaves_nothing_behind(server: ServerHandle, tmp_path: Path) -> None:
    from sdk import ForbiddenError

    settings = ExecutorSettings(
        colonyname=DEV_COLONY, executorname="faas-refused", colony_prvkey=DEV_PRVKEY,  # not the colony key
        state_dir=str(tmp_path / "state"),
        pool=PoolSettings(scratch_root=str(tmp_path / "scratch"), size=1, uid_base=64600))
    with Colonies(server.host, server.port) as client:
        executor = Executor(settings, client)
        with pytest.raises(ForbiddenError):
            executor.run()
    assert not (tmp_path / "scratch").exists()
    assert not executor.pool.workers()


def test_nested_calls_under_load_do_not_deadlock(stack: Stack) -> None:
    # More outer calls than the executor has slots: each one holds a slot while its nested call
    # runs, so a nested call queued behind the others on the server would never be served.
    stack.deploy("double", """
        def double(x):
            print("doubling", x)
            return 2 * x
    """)
    stack.deploy("outer", """
        from faas_executor.api import call
        def outer(x):
            return call("double", x) + 1
    """)
    pids = [stack.submit("outer", n) for n in range(6)]
    assert [stack.result(p) for p in pids] == [(ProcessState.SUCCESS, [2 * n + 1], []) for n in range(6)]
    logs = "".join(log.message for log in stack.client.get_logs(DEV_COLONY, processid=pids[3]))
    assert "[double] doubling 3\n" in logs


@contextmanager
def one_worker_executors(server: ServerHandle, s3: S3Server, tmp_path: Path, count: int,
                         prefetch: int = 2) -> Iterator[tuple[Colonies, list[Executor]]]:
    """`count` running executors of one worker each (concurrency 1), and a client."""
    client = _client(server, s3)
    executors = []
    for i in range(count):
        settings = ExecutorSettings(
            colonyname=DEV_COLONY, executorname=f"faas-h{i}", colony_prvkey=COLONY_PRVKEY, concurrency=1,
            prefetch=prefetch, assign_timeout=1.0, state_dir=str(tmp_path / f"state{i}"),
            pool=PoolSettings(scratch_root=str(tmp_path / f"scratch{i}"), size=1, uid_base=64600 + 10 * i))
        executors.append(Executor(settings, _client(server, s3)))
    threads = [threading.Thread(target=e.run, name=f"executor-{i}") for i, e in enumerate(executors)]
    for t in threads:
        t.start()
    try:
        yield client, executors
    finally:
        for e in executors:
            e.request_stop()
        for t in threads:
            t.join(timeout=60)
        for e in executors:
            e.client.close_connections()
        client.close_connections()


def test_two_executors_share_one_colony(server: ServerHandle, s3_server: S3Server, tmp_path: Path) -> None:
    with one_worker_executors(server, s3_server, tmp_path, 2) as (client, executors):
        stack = Stack(client, executors[0], threading.current_thread())
        stack.deploy("double", "def double(x):\n    return 2 * x\n")
        pids = [stack.submit("double", n) for n in range(10)]
        assert [stack.result(p) for p in pids] == [(ProcessState.SUCCESS, [2 * n], []) for n in range(10)]
        assert sum(e.calls for e in executors) == 10


def test_prefetch_holds_the_next_call_while_calls_are_short(server: ServerHandle, s3_server: S3Server,
                                                            tmp_path: Path) -> None:
    with one_worker_executors(server, s3_server, tmp_path, 1, prefetch=1) as (client, (executor,)):
        stack = Stack(client, executor, threading.current_thread())
        stack.deploy("tick", "import time\ndef tick(n):\n    time.sleep(0.01)\n    return n\n")
        pids = [stack.submit("tick", n) for n in range(60)]
        assert [stack.result(p) for p in pids] == [(ProcessState.SUCCESS, [n], []) for n in range(60)]
        # One worker, and a second call taken while it ran: the worker never waited on the server.
        assert executor.held_peak == 2
        assert executor.calls == 60


def test_under_load_several_calls_share_a_message_to_the_server(server: ServerHandle, s3_server: S3Server,
                                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The courier (courier.py): with the workers busy on short calls, finished calls are closed
    several to a message that also takes as many new ones; every result still arrives, once. The
    executor's connections are bound to its identity (the "sessions" extension): its closes and
    assigns carry no signature."""
    from sdk import envelope as sdk_envelope

    signed: list[str] = []
    real_sign = sdk_envelope.sign
    monkeypatch.setattr(sdk_envelope, "sign", lambda payload, key: signed.append(payload) or real_sign(payload, key))
    with one_worker_executors(server, s3_server, tmp_path, 1, prefetch=4) as (client, (executor,)):
        stack = Stack(client, executor, threading.current_thread())
        # Calls of well under the courier's linger (2 ms): several end while one message is out.
        stack.deploy("tick", "def tick(n):\n    return n\n")
        pids = [stack.submit("tick", n) for n in range(120)]
        assert [stack.result(p) for p in pids] == [(ProcessState.SUCCESS, [n], []) for n in range(120)]
        assert executor.calls == 120
        assert executor.courier is not None  # our server names "closeandassignbatch"
        assert executor.courier.tickets > executor.courier.messages > 0, (
            executor.courier.tickets, executor.courier.messages)
        assert executor.rpc.sessions
        kinds = [json.loads(base64.b64decode(payload))["msgtype"] for payload in signed]
        assert "closeandassignmsg" not in kinds and kinds.count("bindconnectionmsg") >= 1, sorted(set(kinds))


def test_prefetchers_sleep_while_the_workers_are_not_all_busy(server: ServerHandle, s3_server: S3Server,
                                                               tmp_path: Path) -> None:
    """A prefetcher only takes a call once the loops hold one per worker, and it is woken when
    they do: until then it sleeps instead of looking every 0.1 s (ten of them woke an idle
    executor ~180 times a second). Once the worker is busy with short calls, they take calls."""
    with one_worker_executors(server, s3_server, tmp_path, 1, prefetch=4) as (client, (executor,)):
        looks: list[int] = []
        real = executor._prefetch_ok

        def counting(own: int = 0) -> bool:
            looks.append(own)
            return real(own)
        executor._prefetch_ok = counting  # type: ignore[method-assign]
        deadline = time.monotonic() + 30
        while sum(t.name.startswith("faas-prefetch-") for t in threading.enumerate()) < 4:
            assert time.monotonic() < deadline, "the prefetchers did not start"
            time.sleep(0.05)
        time.sleep(1.5)  # idle: nothing is queued, the loop holds nothing
        assert looks == []

        stack = Stack(client, executor, threading.current_thread())
        stack.deploy("tick", "import time\ndef tick(n):\n    time.sleep(0.01)\n    return n\n")
        pids = [stack.submit("tick", n) for n in range(40)]
        assert [stack.result(p) for p in pids] == [(ProcessState.SUCCESS, [n], []) for n in range(40)]
        assert looks and executor.held_peak > 1  # woken with the worker busy, they took calls beyond it


def test_prefetch_takes_nothing_while_calls_are_long(server: ServerHandle, s3_server: S3Server,
                                                     tmp_path: Path) -> None:
    # Two executors of one worker; calls of 0.4 s. A prefetched call would wait behind a running
    # one on its executor while the other executor could run it: neither takes a second call.
    with one_worker_executors(server, s3_server, tmp_path, 2, prefetch=1) as (client, executors):
        stack = Stack(client, executors[0], threading.current_thread())
        stack.deploy("nap", "import time\ndef nap(n):\n    time.sleep(0.4)\n    return n\n")
        pids = [stack.submit("nap", n) for n in range(6)]
        assert [stack.result(p) for p in pids] == [(ProcessState.SUCCESS, [n], []) for n in range(6)]
        assert [e.held_peak for e in executors] == [1, 1]
        assert sum(e.calls for e in executors) == 6


def test_a_restarted_executor_registers_again_under_its_name(server: ServerHandle, s3_server: S3Server,
                                                             tmp_path: Path) -> None:
    from sdk import new_prvkey

    key = new_prvkey()
    for run in range(2):
        settings = ExecutorSettings(
            colonyname=DEV_COLONY, executorname="faas-again", prvkey=key, colony_prvkey=COLONY_PRVKEY,
            concurrency=1, assign_timeout=0.5, state_dir=str(tmp_path / "state"),
            pool=PoolSettings(scratch_root=str(tmp_path / f"scratch{run}"), size=1, uid_base=64600))
        with _client(server, s3_server) as client:
            executor = Executor(settings, client)
            assert executor.run(burst=True) == 0
            assert executor.executorid == client.get_executor(DEV_COLONY, "faas-again").executorid


def test_a_workflow_passes_outputs_to_the_next_function(stack: Stack) -> None:
    from sdk import WorkflowSpec

    stack.deploy("convert", "def convert(c):\n    return c * 9 / 5 + 32\n")
    stack.deploy("double", "def double(x):\n    return 2 * x\n")
    cond = {"colonyname": DEV_COLONY, "executortype": "faas-executor"}
    first = FuncSpec(nodename="first", funcname="convert", args=[21.0], maxexectime=60,
                     conditions=Conditions(**cond))
    second = FuncSpec(nodename="second", funcname="double", maxexectime=60,
                      conditions=Conditions(**cond, dependencies=["first"]))
    graph = stack.client.submit_workflow(WorkflowSpec(colonyname=DEV_COLONY, functionspecs=[first, second]))
    results = {}
    for pid in graph.processids:
        done = stack.client.wait(pid, 60)
        results[done.spec.nodename] = (done.state, list(done.output))
    assert results == {"first": (ProcessState.SUCCESS, [pytest.approx(69.8)]),
                       "second": (ProcessState.SUCCESS, [pytest.approx(139.6)])}


def test_the_colonyos_tutorial_client_steps_with_pycolonies(stack: Stack, s3_server: S3Server,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploy and call exactly as the ColonyOS serverless tutorial does, with pycolonies 1.0.25."""
    from tests.harness.require import require

    try:
        import pycolonies
    except ImportError:
        pycolonies = None
    require(pycolonies, "pycolonies 1.0.25", "pip install -e '.[dev]'")
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)  # pycolonies reads AWS_S3_* at call time
    server = stack.client
    colonies = pycolonies.Colonies(server.host, server.port)
    source_code = "def convert(celsius):\n    return (celsius * 9/5) + 32\n"
    colonies.upload_data(DEV_COLONY, DEV_PRVKEY, filename="convert", data=source_code.encode("utf-8"), label="/faas")
    # The tutorial's FuncSpec, except maxexectime: pycolonies' model defaults it to 0, which the
    # server (like the Go one, protocol §6.3) treats as a deadline already passed ~1 s after
    # assignment; on a busy machine a cold worker start can take longer than that.
    func_spec = pycolonies.FuncSpec(
        funcname="execute", kwargs={"function": "convert", "arg": str(float(21))}, maxexectime=-1,
        conditions=pycolonies.Conditions(colonyname=DEV_COLONY, executortype="faas-executor"))
    process = colonies.submit_func_spec(func_spec, DEV_PRVKEY)
    process = colonies.wait(process, 30, DEV_PRVKEY)
    assert process.output == [pytest.approx(69.8)]


@pytest.mark.parametrize("server_has_it", [True, False], ids=["our-server", "upstream-like-server"])
def test_close_and_next_assign_go_in_one_call_when_the_server_has_closeandassignmsg(
        server_has_it: bool, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against our server the executor closes each call and takes the next one in one round trip;
    a server without that message (upstream answers 403 "invalid rpcMsg.PayloadType") gets close
    and assign separately, and no call is lost or closed twice either way."""
    from colonies_server.registry import HANDLERS

    if not server_has_it:  # the reply the upstream server gives to an unknown message type
        monkeypatch.delitem(HANDLERS, "closeandassignmsg")
    stack.deploy("twice", """
        def twice(x):
            if x % 5 == 0:
                raise ValueError(f"no multiples of five: {x}")
            return 2 * x
    """)
    pids = [stack.submit("twice", x) for x in range(1, 21)]
    results = [stack.result(pid) for pid in pids]
    for x, (state, output, errors) in zip(range(1, 21), results, strict=True):
        if x % 5 == 0:
            assert state == ProcessState.FAILED and f"no multiples of five: {x}" in errors[0]
        else:
            assert (state, output) == (ProcessState.SUCCESS, [2 * x])
    assert stack.executor._close_and_assign is server_has_it
    assert all(p.retries == 0 for p in (stack.client.get_process(pid) for pid in pids))


def _wheel(directory: Path, name: str, version: str, code: str) -> Path:
    """A minimal pure-Python wheel (what pip installs offline from a path)."""
    import base64
    import hashlib
    import zipfile

    dist = f"{name}-{version}"
    files = {f"{name}/__init__.py": code,
             f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    wheel = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
        z.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


def test_requirements_are_installed_once_and_importable_in_the_sandbox(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: only the wheel given by path
    wheel = _wheel(tmp_path, "cfx_testdep", "0.1", "VALUE = 42\n\ndef double(x):\n    return 2 * x\n")
    stack.deploy("usesdep", """
        import cfx_testdep

        def usesdep(x):
            return cfx_testdep.double(x) + cfx_testdep.VALUE
    """, requirements=[str(wheel)])
    stack.deploy("missingdep", """
        def missingdep():
            return 1
    """, requirements=["cfx-no-such-package-anywhere==9.9"])
    pids = [stack.submit("usesdep", x) for x in (1, 2, 3)]
    assert [stack.result(pid) for pid in pids] == [(ProcessState.SUCCESS, [2 * x + 42], []) for x in (1, 2, 3)]
    installs = [p for p in (Path(stack.executor.settings.state_dir) / "requirements").iterdir()
                if not p.name.startswith(".")]
    assert len(installs) == 1 and (installs[0] / "site" / "cfx_testdep" / "__init__.py").is_file()
    state, _, errors = stack.result(stack.submit("missingdep"))
    assert state == ProcessState.FAILED
    assert "installing the requirements of 'missingdep' (cfx-no-such-package-anywhere==9.9) failed" in errors[0]
    assert "cfx-no-such-package-anywhere" in errors[0].split("failed", 1)[1]  # what pip said
    # A failed install leaves nothing behind that a later call could mistake for an install.
    assert len([p for p in installs[0].parent.iterdir() if not p.name.startswith(".")]) == 1
