"""The one place where third-party exceptions (httpx, websockets, botocore, pydantic, OS) become SDK errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pydantic
import websockets.exceptions as wsx

from .errors import (
    ColoniesConnectionError,
    ColoniesError,
    ColoniesTimeoutError,
    ForbiddenError,
    NotFoundError,
    ServerError,
    StoreError,
)

__all__ = ["translate", "translate_errors"]

_S3_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_S3_FORBIDDEN = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def _botocore(exc: BaseException) -> ColoniesError | None:
    # Matched by module so that botocore (an optional extra) is never imported here.
    if not type(exc).__module__.startswith("botocore"):
        return None
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"S3: {err.get('Message') or code} ({code})"
        if code in _S3_NOT_FOUND:
            return NotFoundError(message, status or 404)
        if code in _S3_FORBIDDEN:
            return ForbiddenError(message, status or 403)
        return StoreError(message, status)
    name = type(exc).__name__
    if "Timeout" in name:
        return ColoniesTimeoutError(f"S3: {exc}")
    if "Connection" in name or "Endpoint" in name:
        return ColoniesConnectionError(f"S3: {exc}")
    return StoreError(f"S3: {exc}")


def translate(exc: BaseException, where: str = "") -> ColoniesError | None:
    """The SDK error for a foreign exception, or None for exceptions that are not I/O failures."""
    if isinstance(exc, ColoniesError):
        return exc
    if isinstance(exc, pydantic.ValidationError):
        # Only server replies are validated under this boundary; a mismatch is the server's.
        return ServerError(f"reply does not match the protocol schema: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return ColoniesTimeoutError(f"request timed out: {exc!r}")
    if isinstance(exc, httpx.TransportError):
        return ColoniesConnectionError(f"cannot reach the server{f' at {where}' if where else ''}: {exc!r}")
    if isinstance(exc, wsx.InvalidStatus):
        status = exc.response.status_code
        return ColoniesConnectionError(f"websocket upgrade refused: HTTP {status}", status)
    if isinstance(exc, wsx.WebSocketException):
        return ColoniesConnectionError(f"websocket failed: {exc!r}")
    found = _botocore(exc)
    if found is not None:
        return found
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return ColoniesTimeoutError(f"timed out: {exc!r}")
    if isinstance(exc, (ConnectionError, OSError)) and not isinstance(exc, FileNotFoundError):
        return ColoniesConnectionError(f"cannot connect: {exc!r}")
    return None


@contextmanager
def translate_errors(where: str = "") -> Iterator[None]:
    """Re-raise httpx/websockets/botocore/socket failures as the SDK's typed errors (`where`: the
    server as a connection error names it)."""
    try:
        yield
    except ColoniesError:
        raise
    except Exception as exc:
        mapped = translate(exc, where)
        if mapped is None:
            raise
        raise mapped from exc
