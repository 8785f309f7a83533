"""The pure base both clients share: addresses, keys, envelopes and reply parsing; no I/O."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from ._boundary import translate_errors
from .call import Call
from .config import DEFAULT_PORT, Config
from .envelope import UNSIGNED, build_envelope, parse_frame, parse_reply
from .errors import ColoniesError, StoreError
from .messages_ext import decode_channel_entries
from .stores import Store

__all__ = [
    "BaseClient",
    "DEFAULT_TIMEOUT",
    "async_rpc",
    "call_result",
    "exchange_timeout",
    "ssl_context",
    "sync_rpc",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
"""Seconds for one HTTP exchange (long-polling assigns get their own timeout on top)."""


class BaseClient:
    """State and pure steps common to `Colonies` and `AsyncColonies`."""

    def __init__(self, host: str = "localhost", port: int = DEFAULT_PORT, tls: bool = False,
                 prvkey: str = "", *, store: Store | None = None, timeout: float = DEFAULT_TIMEOUT,
                 colonyname: str = "", verify: bool | str = True, unix_socket: str = "") -> None:
        self.host = host
        self.port = int(port)
        self.tls = tls
        self.prvkey = prvkey
        self.store = store
        self.timeout = timeout
        self.colonyname = colonyname
        # Through a Unix socket on this host (Config.unix_socket) a connection carries no TLS: it
        # never leaves the machine. URLs and Host headers still name host:port.
        self.unix_socket = unix_socket
        secure = tls and not unix_socket
        self.url = f"{'https' if secure else 'http'}://{host}:{self.port}"
        self.api_url = f"{self.url}/api"
        self.ws_url = f"{'wss' if secure else 'ws'}://{host}:{self.port}/pubsub"
        self.ssl_context = ssl_context(verify) if secure else None

    def _ws_options(self, timeout: float) -> dict[str, Any]:
        """websockets `connect` options: our TLS settings, no frame size limit, bounded handshakes."""
        options: dict[str, Any] = {"open_timeout": max(0.1, min(self.timeout, timeout)), "close_timeout": 1,
                                   "max_size": None}
        if self.ssl_context is not None:
            options["ssl"] = self.ssl_context
        if self.unix_socket:
            options["unix"] = True  # websockets: connect to options["path"], a Unix socket
            options["path"] = self.unix_socket
        return options

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r})"

    @property
    def where(self) -> str:
        """The server as errors and logs name it: its URL, or unix:PATH."""
        return f"unix:{self.unix_socket}" if self.unix_socket else self.url

    @classmethod
    def _config_kwargs(cls, config: Config) -> dict[str, Any]:
        return {"host": config.host, "port": config.port, "tls": config.tls, "prvkey": config.prvkey,
                "colonyname": config.colonyname, "unix_socket": config.unix_socket}

    def _key(self, prvkey: str | None) -> str:
        key = prvkey or self.prvkey
        if not key:
            raise ColoniesError("no private key: pass prvkey= or set COLONIES_PRVKEY")
        return key

    def _envelope(self, call: Call[Any]) -> str:
        if call.msgtype in UNSIGNED and not (call.prvkey or self.prvkey):
            return build_envelope(call.msg, None)
        return build_envelope(call.msg, self._key(call.prvkey))

    def _http_timeout(self, call: Call[Any]) -> float:
        return exchange_timeout(call, self.timeout)

    def _result(self, call: Call[T], status: int, body: bytes) -> T:
        log.debug("%s -> HTTP %d (%d bytes)", call.msgtype, status, len(body))
        return call_result(call, status, body)

    @staticmethod
    def _channel_batch(text: str | bytes) -> list[dict[str, Any]]:
        """Entries of one subscribe_channel frame; an empty list is the server's end-of-stream frame."""
        reply = parse_frame(text)
        reply.raise_for_error(400)
        return decode_channel_entries(reply.payload)

    def _require_store(self) -> Store:
        if self.store is None:
            raise StoreError("no file store: pass store=S3Store(...) or LocalStore(dir), or set AWS_S3_*")
        return self.store


def exchange_timeout(call: Call[Any], timeout: float) -> float:
    """Seconds for one exchange of `call`: a long-polling assign waits its own timeout on top."""
    if call.msgtype in ("assignprocessmsg", "closeandassignmsg"):
        return max(0.0, float(call.msg.get("timeout", 0))) + timeout
    return timeout


def call_result(call: Call[T], status: int, body: bytes) -> T:
    """The result of `call` from its HTTP reply, or the typed error the reply carries."""
    try:
        payload = parse_reply(status, body)
    except ColoniesError as e:
        if not call.absorbs(e):
            raise
        payload = None
    with translate_errors():  # a reply that does not validate is the server's fault
        return call.result(payload)


def ssl_context(verify: bool | str = True) -> ssl.SSLContext:
    """TLS settings for HTTPS and WSS: verify against the system CAs (True), a CA bundle file
    (a path), or not at all (False: self-signed development servers only)."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _Sender(Protocol):
    def _send(self, call: Call[Any]) -> Any: ...


class _AsyncSender(Protocol):
    def _send(self, call: Call[Any]) -> Awaitable[Any]: ...


class sync_rpc(Generic[P, T]):  # noqa: N801 - used like a decorator/function
    """Turns a `messages` builder into a client method that sends it and returns its result."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__wrapped__ = build  # inspect.signature() shows the builder's parameters

    def __call__(self, obj: _Sender, /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`Colonies.get_process(client, ...)`: the unbound form, like a plain method."""
        return obj._send(self.build(*args, **kwargs))  # type: ignore[no-any-return]

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> sync_rpc[P, T]: ...

    @overload
    def __get__(self, obj: _Sender, owner: type | None = None) -> Callable[P, T]: ...

    def __get__(self, obj: _Sender | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        build = self.build

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return obj._send(build(*args, **kwargs))  # type: ignore[no-any-return]

        return method


class async_rpc(Generic[P, T]):  # noqa: N801
    """The coroutine twin of `sync_rpc`."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__wrapped__ = build  # inspect.signature() shows the builder's parameters

    async def __call__(self, obj: _AsyncSender, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await obj._send(self.build(*args, **kwargs))  # type: ignore[no-any-return]

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> async_rpc[P, T]: ...

    @overload
    def __get__(self, obj: _AsyncSender, owner: type | None = None) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, obj: _AsyncSender | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        build = self.build

        @functools.wraps(build)
        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await obj._send(build(*args, **kwargs))  # type: ignore[no-any-return]

        return method


