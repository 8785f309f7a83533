"""The invocation routes without FastAPI's routing and dependency machinery.

`GET /function/{name}` and `POST /function/{name}` are nearly all of a gateway's traffic. Through
FastAPI each one went through route matching over every route, dependency resolution (two
dependencies, three header parameters), a Request object and a Response object: about a third of
the gateway's CPU per call, more than the call's own work. `FastCalls` is a pure ASGI middleware
that answers exactly these two routes directly, with the same shared code as the FastAPI routes
(`routes.invoke_response`, `routes.read_json`), the same auth check and the same error bodies.
Anything it does not recognise (other methods and paths, a name FastAPI would refuse) goes on to
FastAPI unchanged, which also still publishes both routes in the OpenAPI document.

`answer` is the whole exchange without any transport; `FastCalls` serves it over ASGI, and
serving.GatewayHttpProtocol straight from uvicorn's HTTP parser (no ASGI at all).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from .errors import GatewayError, Unauthorized
from .routes import MAX_NAME, error_response_parts, invoke_response, read_json

__all__ = ["FastCalls", "answer", "is_call"]

log = logging.getLogger(__name__)
_PREFIX = "/function/"
_JSON = (b"content-type", b"application/json")


def is_call(method: str, path: str) -> str | None:
    """The function name when this request is one of the two routes answered here, else None."""
    if method in ("GET", "POST") and path.startswith(_PREFIX):
        name = path[len(_PREFIX):]
        if name and "/" not in name and len(name) <= MAX_NAME:
            return name
    return None


async def answer(state: Any, method: str, path: str, name: str, query_string: bytes,
                 headers: dict[bytes, bytes], body: AsyncIterator[bytes] | None
                 ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) of GET/POST /function/{name}. `state` is the app's state,
    `headers` has lower-case names (the first of a repeated header), `body` the request body's
    chunks (POST)."""
    gw = state.gateway
    try:
        reason = state.api_keys.check(_text(headers.get(b"authorization")))
        if reason is not None:
            raise Unauthorized(reason)
        query = _query(query_string)
        payload = None
        if method == "POST" and body is not None:
            payload = await read_json(_text(headers.get(b"content-length")) or "", body, gw.settings.max_body)
        content, extra = await invoke_response(gw, name, query, payload, _text(headers.get(b"x-timeout")),
                                               _text(headers.get(b"idempotency-key")))
        status = 200
    except GatewayError as e:
        if e.status >= 500:
            log.info("%s %s -> %d: %s", method, path, e.status, e.message[:200])
        content, extra, status = error_response_parts(e)
    except Exception as e:  # as app.py's catch-all: a JSON 500, never a dropped connection
        log.exception("unhandled error in %s %s", method, path)
        content, extra, status = error_response_parts(e)
    raw = [(b"content-length", str(len(content)).encode()), _JSON]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    return status, raw, content


class FastCalls:
    """ASGI middleware (see the module docstring); added with `app.add_middleware(FastCalls)`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.served = 0  # requests answered here rather than by FastAPI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            name = is_call(scope["method"], scope["path"])
            if name is not None:
                self.served += 1
                headers: dict[bytes, bytes] = {}
                for k, v in scope["headers"]:
                    headers.setdefault(k, v)  # the first of a repeated header, as Starlette's headers.get()
                status, raw, content = await answer(scope["app"].state, scope["method"], scope["path"], name,
                                                    scope["query_string"], headers, _chunks(receive))
                await send({"type": "http.response.start", "status": status, "headers": raw})
                await send({"type": "http.response.body", "body": content})
                return
        await self.app(scope, receive, send)


def _query(raw: bytes) -> tuple[tuple[str, str], ...]:
    """parse_qsl(keep_blank_values=True) of the query string; without '%' or '+' there is nothing
    to decode, and splitting it here takes a third of parse_qsl's time."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return tuple(parse_qsl(text, keep_blank_values=True))
    pairs = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((name, value))
    return tuple(pairs)


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
