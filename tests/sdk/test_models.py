"""Wire models: server JSON with nulls and zero times, round trips, and pycolonies' own models."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.models import (
    ZERO_TIME,
    Attribute,
    Colony,
    Conditions,
    Cron,
    Executor,
    ExecutorState,
    File,
    FileData,
    FuncSpec,
    Function,
    Generator,
    Label,
    Log,
    Process,
    ProcessGraph,
    ProcessState,
    Snapshot,
    Statistics,
    User,
    WorkflowSpec,
)

ZERO = "0001-01-01T00:00:00Z"

PROCESS = {
    "processid": "a" * 64, "initiatorid": "b" * 64, "initiatorname": "myuser", "assignedexecutorid": "",
    "isassigned": False, "state": 0, "prioritytime": 1767340750123456789,
    "submissiontime": "2026-01-02T08:19:10.123456789+01:00", "starttime": ZERO, "endtime": ZERO,
    "waitdeadline": "0001-01-01T00:00:00+00:53:28", "execdeadline": "0001-01-01T01:00:00+01:00",
    "retries": 0, "attributes": None,
    "spec": {"nodename": "f", "funcname": "f", "args": [1, "x", {"k": [1.5]}], "kwargs": None,
             "priority": 0, "maxwaittime": -1, "maxexectime": -1, "maxretries": 3,
             "conditions": {"colonyname": "dev", "executornames": None, "executortype": "faas",
                            "dependencies": None, "nodes": 0, "cpu": "0m", "processes": 0,
                            "processespernode": 0, "mem": "0Mi", "storage": "0Mi",
                            "gpu": {"name": "", "mem": "0Mi", "count": 0, "nodecount": 0}, "walltime": 0},
             "label": "", "fs": {"mount": "", "snapshots": None, "dirs": None}, "env": {}},
    "waitforparents": False, "parents": [], "children": None, "processgraphid": "",
    "in": None, "out": ["helloworld", 2], "errors": None,
}


def test_process_tolerates_nulls_zero_times_and_nanoseconds() -> None:
    p = Process.model_validate(PROCESS)
    assert p.state is ProcessState.WAITING
    assert p.attributes == [] and p.children == [] and p.errors == [] and p.input == []
    assert p.output == ["helloworld", 2]
    assert p.spec.conditions.dependencies == [] and p.spec.conditions.executornames is None
    assert p.starttime == ZERO_TIME and p.waitdeadline == ZERO_TIME and p.execdeadline == ZERO_TIME
    assert p.submissiontime == datetime(2026, 1, 2, 7, 19, 10, 123456, tzinfo=timezone.utc)
    assert p.spec.args[2] == {"k": [1.5]}


def test_process_round_trip_uses_wire_names() -> None:
    p = Process.model_validate(PROCESS)
    wire = p.to_wire()
    assert "in" in wire and "out" in wire and "input" not in wire
    assert wire["starttime"] == ZERO and wire["submissiontime"] == "2026-01-02T07:19:10.123456Z"
    assert Process.model_validate(wire) == p
    assert Process.model_validate_json(json.dumps(wire)) == p
    assert Process(input=[1], output=[2]).to_wire()["in"] == [1]


def test_pycolonies_parses_our_process_and_we_parse_its_process() -> None:
    import model as pyc  # pycolonies' models (site-packages module `model`)

    # pycolonies only accepts str/int args
    ours = Process.model_validate({**PROCESS, "spec": {**PROCESS["spec"], "args": [1, "x"]}})  # type: ignore[dict-item]
    theirs = pyc.Process(**ours.to_wire())
    assert theirs.output == ["helloworld", 2] and theirs.processid == ours.processid
    back = Process.model_validate(json.loads(theirs.model_dump_json(by_alias=True)))
    assert back.processid == ours.processid and back.output == ours.output
    assert back.submissiontime == ours.submissiontime


def test_funcspec_serialises_exactly_like_pycolonies_func_spec() -> None:
    from pycolonies import func_spec

    theirs = func_spec("helloworld", ["a", 1], "dev", "faas", executorname="e1", priority=5)
    ours = FuncSpec(nodename="helloworld", funcname="helloworld", args=["a", 1], priority=5,
                    conditions=Conditions(colonyname="dev", executortype="faas", executornames=["e1"]))
    assert ours.to_wire() == theirs.model_dump(by_alias=True)
    assert list(ours.to_wire()) == list(theirs.model_dump(by_alias=True))  # same key order


def test_funcspec_defaults_mean_no_limits() -> None:
    spec = FuncSpec(funcname="f")
    assert (spec.maxwaittime, spec.maxexectime, spec.maxretries) == (-1, -1, -1)
    assert spec.to_wire()["fs"] is None and spec.to_wire()["kwargs"] is None


def test_workflow_spec_matches_pycolonies_workflow() -> None:
    import model as pyc

    spec = FuncSpec(nodename="n2", funcname="f", conditions=Conditions(colonyname="dev", executortype="t",
                                                                       dependencies=["n1"]))
    ours = WorkflowSpec(colonyname="dev", functionspecs=[spec])
    theirs = pyc.Workflow(colonyname="dev", functionspecs=[pyc.FuncSpec(**spec.to_wire())])
    assert json.loads(theirs.model_dump_json(by_alias=True)) == ours.to_wire() | {
        "functionspecs": [spec.to_wire() | {"channels": []}]}


def test_executor_with_null_capabilities_and_unknown_fields() -> None:
    e = Executor.model_validate({
        "executorid": "e" * 64, "executortype": "faas", "executorname": "x", "colonyname": "dev", "state": 1,
        "requirefuncreg": False, "commissiontime": "2026-01-02T08:00:00Z", "lastheardfromtime": ZERO,
        "capabilities": {"hardware": None, "software": None}, "allocations": {"projects": None},
        "blueprintgen": 3})
    assert e.state is ExecutorState.APPROVED
    assert e.capabilities.hardware == [] and e.allocations.projects == {}
    assert e.to_wire()["blueprintgen"] == 3  # newer server fields survive a round trip
    assert Executor.model_validate(e.to_wire()) == e


def test_processgraph_and_nodes() -> None:
    g = ProcessGraph.model_validate({
        "processgraphid": "g" * 64, "initiatorid": "i", "initiatorname": "u", "colonyname": "dev",
        "rootprocessids": ["p1"], "state": 2, "submissiontime": ZERO, "starttime": ZERO, "endtime": ZERO,
        "processids": None,
        "nodes": [{"id": "p1", "data": {"label": "n1"}, "position": {"x": 0, "y": 100}, "type": "input",
                   "style": {"color": "", "background": "#00ff00"}}],
        "edges": [{"id": "p1-p2", "source": "p1", "target": "p2", "animated": False}]})
    assert g.state is ProcessState.SUCCESS and g.processids == []
    assert g.nodes[0].data.label == "n1" and g.edges[0].target == "p2"
    assert ProcessGraph.model_validate(g.to_wire()) == g


def test_file_layout_matches_pycolonies_file() -> None:
    import model as pyc

    wire = {"fileid": "f" * 64, "colonyname": "dev", "label": "/faas", "name": "x.py", "size": 3,
            "sequencenr": 7, "checksum": "c" * 64, "checksumalg": "SHA256",
            "ref": {"protocol": "s3", "s3object": {"server": "h", "port": 9000, "tls": False, "accesskey": "",
                                                   "secretkey": "", "region": "", "encryptionkey": "",
                                                   "encryptionalg": "", "object": "o" * 64, "bucket": "b"}},
            "added": "2026-01-02T08:19:10.5Z"}
    f = File.model_validate(wire)
    assert f.ref.s3object.port == 9000 and f.added.microsecond == 500000
    assert pyc.File(**f.to_wire()).ref.s3object.object == "o" * 64
    assert File.model_validate(f.to_wire()) == f
    assert File.model_validate({**wire, "added": None}).added == ZERO_TIME


@pytest.mark.parametrize(("model", "data"), [
    (Colony, {"colonyid": "c" * 64, "name": "dev"}),
    (User, {"colonyname": "dev", "userid": "u" * 64, "name": "u", "email": "e@x", "phone": "1"}),
    (Function, {"functionid": "f", "executorname": "e", "executortype": "t", "colonyname": "dev",
                "funcname": "f", "counter": 2, "minwaittime": 0.1, "maxwaittime": 0.2, "minexectime": 0.3,
                "maxexectime": 0.4, "avgwaittime": 0.15, "avgexectime": 0.35}),
    (Attribute, {"attributeid": "a" * 64, "targetid": "p", "targetcolonyname": "", "targetprocessgraphid": "",
                 "state": 1, "attributetype": 1, "key": "k", "value": "v"}),
    (Log, {"processid": "p", "colonyname": "dev", "executorname": "e", "message": "hi\n",
           "timestamp": 1767340750123456789}),
    (FileData, {"name": "x", "checksum": "c", "size": 1, "s3filename": "o"}),
    (Label, {"name": "/faas", "files": 2}),
    (Snapshot, {"snapshotid": "s", "colonyname": "dev", "label": "/l", "name": "n", "fileids": None,
                "added": ZERO}),
    (Statistics, {"colonies": 1, "executors": 2, "activeexecutors": 1, "unregisteredexecutors": 0,
                  "waitingprocesses": 3, "runningprocesses": 0, "successfulprocesses": 1,
                  "failedprocesses": 0, "waitingworkflows": 0, "runningworkflows": 0,
                  "successfulworkflows": 0, "failedworkflows": 0, "cancelledprocesses": 0}),
    (Cron, {"cronid": "c", "initiatorid": "i", "initiatorname": "u", "colonyname": "dev", "name": "n",
            "cronexpression": "0/1 * * * * *", "interval": -1, "random": False, "nextrun": ZERO,
            "lastrun": "2026-01-02T08:19:10Z", "workflowspec": "{}", "prevprocessgraphid": "",
            "waitforprevprocessgraph": False, "checkerperiod": 1000}),
    (Generator, {"generatorid": "g", "initiatorid": "i", "initiatorname": "u", "colonyname": "dev",
                 "name": "n", "workflowspec": "{}", "trigger": 10, "timeout": 5, "firstpack": ZERO,
                 "lastrun": ZERO, "queuesize": 0, "checkerperiod": 1000}),
])
def test_every_schema_round_trips(model: type, data: dict[str, object]) -> None:
    obj = model.model_validate(data)  # type: ignore[attr-defined]
    wire = obj.to_wire()
    for key, value in data.items():
        if value is not None:
            assert wire[key] == value, key
    assert model.model_validate(wire) == obj  # type: ignore[attr-defined]


def test_log_time_and_snapshot_nulls() -> None:
    log = Log(timestamp=1_000_000_000_123_000)
    assert log.time == datetime(1970, 1, 12, 13, 46, 40, 123, tzinfo=timezone.utc)
    assert Snapshot.model_validate({"fileids": None}).fileids == []


def test_states() -> None:
    assert [s.value for s in ProcessState] == [0, 1, 2, 3, 4]
    assert ProcessState.FAILED.is_final and not ProcessState.RUNNING.is_final
    assert [s.value for s in ExecutorState] == [0, 1, 2, 3]


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.builds(
    FuncSpec, nodename=_TEXT, funcname=_TEXT, args=st.lists(st.one_of(_TEXT, st.integers(-10**9, 10**9)), max_size=4),
    priority=st.integers(-50000, 50000), maxwaittime=st.integers(-1, 10**6), maxexectime=st.integers(-1, 10**6),
    maxretries=st.integers(-1, 100), label=_TEXT, env=st.dictionaries(_TEXT, _TEXT, max_size=3),
    conditions=st.builds(Conditions, colonyname=_TEXT, executortype=_TEXT,
                         executornames=st.none() | st.lists(_TEXT, max_size=2),
                         dependencies=st.lists(_TEXT, max_size=2), cpu=_TEXT, mem=_TEXT)))
def test_any_funcspec_survives_pycolonies(spec: FuncSpec) -> None:
    import model as pyc

    wire = spec.to_wire()
    assert pyc.FuncSpec(**wire).model_dump(by_alias=True) == wire
    assert FuncSpec.model_validate(json.loads(json.dumps(wire))) == spec
