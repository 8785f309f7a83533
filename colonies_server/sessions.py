"""Connection sessions (extension "sessions", docs/SERVER.md): prove an identity once per
connection instead of once per message.

Every Colonies message is signed and the server recovers the signer from each signature. On the
invocation path that is four secp256k1 operations per call (the gateway's and the executor's
signatures, and the server's two recoveries): ~0.2 ms of a ~1.5 ms call at concurrency 1 on the
benchmark VM (bench/README.md, tenth round). A client that holds one connection for many messages
can instead bind the connection to its identity:

1. `connectionnoncemsg` (unsigned): the server answers `{"nonce"}`, 32 random bytes for this
   connection only; asking again replaces it and ends any session the connection had.
2. `bindconnectionmsg`, signed as usual, with that `nonce`: the server answers `{"session"}`, a
   new random token. The signed nonce is the proof; since it is good for one connection and one
   use, a captured bind message is worth nothing on another connection.
3. Every later envelope on that connection may carry `"signature": "session:<token>"` and counts as
   signed by the bound identity. Roles and membership are checked per message as before. A signed
   envelope on a bound connection is still verified as usual (any identity may sign it).

A session marker replaces the signature's integrity protection with the connection's, so sessions
exist only on connections from the loopback interface (or a Unix socket), where no one else can
alter the bytes in transit. The server has no TLS of its own; across a network every message stays
signed. A loopback connection whose requests carry a proxy's headers (Forwarded, X-Forwarded-For,
X-Real-IP, Via) counts as remote from then on. A reverse proxy on the same host that pools its upstream connections cannot mix clients'
sessions up: the token is a secret of the client that bound the connection, and a session marker
is honoured only on the connection it was issued on. `faas server start --no-sessions` (or
COLONIES_SERVER_SESSIONS=false) turns the extension off.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Any

from .crypto import SignatureError
from .errors import RPCError

__all__ = ["BIND_MSG", "FORWARDED", "MESSAGES", "NONCE_MSG", "SESSION_PREFIX", "Session", "is_local_peer"]

NONCE_MSG = "connectionnoncemsg"
BIND_MSG = "bindconnectionmsg"
MESSAGES = frozenset({NONCE_MSG, BIND_MSG})
SESSION_PREFIX = "session:"
FORWARDED = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip", b"via"})
"""Request headers a proxy adds: a loopback connection that carries them speaks for a client
elsewhere, whose leg to the proxy may not be protected, so it gets no session."""


def is_local_peer(peer: Any) -> bool:
    """Whether a connection's peer address (a transport's "peername", an ASGI scope's "client")
    is this host: a loopback address, or a Unix socket (a str or an empty address)."""
    if isinstance(peer, str):  # a Unix socket's peer ("" when unnamed)
        return True
    if not isinstance(peer, (tuple, list)) or not peer:  # unknown
        return False
    try:
        ip = ipaddress.ip_address(peer[0])
    except (ValueError, TypeError, IndexError):
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _same(given: str, secret: str) -> bool:
    """Constant-time comparison with a hex secret; anything not ASCII (even a lone surrogate) differs."""
    return given.isascii() and hmac.compare_digest(given, secret)


class Session:
    """One connection's session state (an HTTP connection or a /pubsub websocket)."""

    __slots__ = ("local", "nonce", "signer", "token")

    def __init__(self, local: bool) -> None:
        self.local = local
        self.nonce: str | None = None
        self.signer: str | None = None
        self.token: str | None = None

    def forwarded(self) -> None:
        """A request on this connection came through a proxy: no session from now on."""
        self.local = False
        self.nonce = self.signer = self.token = None

    def issue_nonce(self, enabled: bool) -> dict[str, Any]:
        if not enabled:
            raise RPCError(403, "connection sessions are turned off on this server; sign every message")
        if not self.local:
            raise RPCError(403, "connection sessions are only for connections from this host (loopback); "
                                "sign every message")
        self.signer = self.token = None
        self.nonce = secrets.token_hex(32)
        return {"nonce": self.nonce}

    def bind(self, signer: str, signature: str, msg: dict[str, Any]) -> dict[str, Any]:
        if signature.startswith(SESSION_PREFIX):
            raise RPCError(403, "bindconnectionmsg must be signed (not sent under a session)")
        nonce = msg.get("nonce")
        expected, self.nonce = self.nonce, None  # one try per nonce
        if expected is None or not isinstance(nonce, str) or not _same(nonce, expected):
            raise RPCError(403, "bindconnectionmsg: not the nonce this connection was given "
                                "(ask connectionnoncemsg on the same connection first)")
        self.signer, self.token = signer, secrets.token_hex(32)
        return {"session": self.token}

    def signer_of(self, signature: str) -> str:
        """The bound identity, for an envelope whose signature is a session marker."""
        token = signature[len(SESSION_PREFIX):]
        if self.token is None or self.signer is None or not _same(token, self.token):
            raise SignatureError("no such session on this connection (bind it again, or sign the message)")
        return self.signer


def _on(conn: Session | None) -> Session:
    if conn is None:
        raise RPCError(403, "connection sessions are not available on this route; sign every message")
    return conn


def issue_nonce(conn: Session | None, enabled: bool) -> dict[str, Any]:
    return _on(conn).issue_nonce(enabled)


def bind(conn: Session | None, signer: str, signature: str, msg: dict[str, Any]) -> dict[str, Any]:
    return _on(conn).bind(signer, signature, msg)


def session_signer(conn: Session | None, signature: str) -> str:
    if conn is None:
        raise SignatureError("a session marker needs a bound connection; sign the message")
    return conn.signer_of(signature)
