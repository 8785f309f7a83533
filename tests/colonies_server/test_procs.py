"""FuncSpec normalisation and the Process JSON shape."""

from __future__ import annotations

import pytest

from colonies_server.errors import RPCError
from colonies_server.procs import DAY_NS, attribute_id, new_process, normalize_spec, priority_time


def test_defaults_and_upstream_normalisations() -> None:
    s = normalize_spec({"conditions": {"executortype": "t", "cpu": "4", "mem": "8Gi", "executornames": ["*"]},
                        "env": {"A": "1"}})
    c = s["conditions"]
    assert (c["cpu"], c["mem"], c["storage"], c["gpu"]["mem"]) == ("4000m", "8192Mi", "0Mi", "0Mi")
    assert c["executornames"] == [] and c["dependencies"] == []
    assert s["maxexectime"] == 0 and s["kwargs"] is None and "channels" not in s
    assert normalize_spec({"conditions": {"cpu": "500m"}})["conditions"]["cpu"] == "500m"


@pytest.mark.parametrize("spec", [
    {"priority": 50001}, {"priority": "high"}, {"args": "x"}, {"conditions": {"mem": "8 lightyears"}},
    {"conditions": {"executornames": "bob"}}, {"env": {"a": 1}}, {"maxretries": 1.5}, "not an object",
])
def test_invalid_specs_are_400(spec: object) -> None:
    with pytest.raises(RPCError) as e:
        normalize_spec(spec)
    assert e.value.status == 400


def test_new_process_shape() -> None:
    s = normalize_spec({"priority": 2, "maxwaittime": 5, "conditions": {"colonyname": "dev", "executortype": "t"},
                        "env": {"K": "V"}})
    p = new_process(s, "i" * 64, "me", 10 * DAY_NS)
    for key in ("parents", "children", "errors", "in", "out", "attributes"):
        assert isinstance(p[key], list)
    assert p["prioritytime"] == priority_time(10 * DAY_NS, 2) == 8 * DAY_NS
    assert p["starttime"] == p["endtime"] == p["execdeadline"] == "0001-01-01T00:00:00Z"
    assert p["waitdeadline"] != "0001-01-01T00:00:00Z"
    attr = p["attributes"][0]
    assert (attr["key"], attr["value"], attr["attributetype"]) == ("K", "V", 3)
    assert attr["attributeid"] == attribute_id(p["processid"], "K", 3)
    assert len(p["processid"]) == 64
