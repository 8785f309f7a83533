"""HTTP routes: parse the request, call the Gateway core, render JSON. Errors are rendered in app.py."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response

from sdk import jsonx

from .callbacks import check_callback_url
from .errors import BadRequest, GatewayError, NotFound, PayloadTooLarge, ServerUnavailable, Unauthorized
from .idempotency import MAX_KEY_LENGTH
from .jsondepth import MAX_DEPTH, nests_deeper
from .metrics import CONTENT_TYPE
from .service import Call, Gateway, parse_timeout, process_view

__all__ = ["MAX_NAME", "error_response_parts", "invoke_response", "json_response", "read_json", "router"]

_PROCESS_ID = re.compile(r"^[0-9a-f]{64}$")
_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"}, "processid": {"type": "string"}},
}}}}
_BODY = {"requestBody": {"required": False, "content": {"application/json": {"schema": {
    "description": 'Keyword arguments as an object, positional arguments as an array, or '
                   '{"args": [...], "kwargs": {...}}',
    "anyOf": [{"type": "object"}, {"type": "array"}],
}}}}}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_json_bytes(body), status_code=status, headers=headers, media_type="application/json")


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def _get_and_head(on: APIRouter, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
    """Route GET and HEAD of a read route to one endpoint: load balancers and uptime checkers probe
    with HEAD. The HEAD answer is the GET one; the HTTP server (uvicorn; httpx's ASGI transport in
    tests) leaves its body out and keeps its headers. Two routes, not methods=["GET", "HEAD"]:
    FastAPI would give both OpenAPI operations one operationId."""
    def register(endpoint: _Endpoint) -> _Endpoint:
        on.get(path, **options)(endpoint)
        on.head(path, **{**options, "summary": f"{options.get('summary', path)} (headers only)"})(endpoint)
        return endpoint
    return register


# Dependencies are coroutines: a plain `def` would hop to the thread pool on every request.
async def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def require_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    reason = request.app.state.api_keys.check(authorization)
    if reason is not None:
        raise Unauthorized(reason)


GatewayDep = Annotated[Gateway, Depends(gateway)]
router = APIRouter()
api = APIRouter(dependencies=[Depends(require_key)],
                responses={401: {"description": "API key missing or wrong", **_ERROR}})

TimeoutHeader = Annotated[str | None, Header(alias="X-Timeout", description="seconds to wait (default 30)")]
IdemHeader = Annotated[str | None, Header(alias="Idempotency-Key",
                                          description="retries with the same key return the same invocation")]
MAX_NAME = 255
NamePath = Annotated[str, Path(description="the function's name", max_length=MAX_NAME)]


def _idem(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    return key


async def _body(request: Request, limit: int) -> Any:
    return await read_json(request.headers.get("content-length", ""), request.stream(), limit)


async def read_json(declared: str, chunks: AsyncIterator[bytes], limit: int) -> Any:
    """The JSON body, read as a stream and refused (413) as soon as it passes `limit` bytes."""
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    raw = b"".join(parts)
    if not raw.strip():
        return None
    if nests_deeper(raw):
        raise BadRequest(f"request body nests deeper than {MAX_DEPTH} levels of arrays and objects")
    try:
        return jsonx.loads(raw)  # exact for integers past 64 bits
    except ValueError as e:
        raise BadRequest(f"request body is not valid JSON: {e}") from None


def _json_bytes(body: Any) -> bytes:
    return jsonx.dumps(body)  # orjson, or json for integers beyond 64 bits (which JSON allows)


async def invoke_response(gw: Gateway, name: str, query: tuple[tuple[str, str], ...], body: Any,
                          timeout: str | None, idem: str | None) -> tuple[bytes, dict[str, str]]:
    """A synchronous call's 200 body and headers (GatewayError for every other outcome); shared by
    the FastAPI routes below and fastpath.FastCalls, which serves them on the hot path."""
    started = time.perf_counter()
    wait = parse_timeout(timeout, gw.settings.timeout, gw.settings.max_timeout)
    call = Call(function=name, query=query, body=body, idempotency_key=_idem(idem))
    result = await gw.invoke(call, wait)
    ms = (time.perf_counter() - started) * 1000
    return (_json_bytes({"result": result.value, "processid": result.processid}),
            {"X-Process-Id": result.processid, "X-Duration-Ms": f"{ms:.2f}"})


def error_response_parts(exc: Exception) -> tuple[bytes, dict[str, str], int]:
    """Body, headers and status of the error response app.py's handlers give for `exc`."""
    if isinstance(exc, GatewayError):
        return _json_bytes(exc.body()), exc.headers(), exc.status
    return _json_bytes({"error": f"internal gateway error: {type(exc).__name__}: {exc}"}), {}, 500


async def _invoke(gw: Gateway, request: Request, name: str, body: Any, timeout: str | None,
                  idem: str | None) -> Response:
    content, headers = await invoke_response(gw, name, tuple(request.query_params.multi_items()), body,
                                             timeout, idem)
    return Response(content, headers=headers, media_type="application/json")


_SYNC_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the function's return value",
          "content": {"application/json": {"schema": {"type": "object", "required": ["result", "processid"],
                                                      "properties": {"result": {}, "processid": {"type": "string"}}}}}},
    400: {"description": "missing, unknown or unconvertible parameters", **_ERROR},
    413: {"description": "request body too large", **_ERROR},
    404: {"description": "no such function", **_ERROR},
    422: {"description": "Idempotency-Key reused with other arguments", **_ERROR},
    500: {"description": "the function raised: error is its traceback", **_ERROR},
    502: {"description": "the Colonies server refused the request", **_ERROR},
    503: {"description": "the Colonies server is unreachable", **_ERROR},
    504: {"description": "no result in time; the invocation stays queued", **_ERROR},
}


@api.get("/function/{name}", responses=_SYNC_RESPONSES, summary="Call a function (query = keyword arguments)",
         response_class=Response)
async def call_get(name: NamePath, request: Request, gw: GatewayDep, x_timeout: TimeoutHeader = None,
                   idempotency_key: IdemHeader = None) -> Response:
    return await _invoke(gw, request, name, None, x_timeout, idempotency_key)


@api.post("/function/{name}", responses=_SYNC_RESPONSES, openapi_extra=_BODY,
          summary="Call a function (JSON body = arguments)", response_class=Response)
async def call_post(name: NamePath, request: Request, gw: GatewayDep, x_timeout: TimeoutHeader = None,
                    idempotency_key: IdemHeader = None) -> Response:
    return await _invoke(gw, request, name, await _body(request, gw.settings.max_body), x_timeout, idempotency_key)


@api.post("/async-function/{name}", status_code=202, openapi_extra=_BODY, response_class=Response,
          summary="Submit a call and return at once; the result can go to X-Callback-Url",
          responses={202: {"description": "accepted", "content": {"application/json": {"schema": {
              "type": "object", "required": ["processid", "status_url"],
              "properties": {"processid": {"type": "string"}, "status_url": {"type": "string"}}}}}},
              **{k: v for k, v in _SYNC_RESPONSES.items() if k not in (200, 500, 504)}})
async def call_async(
    name: NamePath, request: Request, gw: GatewayDep, idempotency_key: IdemHeader = None,
    x_callback_url: Annotated[str | None, Header(alias="X-Callback-Url",
                                                 description="receives the result as a POST")] = None,
) -> Response:
    if x_callback_url is not None:
        problem = check_callback_url(x_callback_url)
        if problem:
            raise BadRequest(problem)
    call = Call(function=name, query=tuple(request.query_params.multi_items()),
                body=await _body(request, gw.settings.max_body),
                idempotency_key=_idem(idempotency_key))
    pid, _ = await gw.invoke_async(call, x_callback_url)
    url = str(request.url_for("get_process", processid=pid))
    return json_response({"processid": pid, "status_url": url}, 202,
                         headers={"X-Process-Id": pid, "Location": url})


_PROCESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such process", **_ERROR},
    503: {"description": "the Colonies server is unreachable", **_ERROR},
}


def _check_pid(processid: str) -> str:
    if not _PROCESS_ID.match(processid):
        raise NotFound(f"no process with id {processid!r} (ids are 64 hex characters)")
    return processid


@_get_and_head(api, "/processes/{processid}", name="get_process", responses=_PROCESS_RESPONSES,
               response_class=Response, summary="State and result of an invocation")
async def get_process(processid: str, gw: GatewayDep) -> Response:
    process = await gw.get_process(_check_pid(processid))
    return json_response(process_view(process))


@_get_and_head(api, "/processes/{processid}/logs", responses=_PROCESS_RESPONSES, response_class=Response,
               summary="Log lines an invocation wrote")
async def get_logs(processid: str, gw: GatewayDep,
                   count: Annotated[int, Query(ge=1, le=500)] = 100,
                   since: Annotated[int, Query(ge=0, description="only lines after this Unix ns time")] = 0,
                   ) -> Response:
    logs = await gw.logs(_check_pid(processid), count, since)
    return json_response({"processid": processid, "logs": logs})


@_get_and_head(api, "/functions", response_class=Response, summary="Deployed functions",
               responses={503: {"description": "the Colonies server is unreachable", **_ERROR}})
async def list_functions(gw: GatewayDep) -> Response:
    return json_response({"functions": await gw.functions()})


@_get_and_head(api, "/functions/{name}", response_class=Response, summary="Signature, docstring and versions",
               responses={404: {"description": "no such function", **_ERROR},
                          503: {"description": "the Colonies server is unreachable", **_ERROR}})
async def describe_function(name: NamePath, gw: GatewayDep) -> Response:
    return json_response(await gw.function(name))


@_get_and_head(router, "/healthz", response_class=Response, summary="200 when the Colonies server is reachable",
               responses={503: {"description": "the Colonies server is unreachable or did not answer in time",
                                **_ERROR}})
async def healthz(gw: GatewayDep) -> Response:
    try:
        version = await _server_version(gw)
    except GatewayError as e:
        return json_response({"status": "unavailable", "error": e.message}, 503)
    return json_response({"status": "ok", "server": version})


async def _server_version(gw: Gateway) -> str:
    """The server's version, or 503 after settings.health_timeout: a server that accepts
    connections but never answers would otherwise hold the probe for the whole RPC timeout."""
    limit = gw.settings.health_timeout
    try:
        return await asyncio.wait_for(gw.server_version(), limit)
    except asyncio.TimeoutError:  # the builtin TimeoutError only from 3.11
        raise ServerUnavailable(f"health check: colonies server did not answer in time ({limit:g} s)") from None


@_get_and_head(router, "/metrics", response_class=Response, summary="Prometheus metrics",
               responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(gw: GatewayDep) -> Response:
    waiting, up = await gw.waiting()
    text = gw.metrics.render(waiting, server_up=up)
    return Response(text, media_type=CONTENT_TYPE)


router.include_router(api)


# Declared after the routes above: on another method (PUT …) Starlette's 405 names the methods of
# the first route matching the path, which must stay GET /function/{name}'s.
@router.head("/function/{name}", include_in_schema=False, response_class=Response)
async def call_head() -> Response:
    """A HEAD never runs a function (clients take HEAD to be safe: monitors and link checkers send
    it): 405, naming the methods that do, with an empty body."""
    return Response(status_code=405, headers={"Allow": "GET, POST"})


@router.api_route("/function/{name}", methods=["PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False)
async def call_other_method(request: Request) -> Response:
    """405 naming both methods that run a function (Starlette's own would name only the first
    route's, GET)."""
    return json_response({"error": f"{request.method} is not allowed on /function/{{name}}: use GET or POST"}, 405,
                         {"Allow": "GET, POST"})
