"""The FastAPI application: wiring, lifespan, and the one place errors become responses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .auth import ApiKeys
from .client import close_client, make_client
from .errors import GatewayError
from .fastpath import FastCalls
from .routes import error_response_parts, json_response, router
from .service import Gateway
from .settings import Settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

DESCRIPTION = """Call deployed Python functions over HTTP.

`GET /function/{name}?k=v` and `POST /function/{name}` run a function and return
`{"result", "processid"}`; `POST /async-function/{name}` returns at once (202) and can POST the
result to `X-Callback-Url`. Every error body is `{"error": "<human message>", ...}`.
"""


def create_app(settings: Settings, client: Any = None) -> FastAPI:
    """The gateway app; `client` (an AsyncColonies) is made from settings when not given, and is
    closed at shutdown only when the app made it."""
    owned = client is None
    the_client = make_client(settings) if client is None else client
    gateway = Gateway(settings, the_client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()
            if owned:
                await close_client(the_client)

    app = FastAPI(title="colonyfaas gateway", description=DESCRIPTION, version="1", lifespan=lifespan)
    app.state.gateway = gateway
    app.state.api_keys = ApiKeys(settings.api_keys)
    app.include_router(router)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> Response:
        if exc.status >= 500:
            log.info("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc.message[:200])
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "header", "body"))
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return json_response({"error": "invalid request: " + "; ".join(problems)}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return json_response({"error": str(exc.detail)}, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return _error(exc)

    # GET/POST /function/{name} skip FastAPI's routing and dependencies (fastpath.py).
    app.add_middleware(FastCalls)
    return app


def _error(exc: Exception) -> Response:
    content, headers, status = error_response_parts(exc)
    return Response(content, status_code=status, headers=headers, media_type="application/json")
