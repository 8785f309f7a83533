"""WebSocket /pubsub: subscribeprocessmsg (several per socket), subscribeprocessesmsg, and the
submitandsubscribemsg extension (submit a function spec and get its end on the same socket).

Each subscription lives for its `timeout`; when the last one ends the server closes the socket with a
proper close frame (pycolonies' wait() then returns the current process instead of raising).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .envelope import decode_payload, encode_error, encode_reply, parse_request
from .errors import RPCError
from .handlers.fields import get_int, get_num, get_str
from .handlers.processes import keyed_id, submit_process
from .handlers.server import unsupported_message
from .procs import FAILED, SUCCESS, new_id, render
from .rpc import envelope_signer, session_reply
from .runtime import Runtime
from .sessions import MESSAGES as SESSION_MESSAGES
from .sessions import Session, is_local_peer

__all__ = ["serve_pubsub"]

log = logging.getLogger(__name__)
FRAME_TYPE = "subscribeprocessmsg"  # upstream uses it for both subscription kinds (quirk §8.20)


class _Socket:
    def __init__(self, rt: Runtime, send: Any, client: Any = None) -> None:
        self.rt = rt
        self._send = send
        self.session = Session(is_local_peer(client))
        self.out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.subs: set[asyncio.Task[None]] = set()
        self.closed = False
        self.started_any = False
        self.all_done = asyncio.Event()
        # submitandsubscribemsg keeps no task per process: its subscription ends with the end
        # frame, at its timeout (a timer) or with the socket (`ends`), and keeps the socket open
        # until `hold_until` (loop time) like a subscription task would.
        self.ends: set[Callable[[], None]] = set()
        self.hold_until = 0.0

    def hold(self, timeout: float) -> None:
        """Keep the socket open for at least `timeout` more seconds."""
        self.hold_until = max(self.hold_until, asyncio.get_running_loop().time() + timeout)

    def frame(self, data: bytes) -> None:
        if not self.closed:
            self.out.put_nowait(data)

    async def writer(self) -> None:
        while True:
            data = await self.out.get()
            if data is None:
                return
            await self._send({"type": "websocket.send", "text": data.decode()})

    def start(self, coro: Any) -> None:
        task = asyncio.create_task(self._guard(coro))
        self.subs.add(task)
        self.all_done.clear()
        task.add_done_callback(self._sub_done)

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except RPCError as e:
            self.frame(encode_error(e.status, e.message))
        except Exception:
            log.exception("pubsub subscription failed")
            self.frame(encode_error(500, "internal server error"))

    def _sub_done(self, task: asyncio.Task[None]) -> None:
        self.subs.discard(task)
        if not self.subs:
            self.all_done.set()


async def _hold(timeout: float, cancels: list[Callable[[], None]]) -> None:
    try:
        await asyncio.sleep(max(timeout, 0.0))
    finally:
        for cancel in cancels:
            cancel()


async def _subscribe_process(sock: _Socket, signer: str, msg: dict[str, Any]) -> None:
    rt = sock.rt
    pid, state = get_str(msg, "processid"), get_int(msg, "state", 0)
    etype = get_str(msg, "executortype")
    timeout = min(get_num(msg, "timeout", 0.0), rt.settings.max_subscribe_timeout)

    last: list[bytes] = []

    def on_process(p: dict[str, Any]) -> None:
        if etype and p["spec"]["conditions"]["executortype"] != etype:
            return
        # Deviation: a SUCCESS subscription also ends on FAILED, so wait() does not hang to its timeout.
        if p["state"] == state or (state == SUCCESS and p["state"] == FAILED):
            frame = encode_reply(FRAME_TYPE, render(p))
            # With a store whose read yields to the loop (PostgreSQL), a change committed between
            # subscribing and the read below arrives both as an event and in the read: send it once.
            if last and last[0] == frame:
                return
            last[:] = [frame]
            sock.frame(frame)
    cancel = rt.hub.subscribe(pid, on_process)
    p = await rt.store.read(lambda tx: tx.get_process(pid))
    if p is None:
        cancel()
        # Like upstream the socket stays open after the error frame (until this subscription's timeout).
        sock.frame(encode_error(403, f"Invalid process with Id {pid}"))
        await _hold(timeout, [])
        return
    on_process(p)
    await _hold(timeout, [cancel])


async def _subscribe_processes(sock: _Socket, signer: str, msg: dict[str, Any]) -> None:
    rt = sock.rt
    state, etype = get_int(msg, "state", 0), get_str(msg, "executortype")
    timeout = min(get_num(msg, "timeout", 0.0), rt.settings.max_subscribe_timeout)
    executors = await rt.store.read(lambda tx: tx.executors_by_id(signer))
    if not executors:
        sock.frame(encode_error(403, "executor not found"))
        await _hold(timeout, [])
        return
    # Deviation: only processes of the colonies the signer is an executor of (upstream: all colonies).
    colonies = {e["colonyname"] for e in executors}

    def on_process(p: dict[str, Any]) -> None:
        if p["spec"]["conditions"]["colonyname"] in colonies:
            sock.frame(encode_reply(FRAME_TYPE, render(p)))
    await _hold(timeout, [rt.hub.subscribe_all(etype, state, on_process)])


ACK_TYPE = "submitandsubscribemsg"
MAX_BATCH = 1000
"""Calls in one batched submitandsubscribemsg (one signature, one frame)."""


async def _submit_and_subscribe(sock: _Socket, signer: str, msg: dict[str, Any]) -> None:
    """Extension: submitfuncspecmsg + subscribeprocessmsg (SUCCESS, also ended by FAILED) in one
    frame, for one call (`spec`, `requestid`, `idempotencykey` in the message) or for a batch
    (`calls`: a list of such objects, under one signature). Per call: a frame {"requestid",
    "process"} (the WAITING process; {"requestid", "processid"} with "ack": "processid"; nothing
    with "ack": "none") or an error frame whose payload also carries "requestid", then the
    process's frame once it ends (with "end": "slim", only its processid, state, out and errors).
    The subscription is in place before the process is stored, so its end cannot be missed; unlike
    subscribeprocessmsg it ends with that one end frame (or at `timeout` seconds without one),
    while the socket stays open for `timeout` like for any subscription. An "idempotencykey" works
    as for submitfuncspecmsg; a resent one whose process has already ended gets its end frame at once.

    No task waits for the end: a busy gateway has thousands of calls in flight, and a task
    sleeping out each one's timeout cost CPU per call and a burst of expiries at every socket's end.
    """
    calls = msg.get("calls")
    if calls is None:
        await _submit_one(sock, signer, msg, msg)
        return
    if not isinstance(calls, list) or not 0 < len(calls) <= MAX_BATCH:
        raise RPCError(400, f"Failed to submit function specs, calls must be a list of 1 to {MAX_BATCH} calls")
    for call in calls:
        if not isinstance(call, dict):
            raise RPCError(400, "Failed to submit function specs, every one of calls must be an object")
    # In the order given: each submission's write joins the same group commit, queue order kept.
    for call in calls:
        sock.start(_submit_one(sock, signer, call, msg))


def _slim(p: dict[str, Any]) -> dict[str, Any]:
    """What a caller waiting for the end needs of it ("end": "slim"): rendering, encoding and
    parsing the whole ~1.6 KB process per call was work for nothing on both sides."""
    return {"processid": p["processid"], "state": p["state"], "out": p["out"], "errors": p["errors"]}


async def _submit_one(sock: _Socket, signer: str, call: dict[str, Any], common: dict[str, Any]) -> None:
    """One call of a submitandsubscribemsg (`call` holds spec, requestid, idempotencykey; `common`
    the frame's timeout, ack and end, the same object for the one-call form)."""
    rt = sock.rt
    requestid = get_str(call, "requestid")
    timeout = max(0.0, min(get_num(common, "timeout", 0.0), rt.settings.max_subscribe_timeout))
    ack, slim = common.get("ack"), common.get("end") == "slim"
    try:
        key, pid = keyed_id(call, signer)
        if ack == "none" and not pid:
            raise RPCError(400, 'Failed to submit function spec, "ack": "none" needs an idempotencykey '
                                "(the caller knows the process id only from it)")
    except RPCError as e:
        sock.frame(encode_error(e.status, e.message, requestid=requestid))
        return
    pid = pid or new_id()
    sock.hold(timeout)
    ended: list[bool] = []  # one end frame at most, also for a resent keyed submission

    def on_process(p: dict[str, Any]) -> None:
        if (p["state"] == SUCCESS or p["state"] == FAILED) and not ended:
            sock.frame(encode_reply(FRAME_TYPE, _slim(p) if slim else render(p)))
            end()

    def end() -> None:
        ended.append(True)
        cancel()
        timer.cancel()
        sock.ends.discard(end)

    cancel = rt.hub.subscribe(pid, on_process)
    timer = asyncio.get_running_loop().call_later(timeout, end)
    sock.ends.add(end)
    try:
        p = await submit_process(rt, signer, call, processid=pid, key=key)
    except RPCError as e:
        end()
        sock.frame(encode_error(e.status, e.message, requestid=requestid))
        return  # like a refused subscription: the socket stays for its timeout (the hold above)
    except BaseException:
        end()
        raise
    if ack == "processid":  # all a gateway needs: no process to render, encode and parse
        sock.frame(encode_reply(ACK_TYPE, {"requestid": requestid, "processid": p["processid"]}))
    elif ack != "none":
        sock.frame(encode_reply(ACK_TYPE, {"requestid": requestid, "process": render(p)}))
    if p["state"] == SUCCESS or p["state"] == FAILED:  # a resent keyed submission whose process has ended
        on_process(p)


_HANDLERS = {"subscribeprocessmsg": _subscribe_process, "subscribeprocessesmsg": _subscribe_processes,
             ACK_TYPE: _submit_and_subscribe}


async def serve_pubsub(rt: Runtime, receive: Any, send: Any, client: Any = None, forwarded: bool = False) -> None:
    """One /pubsub websocket; `client` is the ASGI scope's client address and `forwarded` whether
    the upgrade request came through a proxy (both for sessions)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    sock = _Socket(rt, send, None if forwarded else client)
    writer = asyncio.create_task(sock.writer())
    reader = asyncio.create_task(_read_frames(sock, receive))
    any_started = asyncio.create_task(_wait_all_done(sock))
    try:
        done, _ = await asyncio.wait({reader, any_started}, return_when=asyncio.FIRST_COMPLETED)
        client_gone = reader in done
    finally:
        for t in (reader, any_started, *sock.subs):
            t.cancel()
        for end in list(sock.ends):
            end()
        sock.closed = True
        sock.out.put_nowait(None)
        try:
            await writer
        except Exception:
            pass
    if not client_gone:
        try:
            await send({"type": "websocket.close", "code": 1000})
        except Exception:
            pass


async def _wait_all_done(sock: _Socket) -> None:
    """Ends when at least one subscription was made, none is left and the socket's hold is over."""
    loop = asyncio.get_running_loop()
    while True:
        await sock.all_done.wait()
        if not sock.subs and sock.started_any:
            left = sock.hold_until - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(left)  # then look again: subscriptions may have come meanwhile
            continue
        sock.all_done.clear()


async def _read_frames(sock: _Socket, receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text")
        if raw is None:
            raw = (message.get("bytes") or b"").decode("utf-8", "replace")
        try:
            req = parse_request(raw)
            fn = _HANDLERS.get(req.payloadtype)
            if fn is None and req.payloadtype in SESSION_MESSAGES:  # answered at once, in order; a
                # socket is held open by its subscriptions only, so a session alone does not keep it
                sock.frame(encode_reply(req.payloadtype, session_reply(sock.rt, req.payloadtype, req.payload,
                                                                       req.signature, sock.session)))
                continue
            if fn is None:
                if req.payloadtype == "subscribechannelmsg":  # left out (channels), and pycolonies'
                    # subscribe_channel() waits in recv() for a reply: say no, as POST /api does.
                    sock.frame(encode_error(501, unsupported_message(req.payloadtype) or ""))
                continue  # upstream silently ignores other types on this socket
            signer = envelope_signer(req.payload, req.signature, sock.session)
            msg = decode_payload(req.payload, req.payloadtype)
            sock.started_any = True
            sock.start(fn(sock, signer, msg))
        except RPCError as e:
            sock.frame(encode_error(e.status, e.message))
        except Exception:
            log.exception("pubsub frame failed")
            sock.frame(encode_error(500, "internal server error"))
