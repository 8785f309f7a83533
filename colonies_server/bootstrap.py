"""Start-up: decide the server id and, with --dev, create the standard dev colony/user/executor (idempotent)."""

from __future__ import annotations

import logging
from typing import Any

from .config import (
    DEV_COLONY_NAME,
    DEV_COLONY_PRVKEY,
    DEV_EXECUTOR_NAME,
    DEV_EXECUTOR_TYPE,
    DEV_PRVKEY,
    DEV_SERVER_PRVKEY,
    DEV_USER_NAME,
)
from .crypto import id_from_prvkey
from .roles import APPROVED
from .runtime import Runtime
from .timeutil import fmt_time

__all__ = ["bootstrap"]

log = logging.getLogger(__name__)


async def bootstrap(rt: Runtime) -> None:
    s = rt.settings
    now = rt.now_ns()
    wanted = s.server_id or (id_from_prvkey(DEV_SERVER_PRVKEY) if s.dev else "")
    colony_id, dev_id = id_from_prvkey(DEV_COLONY_PRVKEY), id_from_prvkey(DEV_PRVKEY)

    def op(tx: Any) -> str:
        if wanted:
            tx.set_meta("serverid", wanted)
        server_id = tx.get_meta("serverid") or ""
        if s.dev:
            if tx.get_colony(DEV_COLONY_NAME) is None:
                tx.add_colony({"colonyid": colony_id, "name": DEV_COLONY_NAME})
            if tx.get_user(DEV_COLONY_NAME, DEV_USER_NAME) is None:
                tx.add_user({"colonyname": DEV_COLONY_NAME, "userid": dev_id, "name": DEV_USER_NAME,
                             "email": "", "phone": ""})
            e = tx.get_executor(DEV_COLONY_NAME, DEV_EXECUTOR_NAME)
            if e is None or e["state"] != APPROVED or e["executorid"] != dev_id:
                tx.put_executor({
                    "executorid": dev_id, "executortype": DEV_EXECUTOR_TYPE, "executorname": DEV_EXECUTOR_NAME,
                    "colonyname": DEV_COLONY_NAME, "state": APPROVED, "requirefuncreg": False,
                    "commissiontime": fmt_time(now), "lastheardfromtime": fmt_time(0),
                    "capabilities": {"hardware": None, "software": None}, "allocations": {"projects": None}})
        return server_id
    rt.server_id = await rt.store.write(op)
    if not rt.server_id:
        log.warning("no server id configured (COLONIES_SERVER_ID or --dev): server-owner calls will be refused")
