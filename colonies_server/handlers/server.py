"""Server-level messages: version, server info, statistics, and "not supported" answers."""

from __future__ import annotations

from typing import Any

from ..errors import RPCError
from ..registry import rpc
from ..roles import require_server_owner
from ..runtime import Runtime

__all__: list[str] = []


@rpc("versionmsg", signed=False)
async def version(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    s = rt.settings
    return {"buildversion": s.build_version, "buildtime": s.build_time, "msgtype": "versionmsg"}


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


def _unsupported(area: str) -> Any:
    async def handler(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
        raise RPCError(501, f"{msg.get('msgtype')}: {area} are not supported by this server yet")
    return handler


for _t in ("channelappendmsg", "channelreadmsg", "subscribechannelmsg"):
    rpc(_t)(_unsupported("channels"))
for _t in ("addgeneratormsg", "getgeneratormsg", "getgeneratorsmsg", "removegeneratormsg", "packgeneratormsg",
           "resolvegeneratormsg"):
    rpc(_t)(_unsupported("generators"))
for _t in ("addblueprintdefinitionmsg", "getblueprintdefinitionmsg", "getblueprintdefinitionsmsg",
           "removeblueprintdefinitionmsg", "addblueprintmsg", "getblueprintmsg", "getblueprintsmsg",
           "updateblueprintmsg", "removeblueprintmsg", "getblueprinthistorymsg", "reconcileblueprintmsg",
           "updateblueprintstatusmsg"):
    rpc(_t)(_unsupported("blueprints"))
for _t in ("addlocationmsg", "getlocationsmsg", "getlocationmsg", "removelocationmsg"):
    rpc(_t)(_unsupported("locations"))
for _t in ("getclustermsg", "changeserveridmsg", "changecolonyidmsg", "changeexecutoridmsg", "changeuseridmsg",
           "pauseassignmentsmsg", "resumeassignmentsmsg", "getpausestatusmsg", "cancelprocessmsg",
           "cancelprocessgraphmsg"):
    rpc(_t)(_unsupported("this operation"))
