"""The courier (faas_executor/courier.py): tickets posted meanwhile share a message, which asks for a
process per ticket; processes go to the tickets in order; a failed message leaves every ticket to
close on its own."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from faas_executor.courier import Courier, Ticket
from faas_executor.handle import Outcome, Reason


class Recorder:
    """A `send` that records each message and answers with as many processes as it is given."""

    def __init__(self, processes: list[Any] | None = None, fail: bool = False) -> None:
        self.messages: list[list[str]] = []
        self.processes = processes
        self.fail = fail
        self.entered = threading.Event()  # a message is being sent
        self.release = threading.Event()
        self.release.set()

    def __call__(self, tickets: list[Ticket]) -> tuple[list[Any], list[dict[str, Any]]]:
        self.entered.set()
        self.release.wait(10)
        self.messages.append([t.processid for t in tickets])
        if self.fail:
            raise ConnectionError("server unreachable")
        got = self.processes if self.processes is not None else [f"next-{t.processid}" for t in tickets]
        return got[:len(tickets)], [{"processid": tickets[0].processid, "status": 403, "message": "no"}]


def ticket(pid: str) -> Ticket:
    return Ticket(pid, Outcome(Reason.SUCCESS, value=1))


def test_tickets_posted_while_a_message_is_out_share_the_next_one() -> None:
    send = Recorder()
    send.release.clear()  # the first message stays out until released
    courier = Courier(send, batch=8, linger=0.0)
    courier.start()
    try:
        first = ticket("a")
        courier.post(first)
        assert send.entered.wait(10)  # "a" is on its way, held there
        later = [ticket(p) for p in "bcd"]
        for t in later:
            courier.post(t)
        send.release.set()
        for t in [first, *later]:
            assert t.done.wait(10)
        assert send.messages == [["a"], ["b", "c", "d"]]
        assert [t.process for t in later] == ["next-b", "next-c", "next-d"] and first.process == "next-a"
        assert courier.messages == 2 and courier.tickets == 4
    finally:
        courier.close()


def test_linger_gathers_up_to_the_batch_and_no_longer() -> None:
    send = Recorder()
    courier = Courier(send, batch=3, linger=5.0)  # a long linger: the batch size must end it
    courier.start()
    try:
        ts = [ticket(p) for p in "abcd"]
        for t in ts[:3]:
            courier.post(t)
        assert all(t.done.wait(10) for t in ts[:3])  # three is a full batch: sent at once
        courier.post(ts[3])
    finally:
        courier.close()  # closing sends what is posted without lingering
    assert ts[3].done.is_set()
    assert send.messages == [["a", "b", "c"], ["d"]]


def test_fewer_processes_than_tickets_go_to_the_first_tickets_in_order() -> None:
    send = Recorder(processes=["p1"])
    courier = Courier(send, batch=3, linger=1.0)
    courier.start()
    try:
        ts = [ticket("a"), ticket("b"), ticket("c")]
        for t in ts:
            courier.post(t)
        assert all(t.done.wait(10) for t in ts)
    finally:
        courier.close()
    assert send.messages == [["a", "b", "c"]]
    assert [t.process for t in ts] == ["p1", None, None] and not any(t.failed for t in ts)


def test_a_message_that_fails_leaves_each_ticket_to_close_on_its_own() -> None:
    courier = Courier(Recorder(fail=True), batch=2, linger=1.0)
    courier.start()
    try:
        ts = [ticket("a"), ticket("b")]
        for t in ts:
            courier.post(t)
        assert all(t.done.wait(10) for t in ts)
        assert all(t.failed and t.process is None for t in ts)
    finally:
        courier.close()
    with pytest.raises(RuntimeError, match="closed"):
        courier.post(ticket("late"))
