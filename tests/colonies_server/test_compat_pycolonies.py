"""Protocol §9 items 1–7, 10, 12, 13 driven with the real pycolonies 1.0.25 client against our server."""

from __future__ import annotations

import base64
import gc
import json
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from sdk.crypto import id_from_prvkey, new_prvkey, recover_id, sign
from tests.colonies_server.conftest import NOT_MEMBER, Rpc, World, fresh, poll, start_server
from tests.harness.server import DEV_ID, DEV_PRVKEY, SERVER_ID, SERVER_PRVKEY, ServerHandle

try:
    from model import Conditions, FuncSpec
    from pycolonies import Colonies, ColoniesConnectionError, func_spec
except ImportError:  # pragma: no cover - the conftest's pc fixture skips (strict: fails) without it
    pass

VECTORS = Path(__file__).resolve().parents[1] / "data" / "colonies_vectors.json"
ZERO_TIME_YEAR = 1


def _start(target: Any, *args: Any) -> threading.Thread:
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


# 1. Identity & envelope ------------------------------------------------------------------------------


def _vectors() -> list[dict[str, Any]]:
    return json.loads(VECTORS.read_text())["vectors"]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_vector_signature_and_id(vector: dict[str, Any]) -> None:
    assert id_from_prvkey(vector["prvkey"]) == vector["id"]
    assert sign(vector["message"], vector["prvkey"]) == vector["signature"]
    assert recover_id(vector["message"], vector["signature"]) == vector["id"]


def test_server_accepts_envelopes_exactly_as_pycolonies_sends_them(rpc: Rpc) -> None:
    """The exact request bytes of the vectors are accepted and attributed to the vector's key."""
    sent = {v["name"]: v["rpc_envelope_as_sent_by_pycolonies"] for v in _vectors()
            if "rpc_envelope_as_sent_by_pycolonies" in v}
    colonies = rpc.post_raw(sent["rpc getcoloniesmsg/server-key"])
    assert colonies.status == 200 and not colonies.error, colonies.describe()
    assert "dev" in [c["name"] for c in colonies.payload]
    again = rpc.post_raw(sent["rpc addcolonymsg/server-key"])
    assert again.status == 400 and again.message == "A Colony with name dev already exists", again.describe()
    submitted = rpc.post_raw(sent["rpc submitfuncspecmsg/user-key"])
    assert submitted.status == 200 and not submitted.error, submitted.describe()
    assert submitted.payload["initiatorid"] == DEV_ID and submitted.payload["state"] == 0
    # Something the dev executor ("myexecutor", type cli) can take, so the signed assign returns at once.
    mine = rpc.submit("dev", DEV_PRVKEY, "cli")
    assigned = rpc.post_raw(sent["rpc assignprocessmsg/user-or-executor-key"])
    assert assigned.status == 200 and not assigned.error, assigned.describe()
    assert assigned.payload["processid"] == mine["processid"]
    assert assigned.payload["assignedexecutorid"] == DEV_ID


def test_valid_signature_over_other_message_is_a_role_failure(rpc: Rpc) -> None:
    vectors = {v["name"]: v for v in _vectors()}
    env = json.loads(vectors["rpc getcoloniesmsg/server-key"]["rpc_envelope_as_sent_by_pycolonies"])
    env["signature"] = vectors["ascii/server-key"]["signature"]
    reply = rpc.post(env)
    assert reply.status == 403 and reply.error, reply.describe()
    assert reply.message == "Access denied, not server owner"


def test_short_signature_is_403(rpc: Rpc) -> None:
    env = json.loads(_vectors()[8]["rpc_envelope_as_sent_by_pycolonies"])
    env["signature"] = env["signature"][:128]
    reply = rpc.post(env)
    assert reply.status == 403 and reply.error, reply.describe()


def test_msgtype_mismatch_is_400(rpc: Rpc) -> None:
    reply = rpc.call({"msgtype": "getcoloniesmsg"}, SERVER_PRVKEY, payloadtype="getcolonymsg")
    assert reply.status == 400 and reply.error, reply.describe()


def test_unsigned_version_and_serverinfo(rpc: Rpc) -> None:
    reply = rpc.call({"msgtype": "versionmsg"}, None)
    assert reply.status == 200 and not reply.error, reply.describe()
    assert reply.envelope["payloadtype"] == "versionmsg"
    assert {"buildversion", "buildtime"} <= set(reply.payload)
    info = rpc.call({"msgtype": "getserverinfomsg"}, None)
    assert info.status == 200 and not info.error, info.describe()
    assert info.payload["backends"][0]["type"] == "http"


# 2. Colony / executor lifecycle -------------------------------------------------------------------------


def test_colony_and_executor_lifecycle(pc: Colonies) -> None:
    colony_key = new_prvkey()
    colony = fresh("life")
    added = pc.add_colony({"colonyid": id_from_prvkey(colony_key), "name": colony}, SERVER_PRVKEY)
    assert added == {"colonyid": id_from_prvkey(colony_key), "name": colony}
    with pytest.raises(ColoniesConnectionError, match="already exists"):
        pc.add_colony({"colonyid": id_from_prvkey(new_prvkey()), "name": colony}, SERVER_PRVKEY)
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        pc.list_colonies(colony_key)
    assert colony in [c["name"] for c in pc.list_colonies(SERVER_PRVKEY)]

    exe_key = new_prvkey()
    exe = pc.add_executor({"executorid": id_from_prvkey(exe_key), "executortype": "cli",
                           "executorname": "e1", "colonyname": colony}, colony_key)
    assert exe["state"] == 0 and exe["executorid"] == id_from_prvkey(exe_key)
    # M*: a pending executor may list the executors, but is not a member for getcolonymsg.
    assert [e["executorname"] for e in pc.list_executors(colony, exe_key)] == ["e1"]
    with pytest.raises(ColoniesConnectionError) as err:
        pc.get_colony(colony, exe_key)
    assert NOT_MEMBER.format(colony=colony) in str(err.value)
    # The colony owner is not a member either.
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        pc.get_colony(colony, colony_key)

    pc.approve_executor(colony, "e1", colony_key)
    assert pc.get_executor(colony, "e1", exe_key)["state"] == 1
    assert pc.get_colony(colony, exe_key)["name"] == colony

    pc.reject_executor(colony, "e1", colony_key)
    assert pc.list_executors(colony, exe_key)[0]["state"] == 2
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        pc.get_colony(colony, exe_key)

    other_key = new_prvkey()
    pc.add_executor({"executorid": id_from_prvkey(other_key), "executortype": "cli",
                     "executorname": "e2", "colonyname": colony}, colony_key)
    pc.approve_executor(colony, "e2", colony_key)
    pc.remove_executor(colony, "e1", colony_key)
    listed = {e["executorname"]: e["state"] for e in pc.list_executors(colony, other_key)}
    assert listed == {"e1": 3, "e2": 1}

    pc.del_colony(colony, SERVER_PRVKEY)
    assert colony not in [c["name"] for c in (pc.list_colonies(SERVER_PRVKEY) or [])]
    with pytest.raises(ColoniesConnectionError):
        pc.get_colony(colony, other_key)
    with pytest.raises(ColoniesConnectionError):
        pc.list_executors(colony, other_key)


# 3. Helloworld executor ----------------------------------------------------------------------------------


def test_helloworld_executor_flow(world: World) -> None:
    pc = world.pc
    pc.add_function(world.colony, world.exe, "helloworld", world.exe_key)
    served: list[str] = []
    errors: list[BaseException] = []

    def executor() -> None:
        try:
            process = pc.assign(world.colony, 10, world.exe_key)
            assert process.spec.funcname == "helloworld"
            pc.add_log(process.processid, "Hello from executor\n", world.exe_key)
            pc.close(process.processid, ["helloworld"], world.exe_key)
            served.append(process.processid)
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)

    t = _start(executor)
    spec = func_spec("helloworld", [], world.colony, "cli", priority=200, maxexectime=10, maxretries=3,
                     maxwaittime=100)
    process = pc.submit_func_spec(spec, world.user_key)
    assert process.state == 0 and process.spec.priority == 200
    done = pc.wait(process, 10, world.user_key)
    t.join(15)
    assert not t.is_alive() and not errors, errors
    assert served == [process.processid]
    assert done.state == 2 and done.output == ["helloworld"]
    logs = pc.get_process_log(world.colony, process.processid, 100, -1, world.user_key)
    assert [log["message"] for log in logs] == ["Hello from executor\n"]
    assert logs[0]["executorname"] == world.exe and logs[0]["processid"] == process.processid
    funcs = pc.get_functions_by_executor(world.colony, world.exe, world.user_key)
    assert [(f["funcname"], f["counter"]) for f in funcs] == [("helloworld", 1)]
    assert [f["funcname"] for f in pc.get_functions_by_colony(world.colony, world.user_key)] == ["helloworld"]


def test_wait_on_already_successful_process_returns_at_once(world: World) -> None:
    pc = world.pc
    process = world.submit()
    pc.assign(world.colony, -1, world.exe_key)
    pc.close(process.processid, ["done"], world.exe_key)
    assert pc.wait(process, 10, world.user_key).output == ["done"]


# 4. Assign semantics -------------------------------------------------------------------------------------


def test_assign_timeout_zero_is_an_error(world: World, rpc: Rpc) -> None:
    with pytest.raises(ColoniesConnectionError):
        world.pc.assign(world.colony, 0, world.exe_key)
    reply = rpc.assign(world.colony, world.exe_key, timeout=0)
    assert reply.status == 400 and reply.error, reply.describe()


def test_assign_minus_one_on_empty_queue(world: World, rpc: Rpc) -> None:
    with pytest.raises(ColoniesConnectionError, match="No process available for assignment"):
        world.pc.assign(world.colony, -1, world.exe_key)
    reply = rpc.assign(world.colony, world.exe_key, timeout=-1)
    # Clients (pycolonies executors) look for this text inside the error message.
    assert reply.status == 404 and "No process available for assignment" in reply.message, reply.describe()


def test_long_poll_assign_is_woken_by_submit(world: World) -> None:
    pc = world.pc
    result: list[Any] = []
    calling = threading.Event()

    def executor() -> None:
        calling.set()
        try:
            result.append(pc.assign(world.colony, 10, world.exe_key))
        except BaseException as e:
            result.append(e)

    t = _start(executor)
    assert calling.wait(5)
    # Best effort: give the long-poll time to park (assign refreshes lastheardfromtime); the test is
    # correct either way, it is just a stronger test when the assign is already parked.
    try:
        poll(lambda: pc.get_executor(world.colony, world.exe, world.user_key)["lastheardfromtime"],
             lambda t: not str(t).startswith("0001"), timeout=2)
    except AssertionError:
        pass
    process = world.submit()
    t.join(12)
    assert not t.is_alive()
    assert len(result) == 1 and not isinstance(result[0], BaseException), result
    assert result[0].processid == process.processid and result[0].state == 1


def test_priority_ordering_and_fifo(world: World) -> None:
    pc = world.pc
    low = world.submit(priority=0)
    high = world.submit(priority=10)
    first_a = world.submit(priority=5)
    first_b = world.submit(priority=5)
    order = [pc.assign(world.colony, -1, world.exe_key).processid for _ in range(4)]
    assert order == [high.processid, first_a.processid, first_b.processid, low.processid]


def test_executornames_targeting(world: World) -> None:
    pc = world.pc
    b_name, b_key = world.new_executor()
    targeted = world.submit(executorname=b_name)
    assert targeted.spec.conditions.executornames == [b_name]
    with pytest.raises(ColoniesConnectionError, match="No process available"):
        pc.assign(world.colony, -1, world.exe_key)
    assert pc.assign(world.colony, -1, b_key).processid == targeted.processid


def test_executortype_mismatch_never_assigned(world: World) -> None:
    pc = world.pc
    other = world.submit(executortype="gpu-box")
    with pytest.raises(ColoniesConnectionError, match="No process available"):
        pc.assign(world.colony, -1, world.exe_key)
    # Even when targeted by name, the type must match.
    world.submit(executortype="gpu-box", executorname=world.exe)
    with pytest.raises(ColoniesConnectionError, match="No process available"):
        pc.assign(world.colony, -1, world.exe_key)
    gpu_name, gpu_key = world.new_executor("gpu-box")
    assert pc.assign(world.colony, -1, gpu_key).processid == other.processid


# 5. Close / fail rules -----------------------------------------------------------------------------------


def test_close_and_fail_counts_match_stats_and_lists(world: World) -> None:
    pc = world.pc
    procs = [world.submit() for _ in range(4)]
    assigned = [pc.assign(world.colony, -1, world.exe_key) for _ in range(3)]
    assert [p.processid for p in assigned] == [p.processid for p in procs[:3]]
    pc.close(assigned[0].processid, ["ok"], world.exe_key)
    pc.fail(assigned[1].processid, ["boom"], world.exe_key)
    stats = pc.stats(world.colony, world.user_key)
    assert (stats["waitingprocesses"], stats["runningprocesses"], stats["successfulprocesses"],
            stats["failedprocesses"]) == (1, 1, 1, 1)
    for state, expected in ((0, procs[3]), (1, assigned[2]), (2, assigned[0]), (3, assigned[1])):
        listed = pc.list_processes(world.colony, 100, state, world.user_key)
        assert [p["processid"] for p in listed] == [expected.processid], state
    failed = pc.get_process(assigned[1].processid, world.user_key)
    assert failed.state == 3 and failed.errors == ["boom"]
    ok = pc.get_process(assigned[0].processid, world.user_key)
    assert ok.state == 2 and ok.output == ["ok"] and ok.endtime.year > ZERO_TIME_YEAR


def test_close_rules(world: World) -> None:
    pc = world.pc
    other_name, other_key = world.new_executor()
    process = world.submit()
    with pytest.raises(ColoniesConnectionError):
        pc.close(process.processid, [], world.exe_key)  # never assigned
    with pytest.raises(ColoniesConnectionError):
        pc.set_output(process.processid, ["x"], world.exe_key)  # waiting
    pc.assign(world.colony, -1, world.exe_key)
    with pytest.raises(ColoniesConnectionError):
        pc.close(process.processid, [], other_key)
    with pytest.raises(ColoniesConnectionError):
        pc.close(process.processid, [], world.user_key)
    with pytest.raises(ColoniesConnectionError):
        pc.fail(process.processid, ["no"], world.user_key)
    pc.set_output(process.processid, ["partial", 1], world.exe_key)
    assert pc.get_process(process.processid, world.user_key).output == ["partial", 1]
    pc.close(process.processid, [], world.exe_key)
    done = pc.get_process(process.processid, world.user_key)
    assert done.state == 2 and done.output == ["partial", 1]  # empty out keeps the set output
    pc.close(process.processid, ["again"], world.exe_key)  # quirk 8: closing a SUCCESS process again works
    with pytest.raises(ColoniesConnectionError):
        pc.fail(process.processid, ["late"], world.exe_key)
    assert pc.get_process(process.processid, world.user_key).state == 2

    failed = world.submit()
    pc.assign(world.colony, -1, world.exe_key)
    pc.fail(failed.processid, ["e1"], world.exe_key)
    with pytest.raises(ColoniesConnectionError):
        pc.close(failed.processid, ["x"], world.exe_key)
    with pytest.raises(ColoniesConnectionError):
        pc.fail(failed.processid, ["e2"], world.exe_key)
    assert pc.get_process(failed.processid, world.user_key).errors == ["e1"]


# 6. maxexectime / 7. maxwaittime ---------------------------------------------------------------------------


def test_maxexectime_requeues_then_fails(world: World) -> None:
    pc = world.pc
    other_name, other_key = world.new_executor()
    process = world.submit(maxexectime=1, maxretries=1)
    assert pc.assign(world.colony, -1, world.exe_key).processid == process.processid
    requeued = poll(lambda: pc.get_process(process.processid, world.user_key), lambda p: p.state == 0,
                    timeout=10, what="re-queue after maxexectime")
    assert requeued.retries == 1 and requeued.assignedexecutorid == "" and not requeued.isassigned
    with pytest.raises(ColoniesConnectionError):
        pc.close(process.processid, ["late"], world.exe_key)
    assert pc.assign(world.colony, -1, other_key).processid == process.processid
    failed = poll(lambda: pc.get_process(process.processid, world.user_key), lambda p: p.state == 3,
                  timeout=10, what="failure after maxretries")
    assert failed.errors == ["Maximum execution time limit exceeded"]
    assert failed.retries == 1
    with pytest.raises(ColoniesConnectionError):
        pc.close(process.processid, ["late"], other_key)


def test_funcspec_defaults_maxexectime_zero_fail_after_assignment(world: World) -> None:
    """Quirk 9: FuncSpec() defaults (maxexectime=0, maxretries=0) mean the deadline has already passed."""
    pc = world.pc
    spec = FuncSpec(funcname="zero", conditions=Conditions(colonyname=world.colony, executortype="cli"))
    process = pc.submit_func_spec(spec, world.user_key)
    pc.assign(world.colony, -1, world.exe_key)
    failed = poll(lambda: pc.get_process(process.processid, world.user_key), lambda p: p.state == 3,
                  timeout=10, what="maxexectime=0 failure")
    assert failed.errors == ["Maximum execution time limit exceeded"]


def test_maxwaittime_fails_waiting_process_and_wait_returns(world: World) -> None:
    pc = world.pc
    process = world.submit(executortype="nobody-has-this", maxwaittime=1)
    assert process.waitdeadline.year > ZERO_TIME_YEAR
    # Our documented deviation (docs/SERVER.md): wait() also ends when the process fails.
    done = pc.wait(process, 10, world.user_key)
    assert done.state == 3 and done.errors == ["Maximum waiting time limit exceeded"]
    assert pc.get_process(process.processid, world.user_key).state == 3
    # Waiting on an already failed process also returns at once.
    assert pc.wait(process, 10, world.user_key).state == 3


# 10. Logs & attributes ------------------------------------------------------------------------------------


def test_logs(world: World) -> None:
    pc = world.pc
    other_name, other_key = world.new_executor()
    process = world.submit()
    with pytest.raises(ColoniesConnectionError):
        pc.add_log(process.processid, "too early", world.exe_key)
    pc.assign(world.colony, -1, world.exe_key)
    pc.add_log(process.processid, "line 1\n", world.exe_key)
    pc.add_log(process.processid, "line 2\n", world.exe_key)
    with pytest.raises(ColoniesConnectionError):
        pc.add_log(process.processid, "intruder", other_key)
    with pytest.raises(ColoniesConnectionError):
        pc.add_log(process.processid, "submitter", world.user_key)
    logs = pc.get_process_log(world.colony, process.processid, 100, -1, world.user_key)
    assert [log["message"] for log in logs] == ["line 1\n", "line 2\n"]
    assert logs[0]["timestamp"] <= logs[1]["timestamp"]
    since = pc.get_process_log(world.colony, process.processid, 100, logs[0]["timestamp"], world.user_key)
    assert [log["message"] for log in since] == ["line 2\n"]
    by_exe = pc.get_executor_log(world.colony, world.exe, 100, -1, world.user_key)
    assert [log["message"] for log in by_exe] == ["line 1\n", "line 2\n"]
    assert pc.get_executor_log(world.colony, other_name, 100, -1, world.user_key) is None
    with pytest.raises(ColoniesConnectionError):
        pc.get_process_log(world.colony, process.processid, 501, -1, world.user_key)
    pc.close(process.processid, [], world.exe_key)
    with pytest.raises(ColoniesConnectionError):
        pc.add_log(process.processid, "after close", world.exe_key)


def test_executor_logs_stay_in_their_colony(world: World, pc: Colonies) -> None:
    # Deviation (docs/SERVER.md): upstream answers with the logs of every executor of that name.
    process = world.submit()
    pc.assign(world.colony, -1, world.exe_key)
    pc.add_log(process.processid, "secret of colony A\n", world.exe_key)
    other = World(pc, fresh("test"), new_prvkey(), world.exe, "", fresh("user"), new_prvkey())
    pc.add_colony({"colonyid": id_from_prvkey(other.colony_key), "name": other.colony}, SERVER_PRVKEY)
    other.exe_key = new_prvkey()  # an executor of the same name in another colony
    pc.add_executor({"executorid": id_from_prvkey(other.exe_key), "executortype": "cli",
                     "executorname": world.exe, "colonyname": other.colony}, other.colony_key)
    pc.approve_executor(other.colony, world.exe, other.colony_key)
    pc.add_user({"colonyname": other.colony, "userid": id_from_prvkey(other.user_key), "name": other.user,
                 "email": "u@example.com", "phone": ""}, other.colony_key)
    assert pc.get_executor_log(other.colony, world.exe, 100, -1, other.user_key) is None
    mine = pc.get_executor_log(world.colony, world.exe, 100, -1, world.user_key)
    assert [log["message"] for log in mine] == ["secret of colony A\n"]


def test_subscribe_channel_is_refused_not_left_waiting(world: World) -> None:
    """pycolonies' subscribe_channel() waits for a frame; an ignored message left it hanging."""
    from pycolonies import ColoniesError

    process = world.submit()
    outcome: list[BaseException] = []

    def subscribe() -> None:
        try:
            world.pc.subscribe_channel(process.processid, "chat", world.user_key, timeout=2)
        except BaseException as e:  # noqa: BLE001 - the outcome is the test's
            outcome.append(e)

    t = _start(subscribe)
    t.join(10)
    assert not t.is_alive(), "subscribe_channel is still waiting"
    assert isinstance(outcome[0], ColoniesError) and "not supported by this server" in str(outcome[0])


def test_attributes(world: World) -> None:
    pc = world.pc
    spec = world.spec()
    spec.env = {"color": "blue"}
    process = pc.submit_func_spec(spec, world.user_key)
    assert process.spec.env == {"color": "blue"}
    with pytest.raises(ColoniesConnectionError):
        pc.add_attribute(process.processid, "k", "v", world.exe_key)  # waiting
    pc.assign(world.colony, -1, world.exe_key)
    attr = pc.add_attribute(process.processid, "result", "42", world.exe_key)
    assert attr["key"] == "result" and attr["value"] == "42" and attr["attributetype"] == 1
    assert len(attr["attributeid"]) == 64 and attr["targetid"] == process.processid
    got = pc.get_process(process.processid, world.user_key)
    pairs = {(a.key, a.value, a.attributetype) for a in got.attributes}
    assert pairs == {("color", "blue", 3), ("result", "42", 1)}
    assert got.spec.env == {"color": "blue"}
    assert pc.get_attribute(attr["attributeid"], world.user_key)["value"] == "42"
    with pytest.raises(ColoniesConnectionError):
        pc.add_attribute(process.processid, "result", "43", world.exe_key)  # duplicate key
    with pytest.raises(ColoniesConnectionError):
        pc.add_attribute(process.processid, "other", "1", world.user_key)  # not the assigned executor


# 12. Role refusals ---------------------------------------------------------------------------------------


def test_role_refusals(world: World, pc: Colonies) -> None:
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        world.submit(key=world.colony_key)
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        pc.remove_all_processes(world.colony, world.exe_key)
    user_key = new_prvkey()
    user = {"colonyname": world.colony, "userid": id_from_prvkey(user_key), "name": "alice",
            "email": "", "phone": ""}
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        pc.add_user(user, SERVER_PRVKEY)
    assert pc.add_user(user, world.colony_key)["name"] == "alice"
    assert "alice" in [u["name"] for u in pc.get_users(world.colony, user_key)]
    process = world.submit(key=user_key)
    assert process.initiatorname == "alice" and process.initiatorid == id_from_prvkey(user_key)
    assert pc.get_process(process.processid, user_key).processid == process.processid
    with pytest.raises(ColoniesConnectionError):
        pc.assign(world.colony, -1, user_key)  # a user is a member but not an executor
    pc.assign(world.colony, -1, world.exe_key)
    pc.close(process.processid, ["r"], world.exe_key)
    assert pc.wait(process, 10, user_key).output == ["r"]

    rejected, rejected_key = world.new_executor(approve=False)
    pc.reject_executor(world.colony, rejected, world.colony_key)
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        world.submit(key=rejected_key)

    # An executor of colony B cannot read a process of colony A.
    b_key = new_prvkey()
    b = fresh("colonyb")
    pc.add_colony({"colonyid": id_from_prvkey(b_key), "name": b}, SERVER_PRVKEY)
    b_exe_key = new_prvkey()
    pc.add_executor({"executorid": id_from_prvkey(b_exe_key), "executortype": "cli", "executorname": "bx",
                     "colonyname": b}, b_key)
    pc.approve_executor(b, "bx", b_key)
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        pc.get_process(process.processid, b_exe_key)
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        pc.list_processes(world.colony, 10, 2, b_exe_key)
    with pytest.raises(ColoniesConnectionError):
        pc.assign(world.colony, -1, b_exe_key)
    pc.remove_all_processes(world.colony, world.colony_key)  # the colony owner may


# 13. Executor removal re-queue -----------------------------------------------------------------------------


def test_executor_removal_requeues(world: World) -> None:
    pc = world.pc
    other_name, other_key = world.new_executor()
    process = world.submit()
    assert pc.assign(world.colony, -1, world.exe_key).processid == process.processid
    pc.remove_executor(world.colony, world.exe, world.colony_key)
    back = pc.get_process(process.processid, world.user_key)
    assert back.state == 0 and not back.isassigned and back.assignedexecutorid == "" and back.retries == 0
    with pytest.raises(ColoniesConnectionError):
        pc.assign(world.colony, -1, world.exe_key)  # unregistered executors are not members
    assert pc.assign(world.colony, -1, other_key).processid == process.processid
    states = {e["executorname"]: e["state"] for e in pc.list_executors(world.colony, other_key)}
    assert states[world.exe] == 3
    # The module server runs with --dev, which (like the compose env) allows re-registering a name.
    new_key = new_prvkey()
    again = pc.add_executor({"executorid": id_from_prvkey(new_key), "executortype": "cli",
                             "executorname": world.exe, "colonyname": world.colony}, world.colony_key)
    assert again["state"] == 0 and again["executorid"] == id_from_prvkey(new_key)
    names = [e["executorname"] for e in pc.list_executors(world.colony, other_key)]
    assert names.count(world.exe) == 1


def test_reregistering_a_name_fails_by_default(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = start_server(tmp_path_factory, dev=False, server_id=SERVER_ID)
    try:
        pc = Colonies(srv.handle.host, srv.handle.port)
        colony_key = new_prvkey()
        pc.add_colony({"colonyid": id_from_prvkey(colony_key), "name": "c"}, SERVER_PRVKEY)
        executor = {"executorid": id_from_prvkey(new_prvkey()), "executortype": "cli", "executorname": "x",
                    "colonyname": "c"}
        pc.add_executor(executor, colony_key)
        pc.remove_executor("c", "x", colony_key)
        with pytest.raises(ColoniesConnectionError, match="already exists"):
            pc.add_executor(dict(executor, executorid=id_from_prvkey(new_prvkey())), colony_key)
    finally:
        srv.stop()


def test_list_processes_empty_is_null(world: World) -> None:
    """Quirk 5: empty object lists are null (pycolonies returns None)."""
    assert world.pc.list_processes(world.colony, 10, 0, world.user_key) is None


# Quirks (§8) pycolonies depends on ---------------------------------------------------------------------


def test_fail_with_null_errors_keeps_arrays(world: World, rpc: Rpc) -> None:
    """Quirk 4: a closefailedmsg with "errors": null must not produce errors: null (pycolonies cannot parse it)."""
    process = world.submit()
    world.pc.assign(world.colony, -1, world.exe_key)
    reply = rpc.call({"msgtype": "closefailedmsg", "processid": process.processid, "errors": None}, world.exe_key)
    assert reply.status == 200 and not reply.error, reply.describe()
    raw = rpc.get_process(process.processid, world.user_key)
    for key in ("parents", "children", "errors", "attributes", "in", "out"):
        assert isinstance(raw[key], list), (key, raw[key])
    assert isinstance(raw["spec"]["conditions"]["dependencies"], list)
    failed = world.pc.get_process(process.processid, world.user_key)
    assert failed.state == 3 and failed.errors == []


def test_fresh_process_shape(world: World, rpc: Rpc) -> None:
    """§5.6: values right after submit, as pycolonies' Process model and executors read them."""
    process = rpc.submit(world.colony, world.user_key, "cli")
    assert (process["state"], process["isassigned"], process["assignedexecutorid"], process["retries"]) \
        == (0, False, "", 0)
    for key in ("starttime", "endtime", "execdeadline", "waitdeadline"):
        assert process[key].startswith("0001-01-01T00:00:00"), (key, process[key])
    assert process["parents"] == [] and process["children"] == [] and process["processgraphid"] == ""
    assert process["in"] == [] and process["out"] == [] and process["errors"] == []
    assert process["waitforparents"] is False and len(process["processid"]) == 64
    assert process["spec"]["conditions"]["dependencies"] == [] and process["spec"]["env"] == {}


def test_remove_all_processes_spares_workflows(world: World) -> None:
    """Quirk 12: removeallprocessesmsg never touches workflow processes."""
    from model import Workflow

    pc = world.pc
    standalone = world.submit()
    graph = pc.submit_workflow(Workflow(colonyname=world.colony, functionspecs=[world.spec("solo")]),
                               world.user_key)
    pc.remove_all_processes(world.colony, world.colony_key)
    with pytest.raises(ColoniesConnectionError):
        pc.get_process(standalone.processid, world.user_key)
    assert pc.get_process(graph.processids[0], world.user_key).state == 0
    assert pc.get_processgraph(graph.processgraphid, world.user_key).state == 0


def test_remove_process_rules(world: World) -> None:
    pc = world.pc
    waiting = world.submit()
    running = world.submit()
    pc.assign(world.colony, -1, world.exe_key)  # takes `waiting` (FIFO)
    with pytest.raises(ColoniesConnectionError):
        pc.remove_process(waiting.processid, world.user_key)  # running now
    pc.remove_process(running.processid, world.user_key)
    with pytest.raises(ColoniesConnectionError):
        pc.get_process(running.processid, world.user_key)


def test_get_processes_for_workflow_extension(world: World) -> None:
    """Quirk 10: upstream always refuses state -1; our server lists a workflow's processes (documented extension)."""
    from model import Workflow

    pc = world.pc
    spec2 = world.spec("second")
    spec2.conditions.dependencies = ["first"]
    graph = pc.submit_workflow(Workflow(colonyname=world.colony, functionspecs=[world.spec("first"), spec2]),
                               world.user_key)
    world.submit()  # not part of the workflow
    listed = pc.get_processes_for_workflow(graph.processgraphid, world.colony, world.user_key)
    assert sorted(p["processid"] for p in listed) == sorted(graph.processids)
    with pytest.raises(ColoniesConnectionError):
        pc.list_processes(world.colony, 10, -1, world.user_key)  # -1 without a graph stays refused
    with pytest.raises(ColoniesConnectionError):
        pc.list_processes(world.colony, 101, 0, world.user_key)  # count > 100


def test_wait_on_unfinished_process_ends_at_its_timeout(world: World) -> None:
    """The subscription lives `timeout` seconds; pycolonies' wait() then returns or raises, never hangs."""
    process = world.submit(executortype="nobody-has-this")
    outcome: list[Any] = []

    def waiter() -> None:
        with warnings.catch_warnings():
            # websocket-client 1.9 never closes its socket when the server ends the subscription first
            # (close() is a no-op once it has answered the server's close frame, and the exception path
            # of upstream's plain TCP drop skips it too): the leak is the client's, not the server's.
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                outcome.append(world.pc.wait(process, 1, world.user_key))
            except Exception as e:  # websocket closed without a close frame: upstream behaviour
                outcome.append(type(e).__name__)
            gc.collect()

    t = _start(waiter)
    t.join(15)
    assert not t.is_alive(), "wait() did not end after its 1 s timeout"
    assert len(outcome) == 1
    if not isinstance(outcome[0], str):
        assert outcome[0].state == 0
    # pycolonies' wait() leaves its websocket open when recv() raises; the exception's traceback keeps it
    # alive, and its ResourceWarning would otherwise surface in whichever later test collects it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        outcome.clear()
        gc.collect()


def test_subscribe_error_frame_keeps_socket_open(world: World, module_server: ServerHandle) -> None:
    """§1.4: an unknown process id gets an error frame; the socket keeps reading."""
    from websocket import WebSocketTimeoutException, create_connection

    from tests.colonies_server.conftest import envelope

    done = world.submit()
    world.pc.assign(world.colony, -1, world.exe_key)
    world.pc.close(done.processid, ["ok"], world.exe_key)
    ws = create_connection(f"ws://{module_server.host}:{module_server.port}/pubsub", timeout=10)
    try:
        unknown = {"msgtype": "subscribeprocessmsg", "processid": "0" * 64, "executortype": "cli", "state": 2,
                   "timeout": 5, "colonyname": world.colony}
        ws.send(json.dumps(envelope(unknown, world.user_key)))
        frame = json.loads(ws.recv())
        assert frame["error"] is True
        err = json.loads(base64.b64decode(frame["payload"]))
        assert err["status"] == 403 and "Invalid process" in err["message"], err
        # The socket must stay open and quiet (no close) after the error frame.
        ws.settimeout(0.5)
        try:
            extra: str | None = ws.recv()
        except WebSocketTimeoutException:
            extra = None
        assert extra is None, f"after the error frame the server sent {extra!r} ('' = it closed the socket)"
        ws.settimeout(10)
        good = dict(unknown, processid=done.processid)
        ws.send(json.dumps(envelope(good, world.user_key)))
        frame = json.loads(ws.recv())
        assert frame["error"] is False and frame["payloadtype"] == "subscribeprocessmsg"
        process = json.loads(base64.b64decode(frame["payload"]))
        assert process["processid"] == done.processid and process["state"] == 2 and process["out"] == ["ok"]
    finally:
        ws.close()


def test_list_ordering_per_state(world: World) -> None:
    """§4.5: WAITING by prioritytime ascending, SUCCESS/FAILED by endtime descending."""
    pc = world.pc
    a, b, c = world.submit(), world.submit(priority=3), world.submit()
    waiting = [p["processid"] for p in pc.list_processes(world.colony, 10, 0, world.user_key)]
    assert waiting == [b.processid, a.processid, c.processid]
    for _ in range(3):
        p = pc.assign(world.colony, -1, world.exe_key)
        pc.close(p.processid, [], world.exe_key)
    done = [p["processid"] for p in pc.list_processes(world.colony, 10, 2, world.user_key)]
    assert done == [c.processid, a.processid, b.processid]
    assert [p["processid"] for p in pc.list_processes(world.colony, 2, 2, world.user_key)] == done[:2]


def test_logs_latest_and_search(world: World, rpc: Rpc) -> None:
    pc = world.pc
    process = world.submit()
    pc.assign(world.colony, -1, world.exe_key)
    for i in range(5):
        pc.add_log(process.processid, f"line {i} needle" if i == 3 else f"line {i}", world.exe_key)
    latest = rpc.ok({"msgtype": "getlogsmsg", "colonyname": world.colony, "processid": process.processid,
                     "executorname": "", "count": 2, "since": 0, "latest": True}, world.user_key)
    assert [log["message"] for log in latest] == ["line 3 needle", "line 4"]
    oldest = pc.get_process_log(world.colony, process.processid, 2, -1, world.user_key)
    assert [log["message"] for log in oldest] == ["line 0", "line 1"]
    found = rpc.ok({"msgtype": "searchlogsmsg", "colonyname": world.colony, "text": "needle", "days": 1,
                    "count": 10}, world.user_key)
    assert [log["message"] for log in found] == ["line 3 needle"]
