"""The invocation routes without FastAPI's routing and dependency machinery.

`GET /function/{name}` and `POST /function/{name}` are nearly all of a gateway's traffic. Through
FastAPI each one went through route matching over every route, dependency resolution (two
dependencies, three header parameters), a Request object and a Response object: about a third of
the gateway's CPU per call, more than the call's own work. `FastCalls` is a pure ASGI middleware
that answers exactly these two routes directly, with the same shared code as the FastAPI routes
(`routes.invoke_response`, `routes.read_json`), the same auth check and the same error bodies.
Anything it does not recognise (other methods and paths, a name FastAPI would refuse) goes on to
FastAPI unchanged, which also still publishes both routes in the OpenAPI document.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from .errors import GatewayError, Unauthorized
from .routes import MAX_NAME, error_response_parts, invoke_response, read_json

__all__ = ["FastCalls"]

log = logging.getLogger(__name__)
_PREFIX = "/function/"
_JSON = (b"content-type", b"application/json")


class FastCalls:
    """ASGI middleware (see the module docstring); added with `app.add_middleware(FastCalls)`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.served = 0  # requests answered here rather than by FastAPI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "POST"):
            path: str = scope["path"]
            if path.startswith(_PREFIX):
                name = path[len(_PREFIX):]
                if name and "/" not in name and len(name) <= MAX_NAME:
                    self.served += 1
                    await self._call(scope, receive, send, name)
                    return
        await self.app(scope, receive, send)

    async def _call(self, scope: dict[str, Any], receive: Any, send: Any, name: str) -> None:
        state = scope["app"].state
        gw = state.gateway
        headers: dict[bytes, bytes] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k, v)  # the first of a repeated header, as Starlette's headers.get()
        try:
            reason = state.api_keys.check(_text(headers.get(b"authorization")))
            if reason is not None:
                raise Unauthorized(reason)
            query = tuple(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            body = None
            if scope["method"] == "POST":
                body = await read_json(_text(headers.get(b"content-length")) or "", _chunks(receive),
                                       gw.settings.max_body)
            content, extra = await invoke_response(gw, name, query, body, _text(headers.get(b"x-timeout")),
                                                   _text(headers.get(b"idempotency-key")))
            status = 200
        except GatewayError as e:
            if e.status >= 500:
                log.info("%s %s -> %d: %s", scope["method"], scope["path"], e.status, e.message[:200])
            content, extra, status = error_response_parts(e)
        except Exception as e:  # as app.py's catch-all: a JSON 500, never a dropped connection
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            content, extra, status = error_response_parts(e)
        raw = [(b"content-length", str(len(content)).encode()), _JSON]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _chunks(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
