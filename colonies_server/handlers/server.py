"""Server-level messages: version, server info, statistics, and "not supported" answers."""

from __future__ import annotations

from typing import Any

from ..errors import RPCError
from ..registry import rpc
from ..roles import require_server_owner
from ..runtime import Runtime

__all__: list[str] = []


EXTENSIONS = ("closeandassign", "closeandassignbatch", "idempotencykey", "leases", "submitandsubscribe",
              "submitbatch")
"""What this server adds to the protocol (docs/SERVER.md), named in versionmsg's reply so a client
uses a newer one only where the server has it (an older colonyfaas server names none)."""


@rpc("versionmsg", signed=False)
async def version(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    s = rt.settings
    return {"buildversion": s.build_version, "buildtime": s.build_time, "msgtype": "versionmsg",
            "extensions": [*EXTENSIONS, "sessions"] if s.sessions else list(EXTENSIONS)}


@rpc("getserverinfomsg", signed=False)
async def server_info(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    s = rt.settings
    return {"buildversion": s.build_version, "buildtime": s.build_time,
            "backends": [{"type": "http", "port": s.port, "host": s.host}]}


@rpc("getstatisticsmsg")
async def statistics(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    require_server_owner(rt.server_id, signer)

    def q(tx: Any) -> Any:
        procs, execs = tx.count_processes(), tx.count_executors()
        return {"colonies": tx.count_colonies(), "executors": sum(execs.values()),
                "activeexecutors": execs.get(1, 0), "unregisteredexecutors": execs.get(3, 0),
                "waitingprocesses": procs.get(0, 0), "runningprocesses": procs.get(1, 0),
                "successfulprocesses": procs.get(2, 0), "failedprocesses": procs.get(3, 0),
                "waitingworkflows": 0, "runningworkflows": 0, "successfulworkflows": 0, "failedworkflows": 0}
    return await rt.store.read(q)


UNSUPPORTED: dict[str, str] = {}
"""msgtype → what is not supported, for the protocol's messages this server leaves out (501)."""


def unsupported_message(msgtype: str) -> str | None:
    """The 501 text for a message of the protocol this server leaves out, else None (/pubsub uses
    it too, for subscribechannelmsg)."""
    what = UNSUPPORTED.get(msgtype)
    return None if what is None else f"{msgtype}: {what} not supported by this server yet"


async def _unsupported(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    raise RPCError(501, unsupported_message(msg.get("msgtype", "")) or "not supported by this server yet")


for _what, _types in (
        ("channels are", ("channelappendmsg", "channelreadmsg", "subscribechannelmsg")),
        ("generators are", ("addgeneratormsg", "getgeneratormsg", "getgeneratorsmsg", "removegeneratormsg",
                            "packgeneratormsg", "resolvegeneratormsg")),
        ("blueprints are", ("addblueprintdefinitionmsg", "getblueprintdefinitionmsg", "getblueprintdefinitionsmsg",
                            "removeblueprintdefinitionmsg", "addblueprintmsg", "getblueprintmsg", "getblueprintsmsg",
                            "updateblueprintmsg", "removeblueprintmsg", "getblueprinthistorymsg",
                            "reconcileblueprintmsg", "updateblueprintstatusmsg")),
        ("locations are", ("addlocationmsg", "getlocationsmsg", "getlocationmsg", "removelocationmsg")),
        ("this operation is", ("getclustermsg", "changeserveridmsg", "changecolonyidmsg", "changeexecutoridmsg",
                               "changeuseridmsg", "pauseassignmentsmsg", "resumeassignmentsmsg", "getpausestatusmsg",
                               "cancelprocessmsg", "cancelprocessgraphmsg"))):
    for _t in _types:
        UNSUPPORTED[_t] = _what
        rpc(_t)(_unsupported)
