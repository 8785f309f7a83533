"""POST /api pipeline: envelope → signature → dispatch → handler; every error becomes an error envelope here."""

from __future__ import annotations

import logging
import time
from typing import Any

from . import handlers  # noqa: F401  (registers every handler)
from .crypto import SignatureError, recover_id
from .envelope import decode_payload, encode_error, encode_reply, parse_request
from .errors import NoReply, RPCError
from .registry import HANDLERS, UNSIGNED
from .runtime import Runtime
from .sessions import MESSAGES as SESSION_MESSAGES
from .sessions import NONCE_MSG, SESSION_PREFIX, Session, bind, issue_nonce, session_signer

__all__ = ["call", "dispatch", "envelope_signer", "is_long_poll", "session_reply", "signer_of"]

log = logging.getLogger(__name__)
_REPLY_TYPE = {"getpausestatusmsg": "pausestatusreplymsg"}
# (payload, signature) → signer id. Signatures are deterministic, so executors' repeated assign calls
# and pollers' repeated gets carry identical envelopes; recovery (~50 µs) is the costliest step.
_recovered: dict[tuple[str, str], str] = {}
_CACHE_PAYLOAD = 512  # assign/get envelopes are ~200 characters; bounds the cache to a few MB


def signer_of(payload: str, signature: str) -> str:
    """The signer id of an envelope (SignatureError if malformed), cached for small payloads."""
    key = (payload, signature)
    hit = _recovered.get(key)
    if hit is not None:
        return hit
    signer = recover_id(payload, signature)
    if len(payload) <= _CACHE_PAYLOAD:
        if len(_recovered) > 10_000:
            _recovered.clear()
        _recovered[key] = signer
    return signer


def is_long_poll(body: bytes) -> bool:
    """An assign request (assignprocessmsg, closeandassignmsg): it may wait long, and must end
    (unanswered) when its caller is gone; otherwise a killed executor's parked request would still
    be handed the next process, which would then sit RUNNING for nobody. (The payload is base64,
    so these names can only appear as the payloadtype.)"""
    return len(body) <= _LONG_POLL_SCAN and (b'"assignprocessmsg"' in body or b'"closeandassignmsg"' in body)


_LONG_POLL_SCAN = 1 << 20  # a close-and-assign carries the output; larger ones are not watched


def envelope_signer(payload: str, signature: str, conn: Session | None) -> str:
    """The signer of an envelope: recovered from its signature, or the identity bound to the
    connection for a session marker (colonies_server.sessions); RPCError 403 otherwise."""
    try:
        if signature.startswith(SESSION_PREFIX):
            return session_signer(conn, signature)
        return signer_of(payload, signature)
    except SignatureError as e:
        raise RPCError(403, f"Failed to recover ID from signature: {e}") from None


def session_reply(rt: Runtime, payloadtype: str, payload: str, signature: str,
                  conn: Session | None) -> dict[str, Any]:
    """connectionnoncemsg or bindconnectionmsg on a connection (colonies_server.sessions), over
    POST /api or a /pubsub socket."""
    if payloadtype == NONCE_MSG:
        return issue_nonce(conn, rt.settings.sessions)
    signer = envelope_signer(payload, signature, conn)
    return bind(conn, signer, signature, decode_payload(payload, payloadtype))


async def call(rt: Runtime, payloadtype: str, payload: str, signature: str, who: list[str] | None = None,
               conn: Session | None = None) -> Any:
    """Verify and run one RPC; returns the result object or raises RPCError. `who` receives the signer id;
    `conn` is the connection's session state (None where the route has no connection of its own)."""
    handler = HANDLERS.get(payloadtype)
    if payloadtype in UNSIGNED and handler is not None:
        return await handler(rt, "", {})
    if payloadtype in SESSION_MESSAGES:
        return session_reply(rt, payloadtype, payload, signature, conn)
    signer = envelope_signer(payload, signature, conn)
    if handler is None:
        if not payloadtype:
            raise RPCError(403, "invalid rpcMsg.PayloadType: empty payload type, the client may be out of date")
        raise RPCError(403, f"invalid rpcMsg.PayloadType: {payloadtype}")
    if who is not None:
        who.append(signer)
    msg = decode_payload(payload, payloadtype)
    return await handler(rt, signer, msg)


async def dispatch(rt: Runtime, body: bytes, conn: Session | None = None) -> tuple[int, bytes]:
    """One POST /api body → (HTTP status, reply envelope bytes). Never raises."""
    t0 = time.perf_counter()
    pt = "?"
    who: list[str] = []
    try:
        req = parse_request(body)
        pt = req.payloadtype
        result = await call(rt, pt, req.payload, req.signature, who, conn)
        status, out = 200, encode_reply(_REPLY_TYPE.get(pt, pt), result)
    except NoReply:
        status, out = 200, b""
        log.warning("rpc %s signer=%s refused (no reply, quirk 8.13)", pt[:64], who[0][:8] if who else "-")
    except RPCError as e:
        status, out = e.status, encode_error(e.status, e.message)
        # An empty queue is normal flow for assign, not worth a warning.
        log.log(logging.DEBUG if e.status == 404 else logging.WARNING, "rpc %s signer=%s failed: %d %s",
                pt[:64], who[0][:8] if who else "-", e.status, e.message)
    except Exception as e:  # a bug must still produce an error envelope, never a dropped connection
        log.exception("rpc %s crashed", pt[:64])
        status, out = 500, encode_error(500, f"internal server error: {type(e).__name__}")
    if log.isEnabledFor(logging.DEBUG):
        log.debug("rpc %s signer=%s status=%d %.2fms", pt[:64], who[0][:8] if who else "-", status,
                  (time.perf_counter() - t0) * 1000)
    return status, out
