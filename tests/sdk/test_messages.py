"""Every message builder sends what pycolonies 1.0.25 sends for the same call (captured from it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sdk import messages as m
from sdk import messages_cfs as mc
from sdk import messages_ext as mx
from sdk import messages_sched as ms
from sdk.call import Call
from sdk.errors import NotFoundError
from sdk.models import Colony, Conditions, FuncSpec, Process, User, WorkflowSpec

K = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
SPEC = FuncSpec(nodename="f", funcname="f", args=["a"], priority=1,
                conditions=Conditions(colonyname="dev", executortype="t"))


def pycolonies_msg(call: Callable[[Any], Any]) -> dict[str, Any]:
    """The message a pycolonies method would send (its private __rpc replaced by a recorder)."""
    from pycolonies import Colonies as PyColonies

    sent: list[dict[str, Any]] = []
    pc = PyColonies("127.0.0.1", 1)

    def record(msg: dict[str, Any], prvkey: str) -> Any:
        sent.append(msg)
        # Some pycolonies methods parse the reply into their models.
        return Process(processid="p", spec=SPEC).to_wire()

    pc._Colonies__rpc = record  # type: ignore[attr-defined]
    call(pc)
    assert len(sent) == 1
    return sent[0]


def wf() -> Any:
    import model as pyc

    return pyc.Workflow(colonyname="dev", functionspecs=[pyc.FuncSpec(**SPEC.to_wire())])


CASES: list[tuple[str, Callable[[Any], Any], Call[Any]]] = [
    ("add_colony", lambda pc: pc.add_colony({"colonyid": "c", "name": "dev"}, K),
     m.add_colony(Colony(colonyid="c", name="dev"))),
    ("del_colony", lambda pc: pc.del_colony("dev", K), m.remove_colony("dev")),
    ("list_colonies", lambda pc: pc.list_colonies(K), m.get_colonies()),
    ("get_colony", lambda pc: pc.get_colony("dev", K), m.get_colony("dev")),
    ("stats", lambda pc: pc.stats("dev", K), m.colony_stats("dev")),
    ("add_user", lambda pc: pc.add_user(User(colonyname="dev", userid="u", name="n").to_wire(), K),
     m.add_user(User(colonyname="dev", userid="u", name="n"))),
    ("get_users", lambda pc: pc.get_users("dev", K), m.get_users("dev")),
    ("remove_user", lambda pc: pc.remove_user("dev", "n", K), m.remove_user("dev", "n")),
    ("approve_executor", lambda pc: pc.approve_executor("dev", "e", K), m.approve_executor("dev", "e")),
    ("reject_executor", lambda pc: pc.reject_executor("dev", "e", K), m.reject_executor("dev", "e")),
    ("remove_executor", lambda pc: pc.remove_executor("dev", "e", K), m.remove_executor("dev", "e")),
    ("list_executors", lambda pc: pc.list_executors("dev", K), m.get_executors("dev")),
    ("get_executor", lambda pc: pc.get_executor("dev", "e", K), m.get_executor("dev", "e")),
    ("add_function", lambda pc: pc.add_function("dev", "e", "f", K), m.add_function("dev", "e", "f")),
    ("get_functions_by_executor", lambda pc: pc.get_functions_by_executor("dev", "e", K),
     m.get_functions("dev", "e")),
    ("get_functions_by_colony", lambda pc: pc.get_functions_by_colony("dev", K), m.get_functions("dev")),
    ("submit_func_spec", lambda pc: pc.submit_func_spec(__import__("model").FuncSpec(**SPEC.to_wire()), K),
     m.submit(SPEC)),
    ("assign", lambda pc: pc.assign("dev", 10, K), m.assign("dev", 10)),
    ("list_processes", lambda pc: pc.list_processes("dev", 10, 2, K), m.get_processes("dev", 2, 10)),
    ("get_process", lambda pc: pc.get_process("p", K), m.get_process("p")),
    ("get_processes_for_workflow", lambda pc: pc.get_processes_for_workflow("g", "dev", K, 50),
     m.get_processes("dev", -1, 50, processgraphid="g")),
    ("remove_process", lambda pc: pc.remove_process("p", K), m.remove_process("p")),
    ("remove_all_processes", lambda pc: pc.remove_all_processes("dev", K), m.remove_all_processes("dev")),
    ("close", lambda pc: pc.close("p", ["x", 2], K), m.close("p", ["x", 2])),
    ("fail", lambda pc: pc.fail("p", ["boom"], K), m.fail("p", ["boom"])),
    ("set_output", lambda pc: pc.set_output("p", [1], K), m.set_output("p", [1])),
    ("add_attribute", lambda pc: pc.add_attribute("p", "k", "v", K), m.add_attribute("p", "k", "v")),
    ("get_attribute", lambda pc: pc.get_attribute("a", K), m.get_attribute("a")),
    ("add_log", lambda pc: pc.add_log("p", "hi", K), m.add_log("p", "hi")),
    ("get_process_log", lambda pc: pc.get_process_log("dev", "p", 10, 5, K),
     m.get_logs("dev", processid="p", count=10, since=5)),
    ("get_executor_log", lambda pc: pc.get_executor_log("dev", "e", 10, 0, K),
     m.get_logs("dev", executorname="e", count=10)),
    ("get_processgraphs", lambda pc: pc.get_processgraphs("dev", 10, K, state=2),
     m.get_processgraphs("dev", 10, 2)),
    ("remove_processgraph", lambda pc: pc.remove_processgraph("g", K), m.remove_processgraph("g")),
    ("remove_all_processgraphs", lambda pc: pc.remove_all_processgraphs("dev", K, state=3),
     m.remove_all_processgraphs("dev", 3)),
    ("add_child", lambda pc: pc.add_child("g", "p", "c", __import__("model").FuncSpec(**SPEC.to_wire()),
                                          "f", False, K), m.add_child("g", "p", "c", SPEC)),
    ("get_file", lambda pc: pc.get_file("dev", K, label="/l", filename="x"), mc.get_file("dev", "/l", "x")),
    ("get_file_by_id", lambda pc: pc.get_file("dev", K, fileid="f", latest=False),
     mc.get_file_by_id("dev", "f")),
    ("get_files", lambda pc: pc.get_files("/l", "dev", K), mc.get_files("dev", "/l")),
    ("get_file_labels", lambda pc: pc.get_file_labels("dev", K, "/l", True),
     mc.get_file_labels("dev", "/l", True)),
    ("create_snapshot", lambda pc: pc.create_snapshot("dev", "/l", "s", K),
     mc.create_snapshot("dev", "/l", "s")),
    ("get_snapshots", lambda pc: pc.get_snapshots("dev", K), mc.get_snapshots("dev")),
    ("get_snapshot_by_name", lambda pc: pc.get_snapshot_by_name("dev", "s", K),
     mc.get_snapshot("dev", name="s")),
    ("get_snapshot_by_id", lambda pc: pc.get_snapshot_by_id("dev", "i", K),
     mc.get_snapshot("dev", snapshotid="i")),
    ("get_cron", lambda pc: pc.get_cron("c", K), ms.get_cron("c")),
    ("get_crons", lambda pc: pc.get_crons("dev", 10, K), ms.get_crons("dev", 10)),
    ("del_cron", lambda pc: pc.del_cron("c", K), ms.remove_cron("c")),
    ("run_cron", lambda pc: pc.run_cron("c", K), ms.run_cron("c")),
    ("get_generators", lambda pc: pc.get_generators("dev", K, 7), ms.get_generators("dev", 7)),
    ("get_generator", lambda pc: pc.get_generator("g", K), ms.get_generator("g")),
    ("add_generator", lambda pc: pc.add_generator({"name": "g"}, K), ms.add_generator({"name": "g"})),
    ("remove_generator", lambda pc: pc.remove_generator("g", K), ms.remove_generator("g")),
    ("channel_append", lambda pc: pc.channel_append("p", "c", 1, "hé", K, 0, "end"),
     mx.channel_append("p", "c", 1, "hé", 0, "end")),
    ("channel_read", lambda pc: pc.channel_read("p", "c", 2, 5, K), mx.channel_read("p", "c", 2, 5)),
    ("add_blueprint_definition", lambda pc: pc.add_blueprint_definition({"kind": "K"}, K),
     mx.add_blueprint_definition({"kind": "K"})),
    ("get_blueprint_definition", lambda pc: pc.get_blueprint_definition("dev", "d", K),
     mx.get_blueprint_definition("dev", "d")),
    ("get_blueprint_definitions", lambda pc: pc.get_blueprint_definitions("dev", K),
     mx.get_blueprint_definitions("dev")),
    ("remove_blueprint_definition", lambda pc: pc.remove_blueprint_definition("dev", "d", K),
     mx.remove_blueprint_definition("dev", "d")),
    ("add_blueprint", lambda pc: pc.add_blueprint({"kind": "K"}, K), mx.add_blueprint({"kind": "K"})),
    ("get_blueprint", lambda pc: pc.get_blueprint("dev", "b", K), mx.get_blueprint("dev", "b")),
    ("get_blueprints", lambda pc: pc.get_blueprints("dev", K, "K", "loc"),
     mx.get_blueprints("dev", "K", "loc")),
    ("update_blueprint", lambda pc: pc.update_blueprint({"kind": "K"}, K, True),
     mx.update_blueprint({"kind": "K"}, True)),
    ("remove_blueprint", lambda pc: pc.remove_blueprint("dev", "b", K), mx.remove_blueprint("dev", "b")),
    ("update_blueprint_status", lambda pc: pc.update_blueprint_status("dev", "b", {"s": 1}, K),
     mx.update_blueprint_status("dev", "b", {"s": 1})),
    ("reconcile_blueprint", lambda pc: pc.reconcile_blueprint("dev", "b", K, True),
     mx.reconcile_blueprint("dev", "b", True)),
    ("get_blueprint_history", lambda pc: pc.get_blueprint_history("b", K, 3),
     mx.get_blueprint_history("b", 3)),
]

# Fields pycolonies sends that the server ignores, or sends as null where we send "" (same meaning).
IGNORED = {"executorid"}


@pytest.mark.parametrize(("name", "theirs", "ours"), CASES, ids=[c[0] for c in CASES])
def test_same_message_as_pycolonies(name: str, theirs: Callable[[Any], Any], ours: Call[Any]) -> None:
    sent = pycolonies_msg(theirs)
    assert ours.msg["msgtype"] == sent["msgtype"]
    for key, value in sent.items():
        if key in IGNORED:
            continue
        assert key in ours.msg, f"{name}: we do not send {key}"
        assert ours.msg[key] == (value if value is not None else ours.msg[key]), f"{name}: {key}"
        if value is None:
            assert ours.msg[key] in ("", None), f"{name}: {key}"


def test_add_cron_sends_the_workflow_as_json_text_with_the_correct_flag_name() -> None:
    wf_spec = WorkflowSpec(colonyname="dev", functionspecs=[SPEC])
    sent = pycolonies_msg(lambda pc: pc.add_cron("c", "0/1 * * * * *", True, wf(), "dev", K))
    ours = ms.add_cron("dev", "c", wf_spec, "0/1 * * * * *", waitforprevprocessgraph=True).msg
    assert json.loads(ours["cron"]["workflowspec"]) == wf_spec.to_wire()
    assert json.loads(sent["cron"]["workflowspec"])["functionspecs"][0]["funcname"] == "f"
    # pycolonies misspells the flag (protocol §4.9), so the server never sees it; we spell it right.
    assert ours["cron"]["waitforprevprocessgraph"] is True
    for key in ("name", "colonyname", "interval", "cronexpression"):
        assert ours["cron"][key] == sent["cron"][key]


def test_deliberate_differences_from_pycolonies() -> None:
    # SDK-API: "remove all" means all states; pycolonies omits state, which the server reads as WAITING.
    assert m.remove_all_processgraphs("dev").msg["state"] == -1
    assert m.get_processgraphs("dev").msg["state"] == 0
    assert m.close("p").msg["out"] == []  # pycolonies would send null
    assert m.fail("p", "one error").msg["errors"] == ["one error"]


def test_parsers() -> None:
    assert m.assign("dev", 1).result(None) is None
    assert m.assign("dev", 1).none_if == m.NO_PROCESS
    assert m.get_colonies().result(None) == []
    assert m.get_process("p").result({"processid": "p", "state": 1}).state == 1
    assert mc.get_file("dev", "/l", "x").result([{"name": "x"}])[0].name == "x"
    with pytest.raises(NotFoundError):
        mc.get_file_by_id("dev", "f").result([])
    entries = mx.channel_read("p", "c").result([{"payload": [104, 105]}, {"payload": "aGk="}, {}])
    assert [e["payload"] for e in entries] == [b"hi", b"hi", b""]
    with pytest.raises(ValueError):
        mc.get_snapshot("dev")


def test_optional_fields() -> None:
    msg = m.assign("dev", 5, availablecpu="4000m", availablemem="8Gi").msg
    assert msg["availablecpu"] == "4000m" and msg["availablemem"] == "8Gi"
    assert m.get_processes("dev", 0, executortype="faas").msg["executortype"] == "faas"
    assert m.get_logs("dev", processid="p", latest=True).msg["latest"] is True
    assert m.heartbeat("dev", "e", 15).msg == {"msgtype": "executorheartbeatmsg", "colonyname": "dev",
                                               "executorname": "e", "lease": 15}
    assert m.submit(SPEC, prvkey="k").prvkey == "k"
    assert m.close_and_assign("p", "dev", 5, output=[1]).msg == {
        "msgtype": "closeandassignmsg", "processid": "p", "colonyname": "dev", "timeout": 5,
        "successful": True, "out": [1]}
    assert m.close_and_assign("p", "dev", 5, output=[1], slim=True).msg["assigned"] == "slim"
    assert m.close_many_and_assign([("p", [1], None)], "dev", -1, 1, slim=True).msg["assigned"] == "slim"
    assert "assigned" not in m.close_many_and_assign([("p", [1], None)], "dev", -1, 1).msg
    failed = m.close_and_assign("p", "dev", -1, errors="bad")
    assert failed.msg["successful"] is False and failed.msg["errors"] == ["bad"] and "out" not in failed.msg
    assert failed.result({"process": None}) is None
