"""Workflow building and resolution (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from colonies_server.errors import RPCError
from colonies_server.procs import FAILED, RUNNING, SUCCESS, WAITING, normalize_spec
from colonies_server.workflows import build_workflow, graph_state, render_graph, resolve


def _spec(name: str, deps: list[str] | None = None) -> dict[str, Any]:
    return normalize_spec({"nodename": name, "funcname": name, "conditions": {"executortype": "t",
                           "dependencies": deps or []}}, workflow=True)


def test_build_diamond() -> None:
    graph, procs = build_workflow("dev", [_spec("a"), _spec("b", ["a"]), _spec("c", ["a"]), _spec("d", ["b", "c"])],
                                  "i" * 64, "me", 1_000)
    by = {p["spec"]["nodename"]: p for p in procs}
    assert graph["rootprocessids"] == [by["a"]["processid"]]
    assert graph["processids"] == [by[n]["processid"] for n in "abcd"]
    assert by["d"]["parents"] == [by["b"]["processid"], by["c"]["processid"]]
    assert by["a"]["children"] == [by["b"]["processid"], by["c"]["processid"]]
    assert [by[n]["waitforparents"] for n in "abcd"] == [False, True, True, True]
    assert all(p["processgraphid"] == graph["processgraphid"] for p in procs)
    assert all(p["spec"]["conditions"]["colonyname"] == "dev" for p in procs)
    assert all(p["spec"]["maxexectime"] == -1 for p in procs)  # 0 → -1 only for workflows


@pytest.mark.parametrize("specs,text", [
    ([{"nodename": ""}], "nodename is missing"),
    ([{"nodename": "a"}, {"nodename": "a"}], "Duplicate nodename: a"),
    ([{"nodename": "a", "deps": ["zz"]}], "invalid dependencies"),
])
def test_build_errors_are_500(specs: list[dict[str, Any]], text: str) -> None:
    with pytest.raises(RPCError, match=text) as e:
        build_workflow("dev", [_spec(s["nodename"], s.get("deps")) for s in specs], "i", "me", 0)
    assert e.value.status == 500


@pytest.mark.parametrize("specs,text", [
    ([], "no function specs"),
    ([{"nodename": "a", "deps": ["a"]}], "cycle: a -> a"),
    ([{"nodename": "a"}, {"nodename": "b", "deps": ["a", "d"]}, {"nodename": "c", "deps": ["b"]},
      {"nodename": "d", "deps": ["c"]}], "cycle: b -> d -> c -> b"),
])
def test_graphs_that_could_never_run_are_400(specs: list[dict[str, Any]], text: str) -> None:
    with pytest.raises(RPCError, match=text) as e:
        build_workflow("dev", [_spec(s["nodename"], s.get("deps")) for s in specs], "i", "me", 0)
    assert e.value.status == 400


def test_resolve_releases_children_when_all_parents_succeed() -> None:
    _, procs = build_workflow("dev", [_spec("a"), _spec("b"), _spec("c", ["a", "b"])], "i", "me", 0)
    procs[0]["state"] = SUCCESS
    released, failed, state = resolve(procs)
    assert (released, failed, state) == ([], [], RUNNING)
    procs[1]["state"] = SUCCESS
    released, failed, state = resolve(procs)
    assert [p["spec"]["nodename"] for p in released] == ["c"] and not procs[2]["waitforparents"]
    assert state == RUNNING


def test_resolve_failure_fails_the_whole_graph() -> None:
    _, procs = build_workflow("dev", [_spec("a"), _spec("b", ["a"])], "i", "me", 0)
    procs[0]["state"] = FAILED
    released, failed, state = resolve(procs)
    assert [p["spec"]["nodename"] for p in failed] == ["b"] and procs[1]["state"] == FAILED
    assert state == FAILED and released == []


def test_graph_state() -> None:
    assert graph_state([WAITING, WAITING]) == WAITING
    assert graph_state([RUNNING, WAITING]) == RUNNING
    assert graph_state([SUCCESS, WAITING]) == RUNNING
    assert graph_state([SUCCESS, SUCCESS]) == SUCCESS
    assert graph_state([SUCCESS, FAILED]) == FAILED


def test_render_graph_nodes_and_edges() -> None:
    graph, procs = build_workflow("dev", [_spec("a"), _spec("b", ["a"])], "i", "me", 0)
    out = render_graph(graph, procs)
    a, b = procs[0]["processid"], procs[1]["processid"]
    assert [n["type"] for n in out["nodes"]] == ["input", "output"]
    assert [n["data"]["label"] for n in out["nodes"]] == ["a", "b"]
    assert out["edges"] == [{"id": f"{a}-{b}", "source": a, "target": b, "animated": False}]
