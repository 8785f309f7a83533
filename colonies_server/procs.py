"""Process documents: FuncSpec validation/normalisation and the Process JSON shape pycolonies parses."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from .errors import RPCError
from .timeutil import ZERO_TIME, fmt_time

__all__ = ["ATTR_ENV", "FAILED", "PRIORITY_LIMIT", "RUNNING", "STATES", "SUCCESS", "WAITING",
           "attribute_id", "new_id", "new_process", "normalize_spec", "priority_time", "render"]

WAITING, RUNNING, SUCCESS, FAILED = 0, 1, 2, 3
STATES = (WAITING, RUNNING, SUCCESS, FAILED)
ATTR_IN, ATTR_OUT, ATTR_ERR, ATTR_ENV = 0, 1, 2, 3
PRIORITY_LIMIT = 50_000
# Longest accepted maxwaittime/maxexectime: 100 years. Keeps every deadline inside SQLite's int64 ns.
MAX_SECONDS = 100 * 365 * 86_400
DAY_NS = 86_400_000_000_000


def new_id() -> str:
    """An opaque random 64-hex id (upstream hashes a UUID; clients only see 64 hex characters)."""
    return os.urandom(32).hex()


def attribute_id(targetid: str, key: str, attributetype: int) -> str:
    """Deterministic attribute id (protocol §2.6): adding the same key/type twice collides."""
    return hashlib.sha3_256(f"{targetid}{key}{attributetype}".encode()).hexdigest()


def priority_time(now_ns: int, priority: int) -> int:
    """Queue key: one priority unit is one day's head start; FIFO within a priority (§6.1)."""
    return now_ns - priority * DAY_NS


def _int(d: dict[str, Any], key: str, default: int) -> int:
    v = d.get(key, default)
    if type(v) is int:
        return v
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) > 2**53 or v != int(v):
        raise RPCError(400, f"Invalid FuncSpec, {key} must be an integer")
    return int(v)


def _str(d: dict[str, Any], key: str, max_len: int) -> str:
    v = d.get(key, "")
    if type(v) is str and len(v) <= max_len:
        return v
    if v is None:
        return ""
    if not isinstance(v, str):
        raise RPCError(400, f"Invalid FuncSpec, {key} must be a string")
    if len(v) > max_len:
        raise RPCError(400, f"Invalid FuncSpec, {key} is longer than {max_len} characters")
    return v


def _str_list(v: Any, what: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise RPCError(400, f"Invalid FuncSpec, {what} must be a list of strings")
    return v


def _seconds(d: dict[str, Any], key: str) -> int:
    v = _int(d, key, 0)
    if v > MAX_SECONDS:
        raise RPCError(400, f"Invalid FuncSpec, {key} must be at most {MAX_SECONDS} seconds")
    return v


_UNITS = {"": 1 / (1024 * 1024), "b": 1 / (1024 * 1024), "k": 1000 / 1048576, "kb": 1000 / 1048576,
          "ki": 1 / 1024, "kib": 1 / 1024, "m": 1e6 / 1048576, "mb": 1e6 / 1048576, "mi": 1.0, "mib": 1.0,
          "g": 1e9 / 1048576, "gb": 1e9 / 1048576, "gi": 1024.0, "gib": 1024.0, "t": 1e12 / 1048576,
          "tb": 1e12 / 1048576, "ti": 1048576.0, "tib": 1048576.0}
_QTY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def _mem(v: str, what: str) -> str:
    """"8Gi" → "8192Mi"; "" → "0Mi" (upstream normalisation, §5.5)."""
    if not v:
        return "0Mi"
    m = _QTY.match(v)
    if not m or m.group(2).lower() not in _UNITS:
        raise RPCError(400, f"Invalid FuncSpec, cannot parse {what} {v!r}")
    return f"{int(float(m.group(1)) * _UNITS[m.group(2).lower()])}Mi"


def _cpu(v: str) -> str:
    """"4" → "4000m", "500m" → "500m", "" → "0m"."""
    if not v:
        return "0m"
    m = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(m?)\s*$", v)
    if not m:
        raise RPCError(400, f"Invalid FuncSpec, cannot parse cpu {v!r}")
    return f"{int(float(m.group(1)))}m" if m.group(2) else f"{int(float(m.group(1)) * 1000)}m"


def normalize_spec(spec: Any, *, max_string: int = 1 << 20, workflow: bool = False) -> dict[str, Any]:
    """Validate a FuncSpec and return it in the shape the server stores and replies with."""
    if not isinstance(spec, dict):
        raise RPCError(400, "Invalid FuncSpec, expected an object")
    cond = spec.get("conditions") or {}
    if not isinstance(cond, dict):
        raise RPCError(400, "Invalid FuncSpec, conditions must be an object")
    priority = _int(spec, "priority", 0)
    if not -PRIORITY_LIMIT <= priority <= PRIORITY_LIMIT:
        raise RPCError(400, f"Failed to submit function spec, priority outside range [-{PRIORITY_LIMIT}, {PRIORITY_LIMIT}]")
    maxexectime = _seconds(spec, "maxexectime")
    if workflow and maxexectime == 0:
        maxexectime = -1  # upstream normalises 0 → -1 only for workflows (quirk §8.9)
    names = cond.get("executornames")
    if names is not None:
        names = _str_list(names, "conditions.executornames")
        if names == ["*"]:
            names = []
    deps = cond.get("dependencies")
    deps = [] if deps is None else _str_list(deps, "conditions.dependencies")
    gpu = cond.get("gpu") or {}
    if not isinstance(gpu, dict):
        raise RPCError(400, "Invalid FuncSpec, conditions.gpu must be an object")
    args = spec.get("args")
    args = [] if args is None else args
    if not isinstance(args, list):
        raise RPCError(400, "Invalid FuncSpec, args must be a list")
    kwargs = spec.get("kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise RPCError(400, "Invalid FuncSpec, kwargs must be an object")
    env = spec.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise RPCError(400, "Invalid FuncSpec, env must map strings to strings")
    fs = spec.get("fs") or {}
    if not isinstance(fs, dict):
        raise RPCError(400, "Invalid FuncSpec, fs must be an object")
    channels = spec.get("channels") or []
    channels = _str_list(channels, "channels")
    out: dict[str, Any] = {
        "nodename": _str(spec, "nodename", max_string),
        "funcname": _str(spec, "funcname", max_string),
        "args": args,
        "kwargs": kwargs,
        "priority": priority,
        "maxwaittime": _seconds(spec, "maxwaittime"),
        "maxexectime": maxexectime,
        "maxretries": _int(spec, "maxretries", 0),
        "conditions": {
            "colonyname": _str(cond, "colonyname", max_string),
            "executornames": names,
            "executortype": _str(cond, "executortype", max_string),
            "dependencies": deps,
            "nodes": _int(cond, "nodes", 0),
            "cpu": _cpu(_str(cond, "cpu", 64)),
            "processes": _int(cond, "processes", 0),
            "processespernode": _int(cond, "processespernode", 0),
            "mem": _mem(_str(cond, "mem", 64), "mem"),
            "storage": _mem(_str(cond, "storage", 64), "storage"),
            "gpu": {"name": _str(gpu, "name", max_string), "mem": _mem(_str(gpu, "mem", 64), "gpu.mem"),
                    "count": _int(gpu, "count", 0), "nodecount": 0},
            "walltime": _int(cond, "walltime", 0),
        },
        "label": _str(spec, "label", max_string),
        "fs": {"mount": fs.get("mount") or "", "snapshots": fs.get("snapshots"), "dirs": fs.get("dirs")},
        "env": env,
    }
    location = _str(cond, "locationname", max_string)
    if location:
        out["conditions"]["locationname"] = location
    if channels:
        out["channels"] = channels
    return out


def new_process(spec: dict[str, Any], initiatorid: str, initiatorname: str, now_ns: int, *,
                processgraphid: str = "", waitforparents: bool = False, processid: str = "") -> dict[str, Any]:
    """A fresh WAITING process around a normalised spec (§5.6 'values right after submit')."""
    pid = processid or new_id()
    attrs = [{"attributeid": attribute_id(pid, k, ATTR_ENV), "targetid": pid, "targetcolonyname":
              spec["conditions"]["colonyname"], "targetprocessgraphid": processgraphid, "state": WAITING,
              "attributetype": ATTR_ENV, "key": k, "value": v} for k, v in spec["env"].items()]
    maxwait = spec["maxwaittime"]
    return {
        "processid": pid, "initiatorid": initiatorid, "initiatorname": initiatorname,
        "assignedexecutorid": "", "isassigned": False, "state": WAITING,
        "prioritytime": priority_time(now_ns, spec["priority"]),
        "submissiontime": fmt_time(now_ns), "starttime": ZERO_TIME, "endtime": ZERO_TIME,
        "waitdeadline": fmt_time(now_ns + maxwait * 1_000_000_000) if maxwait > 0 else ZERO_TIME,
        "execdeadline": ZERO_TIME, "retries": 0, "attributes": attrs, "spec": spec,
        "waitforparents": waitforparents, "parents": [], "children": [], "processgraphid": processgraphid,
        "in": [], "out": [], "errors": [],
    }


def render(process: dict[str, Any]) -> dict[str, Any]:
    """The process as replied: attribute states mirror the process state (§4.6)."""
    attrs = process.get("attributes")
    if attrs:
        state = process["state"]
        for a in attrs:
            a["state"] = state
    return process
