"""Deadlines, leases and crons through the timers' run-once hooks (no sleeping: the clock is moved)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.colonies_server._rpc import DEV_PRVKEY, Served

SEC = 1_000_000_000


@pytest.fixture
def s(db_url: str) -> Iterator[Served]:
    served = Served(db_url, timer_period=3600, cron_period=3600)
    yield served
    served.close()


def _tick(s: Served, seconds: float = 0) -> dict[str, int]:
    s.runtime.clock_offset_ns += int(seconds * SEC)
    return s.run(s.app.timers.run_once())


def test_maxexectime_requeues_then_fails(s: Served) -> None:
    prv, _ = s.client.add_executor()
    p = s.client.submit(maxexectime=2, maxretries=1)
    s.client.assign(prv)
    assert _tick(s, 1)["exec"] == 0
    assert _tick(s, 2)["exec"] == 1
    q = s.client.get(p["processid"])
    assert (q["state"], q["retries"], q["assignedexecutorid"]) == (0, 1, "")
    status, message = s.client.err({"msgtype": "closesuccessfulmsg", "processid": p["processid"]}, prv)
    assert status == 403 and "not assigned" in message
    s.client.assign(prv)
    _tick(s, 3)
    q = s.client.get(p["processid"])
    assert (q["state"], q["errors"]) == (3, ["Maximum execution time limit exceeded"])


def test_maxwaittime_fails_waiting_process(s: Served) -> None:
    p = s.client.submit("nobody-runs-this", maxwaittime=2)
    _tick(s, 3)
    q = s.client.get(p["processid"])
    assert (q["state"], q["errors"]) == (3, ["Maximum waiting time limit exceeded"])


def test_lease_expiry_requeues_only_heartbeating_executors(s: Served) -> None:
    prv, name = s.client.add_executor()
    silent_prv, _ = s.client.add_executor()
    p = s.client.submit(maxretries=3)
    q = s.client.submit(maxretries=3)
    s.client.ok({"msgtype": "executorheartbeatmsg", "colonyname": "dev", "executorname": name, "lease": 2}, prv)
    assert s.client.assign(prv)["processid"] == p["processid"]
    assert s.client.assign(silent_prv)["processid"] == q["processid"]
    assert _tick(s, 1)["lease"] == 0
    s.client.ok({"msgtype": "executorheartbeatmsg", "colonyname": "dev", "executorname": name, "lease": 2}, prv)
    assert _tick(s, 1.5)["lease"] == 0  # the heartbeat renewed the lease
    assert _tick(s, 1)["lease"] == 1
    got = s.client.get(p["processid"])
    assert (got["state"], got["retries"], got["assignedexecutorid"]) == (0, 1, "")
    assert s.client.get(q["processid"])["state"] == 1  # never opted in: upstream behaviour


def test_lease_expiry_fails_after_maxretries(s: Served) -> None:
    prv, name = s.client.add_executor()
    p = s.client.submit(maxretries=0)
    s.client.ok({"msgtype": "executorheartbeatmsg", "colonyname": "dev", "executorname": name, "lease": 1}, prv)
    s.client.assign(prv)
    _tick(s, 2)
    got = s.client.get(p["processid"])
    assert got["state"] == 3 and "lease" in got["errors"][0]


def test_heartbeat_rules(s: Served) -> None:
    prv, name = s.client.add_executor()
    other, _ = s.client.add_executor()
    msg = {"msgtype": "executorheartbeatmsg", "colonyname": "dev", "executorname": name, "lease": 5}
    assert s.client.err(msg, other)[0] == 403  # SELF: only the named executor
    assert s.client.err(dict(msg, lease=0), prv)[0] == 400
    assert s.client.err(dict(msg, lease="x"), prv)[0] == 400
    assert s.client.ok(msg, prv) == {}


def test_cron_interval_and_expression(s: Served) -> None:
    wf = {"colonyname": "dev", "functionspecs": [
        {"nodename": "a", "funcname": "a", "conditions": {"executortype": "cron", "dependencies": []}},
        {"nodename": "b", "funcname": "b", "conditions": {"executortype": "cron", "dependencies": ["a"]}}]}
    cron = s.client.ok({"msgtype": "addcronmsg", "cron": {"name": "c1", "colonyname": "dev", "interval": -1,
                        "cronexpression": "0/1 * * * * *", "workflowspec": json.dumps(wf)}}, DEV_PRVKEY)
    assert s.run(s.app.timers.run_crons_once()) == 0  # first pass only schedules
    s.runtime.clock_offset_ns += 2 * SEC
    assert s.run(s.app.timers.run_crons_once()) == 1
    graphs = s.client.ok({"msgtype": "getprocessgraphsmsg", "colonyname": "dev", "count": 10, "state": 0}, DEV_PRVKEY)
    assert len(graphs) == 1 and len(graphs[0]["processids"]) == 2
    got = s.client.ok({"msgtype": "getcronmsg", "cronid": cron["cronid"]}, DEV_PRVKEY)
    assert got["prevprocessgraphid"] == graphs[0]["processgraphid"]
    ran = s.client.ok({"msgtype": "runcronmsg", "cronid": cron["cronid"]}, DEV_PRVKEY)
    assert ran["prevprocessgraphid"] != graphs[0]["processgraphid"]
    s.client.ok({"msgtype": "removecronmsg", "cronid": cron["cronid"], "all": False}, DEV_PRVKEY)
    assert s.client.ok({"msgtype": "getcronsmsg", "colonyname": "dev", "count": 10}, DEV_PRVKEY) == []
    bad = {"msgtype": "addcronmsg", "cron": {"name": "c2", "colonyname": "dev", "interval": -1,
                                              "cronexpression": "nope", "workflowspec": json.dumps(wf)}}
    assert s.client.err(bad, DEV_PRVKEY)[0] == 400
    assert s.client.err({"msgtype": "addcronmsg", "cron": dict(bad["cron"], interval=0)}, DEV_PRVKEY)[0] == 400


def test_cron_interval_triggers_after_the_interval(s: Served) -> None:
    wf = {"colonyname": "dev", "functionspecs": [
        {"nodename": "a", "funcname": "a", "conditions": {"executortype": "interval", "dependencies": []}}]}
    s.client.ok({"msgtype": "addcronmsg", "cron": {"name": "every5", "colonyname": "dev", "interval": 5,
                 "cronexpression": "", "workflowspec": json.dumps(wf)}}, DEV_PRVKEY)
    assert s.run(s.app.timers.run_crons_once()) == 0
    s.runtime.clock_offset_ns += 3 * SEC
    assert s.run(s.app.timers.run_crons_once()) == 0  # not yet
    s.runtime.clock_offset_ns += 3 * SEC
    assert s.run(s.app.timers.run_crons_once()) == 1


def test_cron_that_never_fires_is_refused(s: Served) -> None:
    wf = {"colonyname": "dev", "functionspecs": [
        {"nodename": "a", "funcname": "a", "conditions": {"executortype": "never", "dependencies": []}}]}
    cron = {"name": "feb31", "colonyname": "dev", "interval": -1, "cronexpression": "0 0 0 31 2 *",
            "workflowspec": json.dumps(wf)}
    assert s.client.err({"msgtype": "addcronmsg", "cron": cron}, DEV_PRVKEY)[0] == 400
    assert s.client.err({"msgtype": "addcronmsg", "cron": dict(cron, interval=10**12)}, DEV_PRVKEY)[0] == 400
