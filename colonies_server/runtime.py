"""The server's live state shared by handlers and timers: settings, store, signal hub, clock, leases."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .config import Settings
from .signals import Hub
from .store import Store

__all__ = ["Lease", "Runtime"]


@dataclass
class Lease:
    """An executor that opted in to fast failure detection (executorheartbeatmsg)."""

    colonyname: str
    executorname: str
    lease_ns: int
    last_ns: int


@dataclass
class Runtime:
    settings: Settings
    store: Store
    hub: Hub = field(default_factory=Hub)
    server_id: str = ""
    # executorid → lease; in memory on purpose: after a restart executors fall back to upstream
    # behaviour (maxexectime) until their next heartbeat.
    leases: dict[str, Lease] = field(default_factory=dict)
    # executorid → last assign/heartbeat (rendered as lastheardfromtime; not worth a write per assign).
    last_heard: dict[str, int] = field(default_factory=dict)
    # Tests move the clock forward instead of sleeping.
    clock_offset_ns: int = 0

    def now_ns(self) -> int:
        return time.time_ns() + self.clock_offset_ns

    def heard_from(self, executorid: str, now_ns: int) -> None:
        self.last_heard[executorid] = now_ns
        lease = self.leases.get(executorid)
        if lease is not None:
            lease.last_ns = now_ns
