"""The courier: under load, one message to the server carries the closes of several finished calls
and asks for as many new ones (the batched closeandassignmsg, docs/SERVER.md).

A loop thread that finishes a call while the executor is saturated with short calls posts a
`Ticket` (its process and outcome) and waits; the courier thread sends the tickets waiting at that
moment in one message, and hands each ticket a process of the reply, as far as they go. It lingers
a moment for the closes of calls ending just then, but never longer than it takes every loop to
have posted. With one message per call, the server spent about as much CPU on each message as on
the calls it carried (signature recovery, HTTP, the envelope, the reply's write): at eight calls a
message its CPU per call fell from ~0.4 ms to ~0.1 ms (bench/README.md, "Sixth round").

At low load nothing goes through here: a loop closes its own call and long-polls for the next,
one message per call, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sdk import Process

from .handle import Outcome

__all__ = ["Courier", "Send", "Ticket"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Ticket:
    """A finished call to close, and the loop that waits for its next process."""

    processid: str
    outcome: Outcome
    process: Process | None = None  # the next process, when the reply had one for this ticket
    failed: bool = False  # the message did not get through: whether the close landed is unknown
    done: threading.Event = field(default_factory=threading.Event)


Send = Callable[[list[Ticket]], tuple[list[Process], list[dict[str, Any]]]]
"""Sends one batched message: tickets to close, as many processes wanted → (processes, refused closes)."""


class Courier:
    """One thread that sends the tickets posted to it, several per message."""

    def __init__(self, send: Send, *, batch: int, linger: float) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._send = send
        self.batch = batch  # no more tickets can be waiting than loops that post them
        self.linger = linger
        self._cond = threading.Condition()
        self._pending: list[Ticket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="faas-courier", daemon=True)
        self.messages = 0
        self.tickets = 0

    def start(self) -> None:
        self._thread.start()

    def post(self, ticket: Ticket) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the courier is closed")
            self._pending.append(ticket)
            # The courier waits for the first ticket, then lingers until the batch is full: only
            # those two moments need it awake (a wake-up per ticket cost a context switch a call).
            if len(self._pending) == 1 or len(self._pending) >= self.batch:
                self._cond.notify()

    def close(self) -> None:
        """Send what is posted, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                # The first ticket's loop waits anyway for the round trip; a little longer lets
                # calls ending meanwhile share the message, up to as many as can be waiting.
                deadline = time.monotonic() + self.linger
                while len(self._pending) < self.batch and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                tickets, self._pending = self._pending[:self.batch], self._pending[self.batch:]
            self._deliver(tickets)

    def _deliver(self, tickets: list[Ticket]) -> None:
        try:
            processes, refused = self._send(tickets)
        except Exception as e:  # the loops close their calls themselves, retried through the outage
            log.info("sending %d closes: %s; each is closed on its own", len(tickets), e)
            for t in tickets:
                t.failed = True
        else:
            self.messages += 1
            self.tickets += len(tickets)
            # Fewer processes than loops waiting when the queue ran short: the rest long-poll.
            for t, p in zip(tickets, processes, strict=False):
                t.process = p
            for r in refused:  # e.g. re-assigned after maxexectime meanwhile: the server decides
                log.warning("closing process %s failed: %s", str(r.get("processid", ""))[:12], r.get("message"))
        finally:
            for t in tickets:
                t.done.set()
