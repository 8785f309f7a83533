"""Background checks: maxwaittime, maxexectime, executor leases, crons. Each has a run-once method."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from . import lifecycle
from .handlers.crons import check_crons
from .runtime import Runtime

__all__ = ["Timers"]

log = logging.getLogger(__name__)
BATCH = 1000
EXEC_ERROR = "Maximum execution time limit exceeded"
WAIT_ERROR = "Maximum waiting time limit exceeded"


class Timers:
    """Owns the periodic tasks; tests call run_once()/run_crons_once() instead of waiting for a period."""

    def __init__(self, rt: Runtime, leader: Callable[[], bool] | None = None) -> None:
        self.rt = rt
        # With several replicas only the elected one runs the periodic passes (cluster.py).
        self.leader = leader or (lambda: True)
        self._tasks: list[asyncio.Task[None]] = []

    async def run_once(self) -> dict[str, int]:
        """One pass of the deadline and lease checks; returns what it did (for tests and logs)."""
        rt = self.rt
        now = rt.now_ns()
        expired = [(eid, lease) for eid, lease in rt.leases.items() if now - lease.last_ns > lease.lease_ns]
        for eid, _ in expired:
            del rt.leases[eid]

        def op(tx: Any) -> dict[str, int]:
            stats = {"exec": 0, "wait": 0, "lease": 0}
            for p in tx.exec_expired(now, BATCH):
                lifecycle.requeue(tx, p, now, count_retry=True, error=EXEC_ERROR)
                stats["exec"] += 1
            for p in tx.wait_expired(now, BATCH):
                lifecycle.fail(tx, p, [WAIT_ERROR], now)
                stats["wait"] += 1
            for eid, lease in expired:
                for p in tx.running_of_executor(eid):
                    lifecycle.requeue(tx, p, now, count_retry=True,
                                      error=f"Executor {lease.executorname} stopped heartbeating (lease of "
                                            f"{lease.lease_ns / 1e9:g} s expired)")
                    stats["lease"] += 1
            return stats
        stats = await rt.store.write(op)
        if any(stats.values()):
            log.info("timers: %d exec timeouts, %d wait timeouts, %d lease re-queues", stats["exec"],
                     stats["wait"], stats["lease"])
        return stats

    async def run_crons_once(self) -> int:
        rt = self.rt
        now = rt.now_ns()
        return await rt.store.write(lambda tx: check_crons(rt, tx, now))

    async def _loop(self, period: float, fn: Any, name: str) -> None:
        while True:
            try:
                if self.leader():
                    await fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s check failed", name)
            await asyncio.sleep(period)

    def start(self) -> None:
        s = self.rt.settings
        self._tasks = [asyncio.create_task(self._loop(s.timer_period, self.run_once, "deadline")),
                       asyncio.create_task(self._loop(s.cron_period, self.run_crons_once, "cron"))]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._tasks = []
