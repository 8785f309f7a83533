"""Pure side of waiting on `/pubsub`: subscribe envelopes and frame decoding (protocol §1.4)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .envelope import build_envelope, parse_frame
from .errors import ColoniesTimeoutError
from .models import Process, ProcessState

__all__ = ["WAIT_STATES", "WaitSet", "decode_frame", "server_timeout", "subscribe_envelopes"]

# The Go server only signals a subscriber for the exact state it asked for, so a wait that must
# end on failure too subscribes twice on the same socket.
WAIT_STATES = (ProcessState.SUCCESS, ProcessState.FAILED)


def server_timeout(seconds: float) -> int:
    """Whole seconds for the server-side subscription, a little beyond our own deadline so that
    our timer (not the server dropping the socket) decides when the wait is over."""
    return max(1, math.ceil(seconds) + 1)


def subscribe_envelopes(processid: str, executortype: str, timeout: float, prvkey: str,
                        colonyname: str = "") -> list[str]:
    """One signed `subscribeprocessmsg` per final state for this process."""
    return [
        build_envelope({"processid": processid, "executortype": executortype, "state": int(state),
                        "timeout": server_timeout(timeout), "colonyname": colonyname,
                        "msgtype": "subscribeprocessmsg"}, prvkey)
        for state in WAIT_STATES
    ]


def decode_frame(text: str | bytes) -> Process:
    """The process carried by a subscription frame; error frames raise the typed error."""
    reply = parse_frame(text)
    reply.raise_for_error(400)
    return Process.model_validate(reply.payload)


class WaitSet:
    """Which of a set of processes have ended: fed with processes (from frames or polls)."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.order = list(dict.fromkeys(ids))
        self.latest: dict[str, Process] = {}
        self.pending = set(self.order)

    def offer(self, process: Process) -> bool:
        """Record a process; True when it is final (and was one we wait for)."""
        if process.processid not in self.latest and process.processid not in self.pending:
            return False
        self.latest[process.processid] = process
        if process.state.is_final:
            self.pending.discard(process.processid)
            return True
        return False

    @property
    def done(self) -> bool:
        return not self.pending

    def results(self) -> list[Process]:
        return [self.latest[i] for i in self.order]

    def timeout_error(self, timeout: float) -> ColoniesTimeoutError:
        missing = sorted(self.pending)
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        err = ColoniesTimeoutError(f"{len(missing)} process(es) not finished after {timeout} s: {shown}")
        err.processes = [self.latest[i] for i in self.order if i in self.latest]
        return err
