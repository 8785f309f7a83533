"""Shared waiting: a few websockets to the server's /pubsub carry the subscriptions of every in-flight call.

A request that waits for its process costs one or two signed frames on an already-open socket
instead of a websocket handshake per request: subscribeprocessmsg for SUCCESS and for FAILED,
since the upstream server only notifies the state asked for; our own server also ends a SUCCESS
subscription on FAILED, so against it (`one_subscription()`) a single frame is enough. The server sends a frame at once when
the process is already in that state, so subscribing after submit cannot miss the result, and a
subscription whose socket went away is simply sent again on another one.

Against our server a call can also be submitted on the socket (`submit_and_wait`, the
submitandsubscribemsg extension): one frame both submits and subscribes, and the server answers
with the new process's id and later with its end. That saves the HTTP submit's round trip and a
signature per call. The reader task registers the subscription when the acknowledgement arrives,
before the end frame (which follows it on the same socket) can be read.

Sockets live in epochs. The upstream server closes the whole TCP connection when any one
subscription on it expires, and our server holds every subscription for its full timeout, so a
socket takes new subscriptions only while it has at least `min_left` seconds to live, and every
subscription on it gets a timeout that ends with the socket (`lifetime`). When the socket ends,
the subscriptions still pending move to the current one. At any time one or two sockets are open,
and the server never holds a subscription longer than `lifetime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sdk.aio import settled
from sdk.crypto import id_from_prvkey
from sdk.envelope import build_envelope, parse_frame
from sdk.errors import ColoniesConnectionError, ColoniesError, ColoniesTimeoutError, error_from_status
from sdk.messages import bind_connection, connection_nonce, keyed_process_id
from sdk.models import Process, ProcessState

from . import wsclient

__all__ = ["MAX_SOCKET_SUBMIT", "Ended", "ProcessWaiter", "TooLargeForSocket"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_FINAL = (ProcessState.SUCCESS, ProcessState.FAILED)
MAX_SOCKET_SUBMIT = 256 * 1024
"""Larger submissions go over HTTP: a frame over the server's websocket limit would end the
shared socket (and every call waiting on it)."""


class TooLargeForSocket(Exception):
    """The submission is too large for the shared socket; submit it over HTTP instead."""


def _succeeded(fut: asyncio.Future[Any]) -> bool:
    return fut.done() and not fut.cancelled() and fut.exception() is None


class Ended:
    """What a synchronous call needs of an ended process (`submit_and_wait`): validating the whole
    `Process` of every end frame was ~9 % of the gateway's CPU per call."""

    __slots__ = ("errors", "output", "processid", "state")

    def __init__(self, processid: str, state: ProcessState, output: list[Any], errors: list[str]) -> None:
        self.processid = processid
        self.state = state
        self.output = output
        self.errors = errors

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Ended:
        """From an end frame's process JSON (ValueError if it is not one)."""
        out, errors = raw.get("out"), raw.get("errors")
        if not isinstance(out, (list, type(None))) or not isinstance(errors, (list, type(None))):
            raise ValueError("out and errors must be lists")
        return cls(raw["processid"], ProcessState(raw["state"]), out or [], [str(e) for e in errors or ()])


def _final_pid(raw: Any) -> str | None:
    """The process id of a frame's process JSON when it is SUCCESS or FAILED, else None."""
    if isinstance(raw, dict):
        pid, state = raw.get("processid"), raw.get("state")
        if isinstance(pid, str) and pid and state in _FINAL:
            return pid
    return None


@dataclass
class _Sub:
    future: asyncio.Future[dict[str, Any]]  # the ended process's JSON
    waiters: int = 0
    socket: _Socket | None = None
    # A batched socket submission ({"spec", "requestid", "idempotencykey"}): sent again, with the
    # same key, on the next socket when its socket ends before the process does.
    submission: dict[str, Any] | None = None


async def _end(pid: str, sub: _Sub, timeout: float, read: Callable[[dict[str, Any]], T]) -> T | None:
    """`read` of the process's end JSON, or None after `timeout` or when it cannot be read (the
    caller's get_process then answers, as for a frame that never came)."""
    if not await settled(sub.future, timeout):
        return None
    try:
        return read(sub.future.result())
    except (KeyError, ValueError, TypeError) as e:
        log.warning("unreadable end of process %s: %s", pid[:12], e)
        return None


@dataclass(eq=False)
class _Socket:
    ws: Any
    expires: float  # monotonic time the server ends this socket's subscriptions
    pids: set[str] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None
    alive: bool = True
    outgoing: list[str] = field(default_factory=list)  # batched submissions for the next frame (pids)
    session: str | None = None  # the server's session token for this socket, once bound

    def envelope(self, msg: dict[str, Any], prvkey: str) -> str:
        """`msg` as a frame for this socket: under its session, else signed."""
        return build_envelope(msg, prvkey, self.session)


class ProcessWaiter:
    """Waits for many processes to end over a few shared, self-healing websocket connections."""

    def __init__(self, url: str, prvkey: str, colony: str, executortype: str, *,
                 connect: Callable[..., Any] | None = None, lifetime: float = 20.0, min_left: float = 8.0,
                 reconnect_max: float = 2.0, unix_socket: str = "") -> None:
        self.url = url
        self.unix_socket = unix_socket  # open the sockets through it (the url still names the Host)
        self.prvkey = prvkey
        self.colony = colony
        self.executortype = executortype
        self.lifetime = lifetime
        self.min_left = min_left
        self.reconnect_max = reconnect_max
        self.bind_timeout = 5.0
        self._connect = connect
        self._subs: dict[str, _Sub] = {}
        self._current: _Socket | None = None
        self._opening: asyncio.Future[_Socket] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.sockets_opened = 0
        self.states: tuple[ProcessState, ...] = _FINAL  # the subscriptions sent per process
        self.submit_on_socket = False  # the server takes submitandsubscribemsg (see submit_and_wait)
        self.socket_submits = 0  # submissions the server acknowledged on a socket
        self._acks: dict[str, tuple[asyncio.Future[str], _Socket]] = {}  # requestid → (processid, socket)
        self._requests = itertools.count(1)
        # The server takes batched submissions without acknowledgements (its "submitbatch"
        # extension; see _submit_batched). Set by the gateway once the server says so.
        self.batch_submit = False
        # Bind each socket to our identity once (the server's "sessions" extension) and send frames
        # under the session instead of signing each. Set by the gateway once the server says so;
        # turned off for good when the server refuses (it does for clients on another host).
        self.sessions = False
        self.batches_sent = 0  # frames that carried batched submissions
        self._batched: dict[str, str] = {}  # requestid → processid, for the server's refusals
        self._signer = ""  # our identity's id (keyed process ids), computed on first use

    def one_subscription(self) -> None:
        """The server notifies a SUCCESS subscription of FAILED too (colonyfaas' server does;
        upstream does not): subscribe once per process instead of twice."""
        self.states = (ProcessState.SUCCESS,)

    @property
    def pending(self) -> int:
        return len(self._subs)

    async def wait(self, processid: str, timeout: float) -> Process | None:
        """The process once it is successful or failed, or None after `timeout` seconds."""
        sub = self._subs.get(processid)
        if sub is None:
            sub = self._subs[processid] = _Sub(asyncio.get_running_loop().create_future())
            self._spawn(self._subscribe(processid, sub))
        sub.waiters += 1
        try:
            return await _end(processid, sub, timeout, Process.model_validate)
        finally:
            self._release(processid, sub)

    def _release(self, processid: str, sub: _Sub) -> None:
        sub.waiters -= 1
        if sub.waiters == 0 and self._subs.get(processid) is sub:
            del self._subs[processid]
            if sub.socket is not None:
                sub.socket.pids.discard(processid)

    async def submit_and_wait(self, spec: dict[str, Any], timeout: float, ack_timeout: float,
                              idempotency_key: str = "") -> tuple[str, Ended | None]:
        """Submit `spec` (its wire form) on a socket and wait up to `timeout` s for its end:
        (processid, what the caller needs of the ended process, or None). Raises ColoniesError
        when the server refuses the submission, and ColoniesConnectionError when the socket broke
        before the server said whether it took it (as a broken HTTP submit would).
        TooLargeForSocket: use HTTP. `idempotency_key`: as for messages.submit, so a caller can
        resend a submission whose acknowledgement was lost."""
        try:
            sock = await self._socket()
        except Exception as e:  # cannot connect: as an unreachable server over HTTP
            where = f"{self.url} through unix:{self.unix_socket}" if self.unix_socket else self.url
            raise ColoniesConnectionError(f"cannot open {where}: {type(e).__name__}: {e}") from None
        if self.batch_submit and idempotency_key:
            return await self._submit_batched(sock, spec, timeout, idempotency_key)
        rid = f"{next(self._requests):x}"
        # "ack": "processid": an acknowledgement with the id alone (an older server sends the whole
        # process, also read).
        msg = {"msgtype": "submitandsubscribemsg", "spec": spec, "requestid": rid, "ack": "processid",
               "timeout": max(1, math.floor(sock.expires - time.monotonic()))}
        if idempotency_key:
            msg["idempotencykey"] = idempotency_key
        frame = sock.envelope(msg, self.prvkey)
        if len(frame) > MAX_SOCKET_SUBMIT:
            raise TooLargeForSocket(f"submission of {len(frame)} bytes")
        ack: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._acks[rid] = (ack, sock)
        try:
            try:
                await sock.ws.send(frame)
            except Exception as e:
                raise ColoniesConnectionError(f"pubsub socket: {type(e).__name__}: {e}") from None
            if not await settled(ack, ack_timeout):
                raise ColoniesTimeoutError(f"the server did not acknowledge a submission within {ack_timeout:g} s")
            pid = ack.result()  # or the server's refusal, raised
        except BaseException:
            if _succeeded(ack):  # acknowledged just as we gave up: the waiter it counted is ours to drop
                sub = self._subs.get(ack.result())
                if sub is not None:
                    self._release(ack.result(), sub)
            raise
        finally:
            self._acks.pop(rid, None)
        self.socket_submits += 1
        sub = self._subs[pid]  # made by the reader with the acknowledgement, one waiter: us
        try:
            return pid, await _end(pid, sub, timeout, Ended.of)
        finally:
            self._release(pid, sub)

    async def _submit_batched(self, sock: _Socket, spec: dict[str, Any], timeout: float,
                              key: str) -> tuple[str, Ended | None]:
        """submit_and_wait against a server with the "submitbatch" extension: the submissions of
        one loop turn go in one frame under one signature (`_flush`), and the server acknowledges
        none of them. The process id is known up front (`keyed_process_id`): the waiter is in place
        before the frame is sent, a refusal arrives as an error frame naming the requestid, and a
        socket that ends before the process does is replaced by submitting again with the same key
        on the next socket (the server answers with the stored process, or stores it if the first
        frame never arrived). Under load that is one frame, signature and recovery for several
        calls, and no acknowledgement to wake this process per call."""
        if not self._signer:
            self._signer = id_from_prvkey(self.prvkey)
        pid = keyed_process_id(self._signer, self.colony, key)
        sub = self._subs.get(pid)
        if sub is None:
            sub = self._subs[pid] = _Sub(asyncio.get_running_loop().create_future())
        sub.waiters += 1
        rid = f"{next(self._requests):x}"
        sub.submission = {"spec": spec, "requestid": rid, "idempotencykey": key}
        self._batched[rid] = pid
        try:
            self._queue(pid, sub, sock)
            return pid, await _end(pid, sub, timeout, Ended.of)
        finally:
            self._batched.pop(rid, None)
            self._release(pid, sub)

    def _queue(self, pid: str, sub: _Sub, sock: _Socket) -> None:
        """Put a batched submission into `sock`'s next frame (sent once this loop turn is done)."""
        sub.socket = sock
        sock.pids.add(pid)
        if not sock.outgoing:
            self._spawn(self._flush(sock))
        sock.outgoing.append(pid)

    async def _flush(self, sock: _Socket) -> None:
        """Send the batched submissions queued on `sock` in as few frames as the size limit allows;
        a call too large for any frame fails with TooLargeForSocket (its caller goes over HTTP)."""
        pids, sock.outgoing = sock.outgoing, []
        pending = [(pid, sub) for pid in pids
                   if (sub := self._subs.get(pid)) is not None and sub.socket is sock and not sub.future.done()]
        if not pending:
            return
        timeout = max(1, math.floor(sock.expires - time.monotonic()))
        try:
            for frame, calls in self._frames(sock, pending, timeout):
                await sock.ws.send(frame)
                self.batches_sent += 1
                self.socket_submits += calls
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the socket broke: whatever did not end goes to the next one
            log.info("pubsub socket broke while submitting: %s (submitting again)", e)
            for pid, sub in pending:
                self._move(pid, sub, sock)

    def _frames(self, sock: _Socket, pending: list[tuple[str, _Sub]], timeout: int) -> list[tuple[str, int]]:
        """Frames for `pending` on `sock`, halved until each fits the server's frame limit."""
        assert all(sub.submission is not None for _, sub in pending)
        frame = sock.envelope({"msgtype": "submitandsubscribemsg", "calls": [sub.submission for _, sub in pending],
                               "timeout": timeout, "ack": "none", "end": "slim"}, self.prvkey)
        if len(frame) <= MAX_SOCKET_SUBMIT:
            return [(frame, len(pending))]
        if len(pending) == 1:
            _, sub = pending[0]
            if not sub.future.done():
                sub.future.set_exception(TooLargeForSocket(f"submission of {len(frame)} bytes"))
            return []
        half = len(pending) // 2
        return self._frames(sock, pending[:half], timeout) + self._frames(sock, pending[half:], timeout)

    def _move(self, pid: str, sub: _Sub, sock: _Socket) -> None:
        """`sock` ended before the process did: subscribe again on a live socket (a batched
        submission is submitted again with its key, which also covers a frame that never arrived)."""
        if sub.socket is not sock or sub.future.done() or self._subs.get(pid) is not sub:
            return
        sub.socket = None
        sock.pids.discard(pid)
        self._spawn(self._subscribe(pid, sub))

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- internals -------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _subscribe(self, processid: str, sub: _Sub) -> None:
        """Send the subscription on a live socket; retried (with backoff) until it is sent or no longer wanted."""
        delay = 0.05
        while not self._closing and self._subs.get(processid) is sub and not sub.future.done():
            try:
                sock = await self._socket()
                if sub.submission is not None:
                    self._queue(processid, sub, sock)
                    return
                left = sock.expires - time.monotonic()
                timeout = max(1, math.floor(left))
                sock.pids.add(processid)
                sub.socket = sock
                for state in self.states:
                    await sock.ws.send(sock.envelope(
                        {"msgtype": "subscribeprocessmsg", "processid": processid, "executortype": self.executortype,
                         "state": int(state), "timeout": timeout, "colonyname": self.colony}, self.prvkey))
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # cannot connect, or the socket broke while sending
                log.info("pubsub subscribe %s: %s (retrying)", processid[:12], e)
                sub.socket = None
                await asyncio.sleep(delay)  # backoff between attempts, not synchronisation
                delay = min(delay * 2, self.reconnect_max)

    async def _socket(self) -> _Socket:
        sock = self._current
        if sock is not None and sock.alive and sock.expires - time.monotonic() >= self.min_left:
            return sock
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_future()
            opening = self._opening
            try:
                ws = await self._open()
                try:
                    session = await self._bind(ws) if self.sessions else None
                except BaseException:  # the socket broke while binding: not ours to keep
                    with contextlib.suppress(Exception):
                        await ws.close()
                    raise
            except BaseException as e:
                opening.set_exception(e)
                opening.exception()  # retrieved here; waiters get it from the await below
                raise
            finally:
                self._opening = None
            sock = _Socket(ws, time.monotonic() + self.lifetime, session=session)
            self.sockets_opened += 1
            self._current = sock
            sock.reader = asyncio.get_running_loop().create_task(self._read(sock), name="faas-gateway-pubsub")
            self._tasks.add(sock.reader)
            sock.reader.add_done_callback(self._tasks.discard)
            opening.set_result(sock)
            return sock
        return await asyncio.shield(self._opening)

    async def _bind(self, ws: Any) -> str | None:
        """Bind a new socket to our identity before anything else is sent on it: the session
        token, or None (and sessions off from now on) when the server refuses. A socket that
        breaks meanwhile raises, as its opening would."""
        try:
            nonce = await self._ask(ws, connection_nonce(), None)
            return await self._ask(ws, bind_connection(nonce), self.prvkey)
        except (ColoniesError, ValueError, asyncio.TimeoutError) as e:
            self.sessions = False
            log.info("pubsub: connection sessions refused (%s); signing every frame", e or type(e).__name__)
            return None

    async def _ask(self, ws: Any, call: Any, prvkey: str | None) -> str:
        """One request and its reply on a socket nobody else reads yet."""
        await ws.send(build_envelope(call.msg, prvkey))
        reply = parse_frame(await asyncio.wait_for(ws.recv(), self.bind_timeout))
        if reply.error:
            reply.raise_for_error(403)
        if reply.payloadtype != call.msgtype:
            raise ColoniesError(f"expected a {call.msgtype} reply, got {reply.payloadtype!r}")
        return str(call.result(reply.payload))

    async def _open(self) -> Any:
        if self._connect is not None:
            return await self._connect(self.url)
        return await wsclient.connect(self.url, open_timeout=10, close_timeout=1, unix_socket=self.unix_socket)

    async def _read(self, sock: _Socket) -> None:
        # The server ends the socket at `expires`; a little grace, then it is ours to close (one
        # timer per socket: a deadline on every recv() cost more than reading the frame).
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, sock.expires + 2.0 - time.monotonic()), lambda: self._spawn(sock.ws.close()))
        try:
            listen = getattr(sock.ws, "listen", None)
            if listen is not None:  # frames delivered as they are read: no task woken per frame
                await listen(self._deliver)
            else:
                while True:
                    self._deliver(await sock.ws.recv())
        except asyncio.CancelledError:
            raise
        except Exception as e:  # closed by the server or by the timer above (expiry), or broken
            log.debug("pubsub socket ended: %s", e)
        finally:
            expiry.cancel()
            sock.alive = False
            if self._current is sock:
                self._current = None
            with contextlib.suppress(Exception):
                await sock.ws.close()
            for ack, on in list(self._acks.values()):
                if on is sock and not ack.done():
                    ack.set_exception(ColoniesConnectionError(
                        "the pubsub connection closed before the server acknowledged a submission "
                        "(it may have been submitted)"))
                    ack.exception()  # retrieved: submit_and_wait raises it from the shielded await
            if not self._closing:
                # Subscriptions still waiting move to a live socket.
                for pid in list(sock.pids):
                    sub = self._subs.get(pid)
                    if sub is not None:
                        self._move(pid, sub, sock)

    def _deliver(self, text: str | bytes) -> None:
        try:
            reply = parse_frame(text)
            if reply.payloadtype == "submitandsubscribemsg" or (
                    reply.error and isinstance(reply.payload, dict) and "requestid" in reply.payload):
                self._acknowledged(reply)
                return
            if reply.error:
                # e.g. "Invalid process with Id …": the caller's final get_process answers for it.
                log.debug("pubsub error frame: %s", reply.payload)
                return
        except (ColoniesError, ValueError) as e:
            log.warning("unreadable pubsub frame: %s", e)
            return
        # Only the id and state are read here; each waiter reads what it needs of the rest.
        pid = _final_pid(reply.payload)
        if pid is not None:
            self._ended(pid, reply.payload)

    def _acknowledged(self, reply: Any) -> None:
        """The server's answer to submit_and_wait: subscribe the new process here, in the reader,
        before its end frame can be read."""
        payload = reply.payload if isinstance(reply.payload, dict) else {}
        rid = str(payload.get("requestid", ""))
        batched = self._subs.get(self._batched.get(rid, ""))
        if batched is not None:  # a batched submission is acknowledged only when refused
            if reply.error and not batched.future.done():
                code = payload.get("status")
                batched.future.set_exception(
                    error_from_status(code if isinstance(code, int) else 0, str(payload.get("message"))))
            return
        entry = self._acks.get(rid)
        if entry is None or entry[0].done():
            return
        ack, sock = entry
        if reply.error:
            code = payload.get("status")
            ack.set_exception(error_from_status(code if isinstance(code, int) else 0, str(payload.get("message"))))
            return
        raw = payload.get("process")
        if not isinstance(raw, dict):
            raw = {}
        pid = payload.get("processid", raw.get("processid"))
        if not isinstance(pid, str) or not pid:
            ack.set_exception(ColoniesError(f"the server acknowledged a submission without a process id: {payload!r}"))
            return
        sub = self._subs.get(pid)
        if sub is None:
            sub = self._subs[pid] = _Sub(asyncio.get_running_loop().create_future(), socket=sock)
            sock.pids.add(pid)
        sub.waiters += 1
        if _final_pid(raw) == pid and not sub.future.done():  # already ended (rare: a very fast call)
            sub.future.set_result(raw)
        ack.set_result(pid)

    def _ended(self, pid: str, raw: dict[str, Any]) -> None:
        sub = self._subs.get(pid)
        if sub is not None and not sub.future.done():
            sub.future.set_result(raw)
            if sub.socket is not None:
                sub.socket.pids.discard(pid)
