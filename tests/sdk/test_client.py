"""`Colonies` (sync) against the real server: every SDK-API method, waits, errors."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sdk import (
    ChecksumError,
    Colonies,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesTimeoutError,
    Colony,
    Conditions,
    ConflictError,
    Executor,
    ExecutorState,
    ForbiddenError,
    FuncSpec,
    LocalStore,
    NotFoundError,
    Process,
    ProcessState,
    ServerError,
    StoreError,
    User,
    WorkflowSpec,
    id_from_prvkey,
    new_prvkey,
)
from tests.harness.ports import free_port
from tests.harness.server import COLONY_PRVKEY, DEV_COLONY, SERVER_PRVKEY

COLONY = DEV_COLONY
DEV_TYPE = "cli"  # the dev executor "myexecutor" (same key as user "myuser")


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def spec(funcname: str = "f", nodename: str = "", deps: list[str] | None = None, **kw: Any) -> FuncSpec:
    return FuncSpec(nodename=nodename or funcname, funcname=funcname, args=["a", 1], **kw,
                    conditions=Conditions(colonyname=COLONY, executortype=DEV_TYPE, dependencies=deps or []))


def run(c: Colonies, output: list[Any] | None = None, fail: str | None = None) -> Process:
    """Assign the next process and close or fail it, as an executor would."""
    p = c.assign(COLONY, 5)
    assert p is not None
    if fail is None:
        c.close(p.processid, output)
    else:
        c.fail(p.processid, [fail])
    return p


def in_thread(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Start fn on a thread now; the returned callable joins it and gives its result or raises."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the test thread
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()

    def join() -> Any:
        t.join(30)
        if "error" in box:
            raise box["error"]
        return box["value"]

    return join


def test_connection_refused_is_a_connection_error() -> None:
    with Colonies("127.0.0.1", free_port(), prvkey=new_prvkey()) as c, pytest.raises(ColoniesConnectionError):
        c.get_colonies()


def test_no_key_and_no_store_are_clear_errors() -> None:
    with Colonies("127.0.0.1", free_port()) as c:
        with pytest.raises(ColoniesError, match="private key"):
            c.get_colonies()
        with pytest.raises(StoreError, match="store"):
            c.upload_bytes(COLONY, "/l", "n", b"x", prvkey=new_prvkey())


def test_server_info(client: Colonies, live: Any) -> None:
    with Colonies(live.host, live.port) as keyless:  # these two need no key
        assert "buildversion" in keyless.version() and isinstance(keyless.server_info(), dict)
    assert "buildversion" in client.version()
    assert isinstance(client.server_info(), dict)
    stats = client.statistics(prvkey=SERVER_PRVKEY)
    assert stats.colonies >= 1
    with pytest.raises(ForbiddenError):
        client.statistics()


def test_colony_lifecycle(client: Colonies) -> None:
    key, name = new_prvkey(), fresh("colony")
    added = client.add_colony(Colony(colonyid=id_from_prvkey(key), name=name), prvkey=SERVER_PRVKEY)
    assert added.name == name
    with pytest.raises(ConflictError):
        client.add_colony(Colony(colonyid=id_from_prvkey(key), name=name), prvkey=SERVER_PRVKEY)
    assert name in [c.name for c in client.get_colonies(prvkey=SERVER_PRVKEY)]
    with pytest.raises(ForbiddenError):
        client.get_colonies()  # a member key is not the server owner
    assert client.get_colony(COLONY).name == COLONY
    assert client.colony_stats(COLONY).executors >= 1
    client.remove_colony(name, prvkey=SERVER_PRVKEY)
    assert name not in [c.name for c in client.get_colonies(prvkey=SERVER_PRVKEY)]


def test_users(client: Colonies) -> None:
    key, name = new_prvkey(), fresh("user")
    user = client.add_user(User(colonyname=COLONY, userid=id_from_prvkey(key), name=name), prvkey=COLONY_PRVKEY)
    assert user.name == name
    assert name in [u.name for u in client.get_users(COLONY)]
    assert client.get_colony(COLONY, prvkey=key).name == COLONY  # the new user is a member
    client.remove_user(COLONY, name, prvkey=COLONY_PRVKEY)
    assert name not in [u.name for u in client.get_users(COLONY)]


def test_executor_lifecycle(client: Colonies) -> None:
    key, name = new_prvkey(), fresh("exec")
    e = client.add_executor(Executor(executorid=id_from_prvkey(key), executortype="t", executorname=name,
                                     colonyname=COLONY), prvkey=COLONY_PRVKEY)
    assert e.state is ExecutorState.PENDING
    client.approve_executor(COLONY, name, prvkey=COLONY_PRVKEY)
    assert client.get_executor(COLONY, name).state is ExecutorState.APPROVED
    assert name in [x.executorname for x in client.get_executors(COLONY)]
    client.heartbeat(COLONY, name, 30, prvkey=key)
    client.reject_executor(COLONY, name, prvkey=COLONY_PRVKEY)
    assert client.get_executor(COLONY, name).state is ExecutorState.REJECTED
    client.remove_executor(COLONY, name, prvkey=COLONY_PRVKEY)
    states = {x.executorname: x.state for x in client.get_executors(COLONY)}
    assert states.get(name, ExecutorState.UNREGISTERED) is ExecutorState.UNREGISTERED
    with pytest.raises(ColoniesError):
        client.approve_executor(COLONY, fresh("nobody"), prvkey=COLONY_PRVKEY)


def test_functions(client: Colonies) -> None:
    fn = client.add_function(COLONY, "myexecutor", fresh("fn"))
    assert fn.functionid
    assert fn.funcname in [f.funcname for f in client.get_functions(COLONY)]
    assert fn.funcname in [f.funcname for f in client.get_functions(COLONY, "myexecutor")]
    client.remove_function(fn.functionid)
    assert fn.funcname not in [f.funcname for f in client.get_functions(COLONY)]


def test_process_life(client: Colonies) -> None:
    submitted = client.submit(spec(env={"k": "v"}))
    assert submitted.state is ProcessState.WAITING and submitted.spec.env == {"k": "v"}
    assert client.get_process(submitted.processid).processid == submitted.processid
    assert submitted.processid in [p.processid for p in client.get_processes(COLONY, ProcessState.WAITING)]
    p = client.assign(COLONY, 5)
    assert p is not None and p.processid == submitted.processid and p.state is ProcessState.RUNNING
    client.set_output(p.processid, ["partial"])
    assert client.get_process(p.processid).output == ["partial"]
    attr = client.add_attribute(p.processid, "key", "value")
    assert client.get_attribute(attr.attributeid).value == "value"
    client.add_log(p.processid, "hello log\n")
    assert [log.message for log in client.get_logs(COLONY, processid=p.processid)] == ["hello log\n"]
    client.close(p.processid, ["done", 2])
    done = client.get_process(p.processid)
    assert done.state is ProcessState.SUCCESS and done.output == ["done", 2]
    assert p.processid in [x.processid for x in client.get_processes(COLONY, ProcessState.SUCCESS)]
    client.remove_process(p.processid)
    with pytest.raises(NotFoundError):
        client.get_process(p.processid)


def test_assign_with_nothing_to_do_returns_none(client: Colonies) -> None:
    client.remove_all_processes(COLONY, prvkey=COLONY_PRVKEY)
    assert client.assign(COLONY, -1) is None
    assert client.assign(COLONY, 1) is None


def test_close_and_assign_hands_over_the_next_process(client: Colonies) -> None:
    client.remove_all_processes(COLONY, prvkey=COLONY_PRVKEY)
    first, second = client.submit(spec()), client.submit(spec())
    p = client.assign(COLONY, 5)
    assert p is not None and p.processid == first.processid
    nxt = client.close_and_assign(p.processid, COLONY, 5, output=["one"])
    assert nxt is not None and nxt.processid == second.processid and nxt.state is ProcessState.RUNNING
    assert client.get_process(first.processid).output == ["one"]
    assert client.close_and_assign(nxt.processid, COLONY, -1, errors="boom") is None
    assert client.get_process(second.processid).errors == ["boom"]
    with pytest.raises(ColoniesError, match="failed process as successful"):
        client.close_and_assign(second.processid, COLONY, -1)


def test_slim_close_and_assign_brings_what_running_the_next_one_takes(client: Colonies) -> None:
    client.remove_all_processes(COLONY, prvkey=COLONY_PRVKEY)
    first = client.submit(spec())
    second = client.submit(spec(kwargs={"k": 1}, maxexectime=9, env={"A": "b"}))
    p = client.assign(COLONY, 5)
    assert p is not None and p.processid == first.processid
    nxt = client.close_and_assign(p.processid, COLONY, 5, output=[1], slim=True)
    assert nxt is not None and nxt.processid == second.processid
    assert (nxt.spec.funcname, nxt.spec.args, nxt.spec.kwargs, nxt.spec.maxexectime, nxt.spec.env, nxt.input) == (
        "f", ["a", 1], {"k": 1}, 9, {"A": "b"}, [])
    assert nxt.assignedexecutorid == ""  # left out of a slim reply; the server has it
    assert client.get_process(nxt.processid).assignedexecutorid != ""
    assert client.close_and_assign(nxt.processid, COLONY, -1, output=[2], slim=True) is None
    assert client.get_process(second.processid).output == [2]


def test_fail_and_remove_all(client: Colonies) -> None:
    client.submit(spec())
    p = run(client, fail="boom")
    failed = client.get_process(p.processid)
    assert failed.state is ProcessState.FAILED and failed.errors == ["boom"]
    with pytest.raises(ColoniesError):
        client.close(p.processid)  # failed -> anything is refused
    client.submit(spec())
    with pytest.raises(ForbiddenError):
        client.remove_all_processes(COLONY)  # colony owner only
    client.remove_all_processes(COLONY, prvkey=COLONY_PRVKEY)
    assert client.get_processes(COLONY, ProcessState.WAITING) == []
    assert client.get_processes(COLONY, ProcessState.FAILED) == []


def test_wait_returns_on_success(client: Colonies) -> None:
    submitted = client.submit(spec())
    waiting = in_thread(lambda: client.wait(submitted, 20))
    run(client, ["ok"])
    done = waiting()
    assert done.state is ProcessState.SUCCESS and done.output == ["ok"]


def test_wait_returns_on_failure(client: Colonies) -> None:
    submitted = client.submit(spec())
    waiting = in_thread(lambda: client.wait(submitted.processid, 20))
    run(client, fail="broken")
    done = waiting()
    assert done.state is ProcessState.FAILED and done.errors == ["broken"]


def test_wait_on_an_ended_process_returns_at_once(client: Colonies) -> None:
    client.submit(spec())
    p = run(client, ["x"])
    assert client.wait(p, 5).state is ProcessState.SUCCESS


def test_wait_times_out_with_a_typed_error(client: Colonies) -> None:
    p = client.submit(spec(funcname="never", nodename="never"))
    with pytest.raises(ColoniesTimeoutError) as info:
        client.wait(p, 0.3)
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(NotFoundError):
        client.wait("0" * 64, 1)
    client.remove_process(p.processid)


def test_workflow_with_data_passing(client: Colonies) -> None:
    wf = WorkflowSpec(colonyname=COLONY, functionspecs=[spec("f1", "n1"), spec("f2", "n2", deps=["n1"])])
    graph = client.submit_workflow(wf)
    assert graph.state is ProcessState.WAITING and len(graph.processids) == 2 and len(graph.rootprocessids) == 1
    members = client.get_processes(COLONY, -1, processgraphid=graph.processgraphid)
    assert sorted(p.processid for p in members) == sorted(graph.processids)
    first = run(client, ["x", 2])
    assert first.spec.nodename == "n1"
    second = client.assign(COLONY, 5)
    assert second is not None and second.spec.nodename == "n2" and second.input == ["x", 2]
    client.close(second.processid, ["y"])
    done = client.get_processgraph(graph.processgraphid)
    assert done.state is ProcessState.SUCCESS and len(done.nodes) == 2 and len(done.edges) == 1
    assert graph.processgraphid in [g.processgraphid for g in client.get_processgraphs(COLONY, state=2)]
    assert graph.processgraphid not in [g.processgraphid for g in client.get_processgraphs(COLONY)]
    client.remove_processgraph(graph.processgraphid)
    with pytest.raises(ColoniesError):
        client.get_processgraph(graph.processgraphid)


def test_add_child_and_remove_all_processgraphs(client: Colonies) -> None:
    graph = client.submit_workflow(WorkflowSpec(colonyname=COLONY, functionspecs=[spec("p", "parent")]))
    parent = client.assign(COLONY, 5)
    assert parent is not None
    child = client.add_child(graph.processgraphid, parent.processid, "", spec("c", "child"))
    assert child.waitforparents and child.parents == [parent.processid]
    client.close(parent.processid, ["from parent"])
    got = client.assign(COLONY, 5)
    assert got is not None and got.processid == child.processid and got.input == ["from parent"]
    client.close(got.processid)
    client.remove_all_processgraphs(COLONY, prvkey=COLONY_PRVKEY)
    assert client.get_processgraphs(COLONY, state=2) == []


def test_executor_logs_and_search(client: Colonies) -> None:
    word = fresh("needle")
    client.add_executor_log(COLONY, "myexecutor", f"executor says {word}")
    assert any(word in log.message for log in client.get_logs(COLONY, executorname="myexecutor", latest=True))
    assert [log.message for log in client.search_logs(COLONY, word)] == [f"executor says {word}"]


def test_cfs_bytes_metadata_and_snapshots(client: Colonies, tmp_path: Path) -> None:
    label = "/" + fresh("data")
    f1 = client.upload_bytes(COLONY, label, "data.bin", b"version 1")
    assert f1.fileid and f1.label == label and f1.ref.protocol == "local"
    f2 = client.upload_bytes(COLONY, label.lstrip("/") + "/", "data.bin", b"version 2")
    assert f2.sequencenr > f1.sequencenr
    assert client.download_bytes(COLONY, label, "data.bin") == b"version 2"
    assert client.download_bytes(COLONY, label, fileid=f1.fileid) == b"version 1"
    assert [f.fileid for f in client.get_file(COLONY, label, "data.bin", latest=False)] == [f2.fileid, f1.fileid]
    assert client.get_file_by_id(COLONY, f1.fileid).name == "data.bin"
    assert [d.name for d in client.get_files(COLONY, label)] == ["data.bin"]
    labels = {lab.name: lab.files for lab in client.get_file_labels(COLONY, label)}
    assert labels[label] == 2
    src = tmp_path / "upload.txt"
    src.write_bytes(b"file body")
    client.upload_file(COLONY, label, src)
    (tmp_path / "out").mkdir()
    out = client.download_file(COLONY, label, tmp_path / "out", name="upload.txt")
    assert out.read_bytes() == b"file body" and out == tmp_path / "out" / "upload.txt"
    assert client.download_file(COLONY, label, tmp_path / "named.txt", name="upload.txt").exists()

    snap = client.create_snapshot(COLONY, label, fresh("snap"))
    assert len(snap.fileids) == 2
    assert client.get_snapshot(COLONY, name=snap.name).snapshotid == snap.snapshotid
    assert client.get_snapshot(COLONY, snapshotid=snap.snapshotid).name == snap.name
    assert snap.snapshotid in [s.snapshotid for s in client.get_snapshots(COLONY)]
    client.remove_snapshot(COLONY, snap.name)
    assert snap.snapshotid not in [s.snapshotid for s in client.get_snapshots(COLONY)]

    client.delete_file(COLONY, label, "data.bin")
    with pytest.raises(NotFoundError):
        client.download_bytes(COLONY, label, "data.bin")
    assert isinstance(client.store, LocalStore)
    assert not (client.store.root / f1.ref.s3object.object).exists()
    client.remove_file(COLONY, label, "upload.txt")
    assert client.get_files(COLONY, label) == []


def test_download_detects_corruption(client: Colonies) -> None:
    label = "/" + fresh("corrupt")
    f = client.upload_bytes(COLONY, label, "x", b"good bytes")
    assert isinstance(client.store, LocalStore)
    (client.store.root / f.ref.s3object.object).write_bytes(b"evil bytes")
    with pytest.raises(ChecksumError):
        client.download_bytes(COLONY, label, "x")


def test_crons(client: Colonies) -> None:
    wf = WorkflowSpec(colonyname=COLONY, functionspecs=[spec("cronfn", "cronfn")])
    cron = client.add_cron(COLONY, fresh("cron"), wf, cronexpression="0 0 0 1 1 *")
    assert cron.cronid and cron.name
    assert client.get_cron(cron.cronid).name == cron.name
    assert cron.cronid in [c.cronid for c in client.get_crons(COLONY)]
    client.run_cron(cron.cronid)
    p = client.assign(COLONY, 10)
    assert p is not None and p.spec.funcname == "cronfn"
    client.close(p.processid)
    client.remove_cron(cron.cronid)
    assert cron.cronid not in [c.cronid for c in client.get_crons(COLONY)]


def test_unsupported_areas_reach_the_server(client: Colonies) -> None:
    # This server does not implement generators/channels/blueprints yet (501); the messages are
    # still well-formed and signed, and the reply is a typed error.
    for call in (lambda: client.get_generators(COLONY), lambda: client.channel_read("p", "c"),
                 lambda: client.get_blueprints(COLONY)):
        with pytest.raises(ColoniesError) as info:
            call()
        assert isinstance(info.value, (ServerError, NotFoundError, ForbiddenError))
    try:
        assert client.subscribe_channel("p", "c", timeout=0.5) == []  # ignored: ends at the deadline
    except ColoniesError:
        pass  # or refused with an error frame


@pytest.mark.parametrize("fail", [None, "bad"])
def test_one_socket_carries_both_subscriptions(client: Colonies, fail: str | None) -> None:
    # The building block of `wait`, made deterministic: subscribe first, then end the process.
    from websockets.sync.client import connect

    from sdk.pubsub import decode_frame, subscribe_envelopes
    from tests.harness.server import DEV_PRVKEY

    p = client.submit(spec())
    with connect(client.ws_url) as ws:
        for frame in subscribe_envelopes(p.processid, DEV_TYPE, 10, DEV_PRVKEY, COLONY):
            ws.send(frame)
        assert client.get_process(p.processid).state is ProcessState.WAITING
        run(client, ["out"], fail=fail)
        got = decode_frame(ws.recv(timeout=10))
    assert got.processid == p.processid
    assert got.state is (ProcessState.FAILED if fail else ProcessState.SUCCESS)


def test_tls_settings(live: Any) -> None:
    import ssl

    from sdk.client_base import ssl_context

    assert ssl_context(False).verify_mode is ssl.CERT_NONE and not ssl_context(False).check_hostname
    assert ssl_context(True).verify_mode is ssl.CERT_REQUIRED
    with Colonies(live.host, live.port, tls=True, verify=False) as c:
        assert c.api_url.startswith("https://") and c.ws_url.startswith("wss://")
        assert c.ssl_context is not None and c.ssl_context.verify_mode is ssl.CERT_NONE
        with pytest.raises(ColoniesConnectionError):
            c.version()  # the test server speaks plain HTTP: the TLS handshake fails
