"""Protocol §9 items 8 (workflows), 9 (add_child) and 14 (cron) driven with pycolonies 1.0.25."""

from __future__ import annotations

from typing import Any

import pytest

from tests.colonies_server.conftest import World, fresh, poll

try:
    from model import Workflow
    from pycolonies import ColoniesConnectionError
except ImportError:  # pragma: no cover - the conftest's pc fixture skips (strict: fails) without it
    pass

ZERO_YEAR = 1


def two_node(world: World, executortype: str = "cli") -> Workflow:
    node1 = world.spec("node1", executortype)
    node2 = world.spec("node2", executortype)
    node2.conditions.dependencies = ["node1"]
    return Workflow(colonyname=world.colony, functionspecs=[node1, node2])


def _graph_ids(graphs: Any) -> list[str]:
    return [g["processgraphid"] for g in graphs or []]


def test_two_node_workflow_passes_output(world: World) -> None:
    pc = world.pc
    graph = pc.submit_workflow(two_node(world), world.user_key)
    assert graph.state == 0 and graph.colonyname == world.colony
    assert len(graph.processids) == 2 and len(graph.rootprocessids) == 1
    assert graph.starttime.year == ZERO_YEAR and graph.endtime.year == ZERO_YEAR

    node1 = pc.assign(world.colony, -1, world.exe_key)
    assert node1.spec.nodename == "node1" and node1.processid == graph.rootprocessids[0]
    assert node1.processgraphid == graph.processgraphid
    with pytest.raises(ColoniesConnectionError, match="No process available"):
        pc.assign(world.colony, -1, world.exe_key)  # node2 waits for its parent
    with pytest.raises(ColoniesConnectionError):
        pc.remove_process(node1.processid, world.user_key)  # workflow members cannot be removed alone
    pc.close(node1.processid, ["x", 2], world.exe_key)

    node2 = pc.assign(world.colony, -1, world.exe_key)
    assert node2.spec.nodename == "node2"
    assert node2.parents == [node1.processid]
    assert node2.input == ["x", 2]
    assert pc.get_processgraph(graph.processgraphid, world.user_key).state == 1
    pc.close(node2.processid, ["y"], world.exe_key)

    done = pc.get_processgraph(graph.processgraphid, world.user_key)
    assert done.state == 2 and done.endtime.year > ZERO_YEAR
    assert sorted(done.processids) == sorted(graph.processids)
    assert len(done.nodes) == 2 and len(done.edges) == 1
    assert (done.edges[0].source, done.edges[0].target) == (node1.processid, node2.processid)
    assert graph.processgraphid in _graph_ids(pc.get_processgraphs(world.colony, 100, world.user_key, state=2))
    # Quirk 11: no state means WAITING only.
    assert graph.processgraphid not in _graph_ids(pc.get_processgraphs(world.colony, 100, world.user_key))
    stats = pc.stats(world.colony, world.user_key)
    assert (stats["waitingworkflows"], stats["runningworkflows"], stats["successfulworkflows"],
            stats["failedworkflows"]) == (0, 0, 1, 0)
    assert stats["successfulprocesses"] == 2


def test_failed_parent_fails_workflow(world: World) -> None:
    pc = world.pc
    graph = pc.submit_workflow(two_node(world), world.user_key)
    assert graph.processgraphid in _graph_ids(pc.get_processgraphs(world.colony, 100, world.user_key))
    node1 = pc.assign(world.colony, -1, world.exe_key)
    pc.fail(node1.processid, ["broken"], world.exe_key)
    node2_id = next(pid for pid in graph.processids if pid != node1.processid)
    assert pc.get_process(node2_id, world.user_key).state == 3
    assert pc.get_processgraph(graph.processgraphid, world.user_key).state == 3
    with pytest.raises(ColoniesConnectionError, match="No process available"):
        pc.assign(world.colony, -1, world.exe_key)
    assert graph.processgraphid in _graph_ids(pc.get_processgraphs(world.colony, 100, world.user_key, state=3))
    pc.remove_processgraph(graph.processgraphid, world.user_key)
    with pytest.raises(ColoniesConnectionError):
        pc.get_processgraph(graph.processgraphid, world.user_key)
    with pytest.raises(ColoniesConnectionError):
        pc.get_process(node1.processid, world.user_key)


def test_add_child_waits_for_parent(world: World) -> None:
    pc = world.pc
    graph = pc.submit_workflow(two_node(world), world.user_key)
    node1 = pc.assign(world.colony, -1, world.exe_key)
    with pytest.raises(ColoniesConnectionError):
        pc.add_child(graph.processgraphid, node1.processid, "", world.spec("child"), "child", False,
                     world.user_key)  # only the executor assigned to the parent may add children
    child = pc.add_child(graph.processgraphid, node1.processid, "", world.spec("child"), "child", False,
                         world.exe_key)
    assert child["state"] == 0 and child["parents"] == [node1.processid]
    assert child["processgraphid"] == graph.processgraphid and child["spec"]["nodename"] == "child"
    with pytest.raises(ColoniesConnectionError, match="No process available"):
        pc.assign(world.colony, -1, world.exe_key)
    assert child["processid"] in pc.get_processgraph(graph.processgraphid, world.user_key).processids
    pc.close(node1.processid, ["from-parent"], world.exe_key)
    got = {}
    for _ in range(2):
        p = pc.assign(world.colony, -1, world.exe_key)
        got[p.spec.nodename] = p
    assert set(got) == {"node2", "child"}
    assert got["child"].processid == child["processid"] and got["child"].input == ["from-parent"]
    for p in got.values():
        pc.close(p.processid, [], world.exe_key)
    assert pc.get_processgraph(graph.processgraphid, world.user_key).state == 2


def test_cron_every_second_creates_graphs(world: World) -> None:
    pc = world.pc
    name = fresh("cron")
    cron = pc.add_cron(name, "0/1 * * * * *", True, two_node(world, "cron-only"), world.colony, world.user_key)
    assert cron["name"] == name and cron["colonyname"] == world.colony and len(cron["cronid"]) == 64
    assert cron["interval"] == -1 and cron["cronexpression"] == "0/1 * * * * *"
    assert pc.get_cron(cron["cronid"], world.user_key)["name"] == name
    assert [c["cronid"] for c in pc.get_crons(world.colony, 10, world.user_key)] == [cron["cronid"]]
    graphs = poll(lambda: pc.get_processgraphs(world.colony, 100, world.user_key), lambda g: bool(g),
                  timeout=10, what="a graph from the cron")
    assert graphs[0]["colonyname"] == world.colony and len(graphs[0]["processids"]) == 2
    pc.del_cron(cron["cronid"], world.user_key)
    with pytest.raises(ColoniesConnectionError):
        pc.get_cron(cron["cronid"], world.user_key)
    assert pc.get_crons(world.colony, 10, world.user_key) == []


def test_run_cron_triggers_immediately(world: World) -> None:
    pc = world.pc
    # Fires once a year (1 January, midnight), so any graph comes from run_cron.
    cron = pc.add_cron(fresh("cron"), "0 0 0 1 1 *", False, two_node(world, "cron-only"), world.colony,
                       world.user_key)
    assert pc.get_processgraphs(world.colony, 100, world.user_key) is None
    ran = pc.run_cron(cron["cronid"], world.user_key)
    assert ran["cronid"] == cron["cronid"]
    graphs = poll(lambda: pc.get_processgraphs(world.colony, 100, world.user_key), lambda g: bool(g),
                  timeout=10, what="a graph from run_cron")
    assert len(graphs) == 1
    pc.del_cron(cron["cronid"], world.user_key)


def test_bad_cron_expression_is_refused(world: World) -> None:
    with pytest.raises(ColoniesConnectionError):
        world.pc.add_cron(fresh("cron"), "not a cron", False, two_node(world), world.colony, world.user_key)


def test_add_child_insert_takes_over_children(world: World) -> None:
    """insert=True: the new process becomes the parent's only child and the parent of its old children."""
    pc = world.pc
    graph = pc.submit_workflow(two_node(world), world.user_key)
    node1 = pc.assign(world.colony, -1, world.exe_key)
    node2_id = next(pid for pid in graph.processids if pid != node1.processid)
    child = pc.add_child(graph.processgraphid, node1.processid, "", world.spec("inserted"), "inserted", True,
                         world.exe_key)
    assert pc.get_process(node1.processid, world.user_key).children == [child["processid"]]
    assert pc.get_process(node2_id, world.user_key).parents == [child["processid"]]
    pc.close(node1.processid, ["a"], world.exe_key)
    inserted = pc.assign(world.colony, -1, world.exe_key)
    assert inserted.processid == child["processid"] and inserted.input == ["a"]
    with pytest.raises(ColoniesConnectionError, match="No process available"):
        pc.assign(world.colony, -1, world.exe_key)  # node2 now waits for the inserted process
    pc.close(inserted.processid, ["b"], world.exe_key)
    node2 = pc.assign(world.colony, -1, world.exe_key)
    assert node2.processid == node2_id and node2.input == ["b"]


def test_add_child_to_finished_parent_is_refused(world: World) -> None:
    pc = world.pc
    graph = pc.submit_workflow(two_node(world), world.user_key)
    node1 = pc.assign(world.colony, -1, world.exe_key)
    pc.close(node1.processid, [], world.exe_key)
    with pytest.raises(ColoniesConnectionError):
        pc.add_child(graph.processgraphid, node1.processid, "", world.spec("late"), "late", False, world.exe_key)


def test_workflow_with_unknown_dependency_is_refused(world: World) -> None:
    pc = world.pc
    bad = two_node(world)
    bad.functionspecs[1].conditions.dependencies = ["no-such-node"]
    with pytest.raises(ColoniesConnectionError):
        pc.submit_workflow(bad, world.user_key)
    dup = two_node(world)
    dup.functionspecs[1].nodename = "node1"
    dup.functionspecs[1].conditions.dependencies = []
    with pytest.raises(ColoniesConnectionError):
        pc.submit_workflow(dup, world.user_key)
    # Nothing half-made is left behind (upstream leaves an orphan graph; a fix is welcome, not required).
    assert pc.list_processes(world.colony, 100, 0, world.user_key) is None


def test_cyclic_and_empty_workflows_are_refused(world: World) -> None:
    # Deviation (docs/SERVER.md): upstream stores them, and they wait forever.
    pc = world.pc
    cyclic = two_node(world)
    cyclic.functionspecs[0].conditions.dependencies = ["node2"]
    with pytest.raises(ColoniesConnectionError, match="form a cycle: node1 -> node2 -> node1"):
        pc.submit_workflow(cyclic, world.user_key)
    with pytest.raises(ColoniesConnectionError, match="no function specs"):
        pc.submit_workflow(Workflow(colonyname=world.colony, functionspecs=[]), world.user_key)
    assert pc.list_processes(world.colony, 100, 0, world.user_key) is None
    assert pc.get_processgraphs(world.colony, 100, world.user_key) is None


def test_workflow_child_fails_on_maxwaittime_while_blocked(world: World) -> None:
    """§4.8: a child still blocked by its parent is failed by maxwaittime like any waiting process."""
    pc = world.pc
    wf = two_node(world)
    wf.functionspecs[1].maxwaittime = 1
    graph = pc.submit_workflow(wf, world.user_key)
    node1 = pc.assign(world.colony, -1, world.exe_key)
    node2_id = next(pid for pid in graph.processids if pid != node1.processid)
    failed = poll(lambda: pc.get_process(node2_id, world.user_key), lambda p: p.state == 3, timeout=10,
                  what="blocked child failing on maxwaittime")
    assert failed.errors == ["Maximum waiting time limit exceeded"]
    assert pc.get_processgraph(graph.processgraphid, world.user_key).state == 3


def test_wait_on_child_ends_when_parent_fails(world: World) -> None:
    """docs/SERVER.md: processes failed by failure propagation are signalled, so wait() on them returns."""
    import threading

    pc = world.pc
    graph = pc.submit_workflow(two_node(world), world.user_key)
    node1 = pc.assign(world.colony, -1, world.exe_key)
    node2_id = next(pid for pid in graph.processids if pid != node1.processid)
    node2 = pc.get_process(node2_id, world.user_key)
    outcome: list[Any] = []
    calling = threading.Event()

    def waiter() -> None:
        calling.set()
        try:
            outcome.append(pc.wait(node2, 10, world.user_key))
        except Exception as e:
            outcome.append(repr(e))

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    assert calling.wait(5)
    pc.fail(node1.processid, ["parent broke"], world.exe_key)
    t.join(15)
    assert not t.is_alive()
    assert len(outcome) == 1 and not isinstance(outcome[0], str), outcome
    assert outcome[0].processid == node2_id and outcome[0].state == 3
