"""RPC builders for crons and generators (protocol §4.9): workflows the server submits on a timer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .call import Call, as_list, as_model, as_none
from .messages import wire
from .models import Cron, Generator, WorkflowSpec

__all__ = [
    "add_cron",
    "add_generator",
    "get_cron",
    "get_crons",
    "get_generator",
    "get_generators",
    "pack_generator",
    "remove_cron",
    "remove_generator",
    "resolve_generator",
    "run_cron",
]


def _spec_text(workflow: WorkflowSpec | Mapping[str, Any] | str) -> str:
    # The server keeps the workflow as a JSON *string* inside the cron/generator.
    return workflow if isinstance(workflow, str) else json.dumps(wire(workflow))


def add_cron(colony: str, name: str, workflow: WorkflowSpec | Mapping[str, Any] | str,
             cronexpression: str = "", interval: int = -1, random: bool = False,
             waitforprevprocessgraph: bool = False, *, prvkey: str | None = None) -> Call[Cron]:
    """Submit `workflow` on a schedule: a 6-field cron expression (seconds first) when
    `interval` is -1, else every `interval` seconds (randomised within it when `random`)."""
    cron = {"name": name, "colonyname": colony, "cronexpression": cronexpression, "interval": interval,
            "random": random, "workflowspec": _spec_text(workflow),
            "waitforprevprocessgraph": waitforprevprocessgraph}
    return Call({"msgtype": "addcronmsg", "cron": cron}, as_model(Cron), prvkey)


def get_cron(cronid: str, *, prvkey: str | None = None) -> Call[Cron]:
    return Call({"msgtype": "getcronmsg", "cronid": cronid}, as_model(Cron), prvkey)


def get_crons(colony: str, count: int = 100, *, prvkey: str | None = None) -> Call[list[Cron]]:
    return Call({"msgtype": "getcronsmsg", "colonyname": colony, "count": count}, as_list(Cron), prvkey)


def remove_cron(cronid: str, *, prvkey: str | None = None) -> Call[None]:
    return Call({"msgtype": "removecronmsg", "cronid": cronid, "all": False}, as_none, prvkey)


def run_cron(cronid: str, *, prvkey: str | None = None) -> Call[Cron]:
    """Trigger a cron now."""
    return Call({"msgtype": "runcronmsg", "cronid": cronid}, as_model(Cron), prvkey)


def add_generator(generator: Generator | Mapping[str, Any], *, prvkey: str | None = None) -> Call[Generator]:
    return Call({"msgtype": "addgeneratormsg", "generator": wire(generator)}, as_model(Generator), prvkey)


def get_generator(generatorid: str, *, prvkey: str | None = None) -> Call[Generator]:
    return Call({"msgtype": "getgeneratormsg", "generatorid": generatorid}, as_model(Generator), prvkey)


def get_generators(colony: str, count: int = 100, *, prvkey: str | None = None) -> Call[list[Generator]]:
    msg = {"msgtype": "getgeneratorsmsg", "colonyname": colony, "count": count}
    return Call(msg, as_list(Generator), prvkey)


def remove_generator(generatorid: str, *, prvkey: str | None = None) -> Call[None]:
    return Call({"msgtype": "removegeneratormsg", "generatorid": generatorid}, as_none, prvkey)


def pack_generator(generatorid: str, arg: str, *, prvkey: str | None = None) -> Call[None]:
    return Call({"msgtype": "packgeneratormsg", "generatorid": generatorid, "arg": arg}, as_none, prvkey)


def resolve_generator(colony: str, generatorname: str, *, prvkey: str | None = None) -> Call[Generator]:
    msg = {"msgtype": "resolvegeneratormsg", "colonyname": colony, "generatorname": generatorname}
    return Call(msg, as_model(Generator), prvkey)
