"""closeandassignmsg (extension, docs/SERVER.md): close or fail a process and take the next one in one call."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from tests.harness.server import ServerHandle

from .conftest import Rpc, envelope


def _merged(pid: str, colony: str, timeout: float = -1, **fields: Any) -> dict[str, Any]:
    msg = {"msgtype": "closeandassignmsg", "processid": pid, "colonyname": colony, "timeout": timeout}
    msg.update(fields or {"successful": True, "out": ["done"]})
    return msg


def test_closes_and_hands_over_the_next_process(rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user, exe = rpc.add_user(colony), rpc.add_executor(colony)
    first, second = rpc.submit(colony.name, user.prvkey), rpc.submit(colony.name, user.prvkey)
    assert rpc.assign(colony.name, exe.prvkey).payload["processid"] == first["processid"]

    got = rpc.ok(_merged(first["processid"], colony.name, successful=True, out=["one"]), exe.prvkey)
    assert got["process"]["processid"] == second["processid"]
    assert got["process"]["state"] == 1 and got["process"]["assignedexecutorid"] == exe.id
    closed = rpc.get_process(first["processid"], user.prvkey)
    assert closed["state"] == 2 and closed["out"] == ["one"]

    # Nothing left: the close still happens, and "process" is null.
    last = rpc.ok(_merged(second["processid"], colony.name, successful=False, errors=["it broke"]), exe.prvkey)
    assert last == {"process": None}
    failed = rpc.get_process(second["processid"], user.prvkey)
    assert failed["state"] == 3 and failed["errors"] == ["it broke"]


def test_a_refused_close_assigns_nothing(rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user, exe, other = rpc.add_user(colony), rpc.add_executor(colony), rpc.add_executor(colony)
    running = rpc.submit(colony.name, user.prvkey)
    assert rpc.assign(colony.name, exe.prvkey).payload["processid"] == running["processid"]
    waiting = rpc.submit(colony.name, user.prvkey)

    # Another executor may not close it; the waiting process must stay where it is.
    refused = rpc.call(_merged(running["processid"], colony.name), other.prvkey)
    assert refused.status == 403 and "assigned to another executor" in refused.message, refused.describe()
    assert rpc.get_process(waiting["processid"], user.prvkey)["state"] == 0
    # A close of a process that already failed is refused the same way as closesuccessfulmsg.
    rpc.ok(_merged(running["processid"], colony.name, successful=False, errors=["x"]), exe.prvkey)
    assert rpc.get_process(waiting["processid"], user.prvkey)["state"] == 1  # taken by that call
    again = rpc.call(_merged(running["processid"], colony.name, successful=True, out=[]), exe.prvkey)
    assert again.status == 400 and "failed process as successful" in again.message, again.describe()


def test_bad_fields_are_400(rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user, exe = rpc.add_user(colony), rpc.add_executor(colony)
    pid = rpc.submit(colony.name, user.prvkey)["processid"]
    rpc.assign(colony.name, exe.prvkey)
    for fields, text in (({"successful": "yes", "out": []}, "successful must be true or false"),
                         ({"successful": True, "out": "x"}, "out")):
        reply = rpc.call(_merged(pid, colony.name, **fields), exe.prvkey)
        assert reply.status == 400 and text in reply.message, reply.describe()
    zero = rpc.call(_merged(pid, colony.name, 0), exe.prvkey)
    assert zero.status == 400 and "timeout must not be 0" in zero.message
    assert rpc.get_process(pid, user.prvkey)["state"] == 1  # none of them closed it


def test_it_long_polls_and_a_submit_wakes_it(rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user, exe = rpc.add_user(colony), rpc.add_executor(colony)
    pid = rpc.submit(colony.name, user.prvkey)["processid"]
    rpc.assign(colony.name, exe.prvkey)
    t, got = _parked(rpc, _merged(pid, colony.name, 20), exe.prvkey, pid, user.prvkey)
    assert t.is_alive()
    woken = rpc.submit(colony.name, user.prvkey)
    t.join(15)
    assert got["process"]["processid"] == woken["processid"]


def _parked(rpc: Rpc, msg: dict[str, Any], prvkey: str, closed: str,
            reader: str) -> tuple[threading.Thread, dict[str, Any]]:
    """Send `msg` (a close that long-polls) from a thread; returns once the close of `closed` has
    landed, with the thread (still parked) and the dict its reply will fill."""
    got: dict[str, Any] = {}

    def parked() -> None:
        own = Rpc(rpc.handle)  # httpx clients are not shared between threads
        try:
            got.update(own.ok(msg, prvkey))
        finally:
            own.close()

    t = threading.Thread(target=parked, daemon=True)
    t.start()
    # The close is committed before the call parks.
    deadline = time.monotonic() + 10
    while rpc.get_process(closed, reader)["state"] != 2:
        assert time.monotonic() < deadline, "the close did not land while the call was parked"
        time.sleep(0.02)
    return t, got


def test_a_disconnected_close_and_assign_takes_no_work(rpc: Rpc, module_server: ServerHandle) -> None:
    colony = rpc.add_colony()
    user, dead, alive = rpc.add_user(colony), rpc.add_executor(colony), rpc.add_executor(colony)
    pid = rpc.submit(colony.name, user.prvkey)["processid"]
    rpc.assign(colony.name, dead.prvkey)
    with httpx.Client(timeout=0.5) as client:  # gives up after 0.5 s, like a killed executor
        try:
            client.post(module_server.api, content=json.dumps(envelope(_merged(pid, colony.name, 30), dead.prvkey)))
        except httpx.TimeoutException:
            pass
    assert rpc.get_process(pid, user.prvkey)["state"] == 2
    process = rpc.submit(colony.name, user.prvkey)
    taken = rpc.assign(colony.name, alive.prvkey, timeout=5)
    assert taken.status == 200 and taken.payload["processid"] == process["processid"], taken.describe()



def _batch(closes: list[dict[str, Any]], colony: str, count: int = 1, timeout: float = -1) -> dict[str, Any]:
    return {"msgtype": "closeandassignmsg", "closes": closes, "count": count, "colonyname": colony,
            "timeout": timeout}


def test_a_batch_closes_several_and_assigns_up_to_count_in_queue_order(rpc: Rpc) -> None:
    """The batched form (extension "closeandassignbatch"): an executor with several calls done
    closes them all and takes as many new ones in one message."""
    colony = rpc.add_colony()
    user, exe = rpc.add_user(colony), rpc.add_executor(colony)
    pids = [rpc.submit(colony.name, user.prvkey)["processid"] for _ in range(6)]
    first = rpc.ok(_batch([], colony.name, count=2), exe.prvkey)
    assert [p["processid"] for p in first["processes"]] == pids[:2] and first["refused"] == []
    closes = [{"processid": pids[0], "successful": True, "out": [0]},
              {"processid": pids[1], "successful": False, "errors": ["broke"]}]
    second = rpc.ok(_batch(closes, colony.name, count=3), exe.prvkey)
    assert [p["processid"] for p in second["processes"]] == pids[2:5]
    assert all(p["state"] == 1 and p["assignedexecutorid"] == exe.id for p in second["processes"])
    assert rpc.get_process(pids[0], user.prvkey)["out"] == [0]
    assert rpc.get_process(pids[1], user.prvkey)["errors"] == ["broke"]
    # More wanted than waiting: what there is; count 0 only closes.
    third = rpc.ok(_batch([{"processid": p, "successful": True, "out": [1]} for p in pids[2:5]], colony.name,
                          count=5), exe.prvkey)
    assert [p["processid"] for p in third["processes"]] == pids[5:]
    last = rpc.ok(_batch([{"processid": pids[5], "successful": True, "out": [5]}], colony.name, count=0),
                  exe.prvkey)
    assert last == {"processes": [], "refused": []}
    assert [rpc.get_process(p, user.prvkey)["state"] for p in pids] == [2, 3, 2, 2, 2, 2]


def test_a_refused_close_in_a_batch_is_reported_and_the_rest_go_on(rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user, exe, other = rpc.add_user(colony), rpc.add_executor(colony), rpc.add_executor(colony)
    mine = rpc.submit(colony.name, user.prvkey)["processid"]
    theirs = rpc.submit(colony.name, user.prvkey)["processid"]
    assert rpc.assign(colony.name, exe.prvkey).payload["processid"] == mine
    assert rpc.assign(colony.name, other.prvkey).payload["processid"] == theirs
    waiting = rpc.submit(colony.name, user.prvkey)["processid"]
    closes = [{"processid": theirs, "successful": True, "out": []}, {"processid": mine, "successful": True, "out": [7]},
              {"processid": "f" * 64, "successful": True, "out": []}]
    got = rpc.ok(_batch(closes, colony.name, count=1), exe.prvkey)
    assert [p["processid"] for p in got["processes"]] == [waiting]
    assert [(r["processid"], r["status"]) for r in got["refused"]] == [(theirs, 403), ("f" * 64, 500)]
    assert "assigned to another executor" in got["refused"][0]["message"]
    assert rpc.get_process(mine, user.prvkey)["out"] == [7]
    assert rpc.get_process(theirs, user.prvkey)["state"] == 1  # still the other executor's


def test_a_batch_long_polls_only_when_nothing_waits(rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user, exe = rpc.add_user(colony), rpc.add_executor(colony)
    pid = rpc.submit(colony.name, user.prvkey)["processid"]
    rpc.assign(colony.name, exe.prvkey)
    t, got = _parked(rpc, _batch([{"processid": pid, "successful": True, "out": [1]}], colony.name, 4, 20),
                     exe.prvkey, pid, user.prvkey)
    assert t.is_alive()
    woken = rpc.submit(colony.name, user.prvkey)
    t.join(15)
    assert [p["processid"] for p in got["processes"]] == [woken["processid"]]


def test_bad_batches_are_400_and_only_executors_may_send_them(rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user, exe = rpc.add_user(colony), rpc.add_executor(colony)
    pid = rpc.submit(colony.name, user.prvkey)["processid"]
    rpc.assign(colony.name, exe.prvkey)
    for closes, count, text in (("x", 1, "closes must be a list"), ([{}] * 1001, 1, "closes must be a list"),
                                ([1], 1, "must be an object"), ([{"processid": pid}], 1, "successful must be"),
                                ([{"processid": pid, "successful": True, "out": "x"}], 1, "out"),
                                ([], -1, "count must be"), ([], 101, "count must be")):
        reply = rpc.call(_batch(closes, colony.name, count), exe.prvkey)  # type: ignore[arg-type]
        assert reply.status == 400 and text in reply.message, (closes, reply.describe())
    user_reply = rpc.call(_batch([{"processid": pid, "successful": True, "out": []}], colony.name), user.prvkey)
    assert user_reply.status == 500 and "executor not found" in user_reply.message
    assert rpc.get_process(pid, user.prvkey)["state"] == 1  # none of them closed it


def test_slim_assignments_carry_what_running_them_takes(rpc: Rpc) -> None:
    """"assigned": "slim" (what faas_executor asks for): the id, `in` and five spec fields."""
    colony = rpc.add_colony()
    user, exe = rpc.add_user(colony), rpc.add_executor(colony)
    spec = {"args": [1, "two"], "kwargs": {"x": 3}, "env": {"FAAS_REVISION": "r1"}, "maxexectime": 30}
    pids = [rpc.submit(colony.name, user.prvkey, funcname="f", **spec)["processid"] for _ in range(3)]
    assert rpc.assign(colony.name, exe.prvkey).payload["processid"] == pids[0]
    want = {"funcname": "f", "args": [1, "two"], "kwargs": {"x": 3}, "env": {"FAAS_REVISION": "r1"}, "maxexectime": 30}

    one = rpc.ok(_merged(pids[0], colony.name, assigned="slim", successful=True, out=[0]), exe.prvkey)
    assert one == {"process": {"processid": pids[1], "spec": want, "in": []}}
    many = rpc.ok({**_batch([{"processid": pids[1], "successful": True, "out": [1]}], colony.name, count=5),
                   "assigned": "slim"}, exe.prvkey)
    assert many == {"processes": [{"processid": pids[2], "spec": want, "in": []}], "refused": []}
    # Slim is only how the reply looks: what is stored is the whole process, assigned as always.
    stored = rpc.get_process(pids[2], user.prvkey)
    assert stored["state"] == 1 and stored["assignedexecutorid"] == exe.id and stored["spec"]["nodename"] == "f"
    assert rpc.get_process(pids[1], user.prvkey)["out"] == [1]


def test_an_unknown_assigned_form_is_400_and_closes_nothing(rpc: Rpc) -> None:
    colony = rpc.add_colony()
    user, exe = rpc.add_user(colony), rpc.add_executor(colony)
    pid = rpc.submit(colony.name, user.prvkey)["processid"]
    assert rpc.assign(colony.name, exe.prvkey).payload["processid"] == pid
    for msg in (_merged(pid, colony.name, assigned="thin", successful=True, out=[1]),
                {**_batch([{"processid": pid, "successful": True, "out": [1]}], colony.name), "assigned": 7}):
        bad = rpc.call(msg, exe.prvkey)
        assert bad.status == 400 and 'assigned must be "process" or "slim"' in bad.message, bad.describe()
    assert rpc.get_process(pid, user.prvkey)["state"] == 1  # still running: nothing was closed
