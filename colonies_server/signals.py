"""In-memory signal hub: wakes long-poll assigners and feeds /pubsub subscriptions after each COMMIT."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

__all__ = ["Hub", "Waiter"]

ProcessCallback = Callable[[dict[str, Any]], None]


class Waiter:
    """One long-poll assigner parked on (colony, executortype); set() wakes it.

    Hand-off (SQLite only, see handlers/processes.py): a submission may `claim` an idle waiter and
    store its process already assigned to the waiter's `executor`; `outcome` then resolves with
    that process once it is committed, or with None if the submission rolled back.
    """

    __slots__ = ("event", "executor", "idle", "key", "outcome")

    def __init__(self, key: tuple[str, str], executor: dict[str, Any]) -> None:
        self.key = key
        self.event = asyncio.Event()
        self.executor = executor
        self.idle = False  # parked in event.wait(), no attempt of its own in flight
        self.outcome: asyncio.Future[dict[str, Any] | None] | None = None


class Hub:
    """Wakes ALL assigners of a (colony, executortype) on new work, unlike upstream's one-of-N round robin."""

    def __init__(self) -> None:
        self._waiters: dict[tuple[str, str], set[Waiter]] = defaultdict(set)
        self._by_process: dict[str, set[ProcessCallback]] = defaultdict(set)
        self._general: set[tuple[str, int, ProcessCallback]] = set()

    # ---- assigners
    def park(self, colony: str, executortype: str, executor: dict[str, Any]) -> Waiter:
        w = Waiter((colony, executortype), executor)
        self._waiters[w.key].add(w)
        return w

    def claim(self, colony: str, executortype: str, names: list[str] | None) -> Waiter | None:
        """An idle waiter with nothing pending (no wake-up on its way, no claim) whose executor
        may run a process targeted at `names` (None: any); it stays claimed until `settle`."""
        for w in self._waiters.get((colony, executortype), ()):
            if (w.idle and w.outcome is None and not w.event.is_set()
                    and (not names or w.executor["executorname"] in names)):
                w.outcome = asyncio.get_running_loop().create_future()
                return w
        return None

    @staticmethod
    def settle(w: Waiter, p: dict[str, Any] | None) -> None:
        """End a claim: `p`, the process committed as assigned to the waiter's executor, or None
        when the claiming submission rolled back (the waiter then tries an assignment of its own)."""
        if w.outcome is not None and not w.outcome.done():
            w.outcome.set_result(p)
        w.event.set()

    def unpark(self, w: Waiter) -> None:
        ws = self._waiters.get(w.key)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del self._waiters[w.key]

    def wake(self, colony: str, executortype: str) -> int:
        ws = self._waiters.get((colony, executortype))
        if not ws:
            return 0
        for w in ws:
            w.event.set()
        return len(ws)

    def wake_colony(self, colony: str) -> None:
        for key, ws in list(self._waiters.items()):
            if key[0] == colony:
                for w in ws:
                    w.event.set()

    def waiting(self) -> int:
        return sum(len(ws) for ws in self._waiters.values())

    # ---- process subscriptions (/pubsub)
    def subscribe(self, processid: str, cb: ProcessCallback) -> Callable[[], None]:
        self._by_process[processid].add(cb)

        def cancel() -> None:
            cbs = self._by_process.get(processid)
            if cbs is not None:
                cbs.discard(cb)
                if not cbs:
                    del self._by_process[processid]
        return cancel

    def subscribe_all(self, executortype: str, state: int, cb: ProcessCallback) -> Callable[[], None]:
        entry = (executortype, state, cb)
        self._general.add(entry)
        return lambda: self._general.discard(entry)

    def publish(self, events: list[tuple[Any, ...]]) -> None:
        """Store on_commit sink: ("wake", colony, type) and ("process", process) events."""
        for ev in events:
            if ev[0] == "wake":
                self.wake(ev[1], ev[2])
            elif ev[0] == "process":
                p = ev[1]
                for cb in list(self._by_process.get(p["processid"], ())):
                    cb(p)
                if self._general:
                    etype, state = p["spec"]["conditions"]["executortype"], p["state"]
                    for t, s, cb in list(self._general):
                        if t == etype and s == state:
                            cb(p)
            elif ev[0] == "wake_colony":
                self.wake_colony(ev[1])
            elif ev[0] == "handoff":
                self.settle(ev[1], ev[2])
