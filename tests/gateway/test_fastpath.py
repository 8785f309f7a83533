"""fastpath.FastCalls answers GET/POST /function/{name} exactly as the FastAPI routes would.

The same requests go to two gateways on the same server and executor: the app as shipped, and the
app with the FastCalls middleware taken out (so FastAPI's own routes answer). Every outcome must
match: status, error text, result, and the header names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from gateway.fastpath import FastCalls, _query

from .conftest import RealExecutor

# (method, path, keyword arguments for httpx)
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/function/convert?celsius=21", {}),
    ("GET", "/function/convert?celsius=21&celsius=22", {}),  # a repeated name: 400 unless a list parameter
    ("GET", "/function/greet?name=a&punctuation=!&name=b", {}),
    ("GET", "/function/echo?x=" + "[" * 129 + "]" * 129, {}),  # nests too deep: 400
    ("GET", "/function/convert?celsius=hot", {}),
    ("GET", "/function/convert", {}),
    ("GET", "/function/convert?celsius=1&nope=2", {}),
    ("GET", "/function/greet?name=caf%C3%A9&punctuation=", {}),
    ("GET", "/function/echo?a=1&&b=&c&d=x=y&=e", {}),  # split without parse_qsl (no % or +)
    ("GET", "/function/nosuchfunction", {}),
    ("GET", "/function/boom?reason=no", {}),
    ("GET", "/function/" + "n" * 256, {}),  # longer than a name may be: FastAPI's 400 either way
    ("GET", "/function/convert?celsius=1", {"headers": {"X-Timeout": "soon"}}),
    ("GET", "/function/convert?celsius=1", {"headers": {"Idempotency-Key": " "}}),
    ("POST", "/function/convert", {"json": {"celsius": 100}}),
    ("POST", "/function/convert", {"json": [100]}),
    ("POST", "/function/convert", {"json": {"args": [5], "kwargs": {}}}),
    ("POST", "/function/convert", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/function/convert", {"content": b"", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/function/echo", {"json": {"pad": "p" * 3000}}),  # over max_body below
    ("POST", "/function/echo", {"content": b"[" * 1000 + b"]" * 1000}),  # nests too deep: 400
    ("POST", "/function/echo", {"content": b"[" * 500 + b"1" * 20 + b"]" * 500}),  # the same, read by json
    ("PUT", "/function/convert", {}),  # not ours: FastAPI's 405 in both
    ("HEAD", "/function/convert?celsius=1", {}),  # not ours either: FastAPI's 405 (a HEAD never runs one)
]
NOT_OURS = 3  # the long name, the PUT and the HEAD


def _comparable(r: httpx.Response) -> tuple[int, Any, set[str]]:
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "processid"}
        if isinstance(body.get("error"), str) and "Traceback" in body["error"]:
            body["error"] = body["error"].splitlines()[-1]  # tracebacks name their own process
    return r.status_code, body, set(r.headers) - {"x-duration-ms"}


def _fast_calls(app: Any) -> FastCalls:
    layer = app.middleware_stack  # built on the first request
    while not isinstance(layer, FastCalls):
        layer = layer.app
    return layer


@asynccontextmanager
async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        yield http


async def test_the_fast_path_answers_like_fastapi(make_app: Any, executor: RealExecutor) -> None:
    fast = make_app(max_body=2048)
    plain = make_app(max_body=2048)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not FastCalls]
    assert len(plain.user_middleware) == len(fast.user_middleware) - 1
    async with _client(fast) as f, _client(plain) as p:
        for method, path, kw in REQUESTS:
            a = _comparable(await f.request(method, path, **kw))
            b = _comparable(await p.request(method, path, **kw))
            assert a == b, f"{method} {path[:60]}: fast path {a} != FastAPI {b}"
        # The shipped app answered them itself (all but the long name, the PUT and the HEAD).
        assert _fast_calls(fast).served == len(REQUESTS) - NOT_OURS
        # And with API keys on: the same refusals.
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
            keyed = [make_app(api_keys=frozenset({"s3cret"})) for _ in range(2)]
            keyed[1].user_middleware = [m for m in keyed[1].user_middleware if m.cls is not FastCalls]
            async with _client(keyed[0]) as kf, _client(keyed[1]) as kp:
                a = _comparable(await kf.get("/function/convert?celsius=1", headers=headers))
                b = _comparable(await kp.get("/function/convert?celsius=1", headers=headers))
                assert a == b and a[0] == 401, (headers, a, b)


@pytest.mark.parametrize("raw", [
    b"", b"celsius=21", b"a=1&b=2&a=3", b"a=1&&b=&c&d=x=y&=e&", b"&&", b"=", b"a;b=1", b"x=[1,2]&y={}",
    b"name=caf%C3%A9&p=%21", b"a+b=c+d", b"q=%zz&r=%", b"n=caf\xc3\xa9&m=\xff",
])
def test_the_query_is_split_as_parse_qsl_splits_it(raw: bytes) -> None:
    """Starlette's query_params (the FastAPI routes) are parse_qsl(keep_blank_values=True) of it."""
    assert _query(raw) == tuple(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
