"""The gateway's error tree; each error knows its HTTP status and JSON body. SDK errors are translated here."""

from __future__ import annotations

from typing import Any

from sdk.errors import (
    BadRequestError,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesTimeoutError,
    ForbiddenError,
    NotFoundError,
)

__all__ = [
    "BadRequest",
    "Conflict",
    "FunctionFailed",
    "FunctionNotFound",
    "GatewayError",
    "NotFound",
    "PayloadTooLarge",
    "ResultTimeout",
    "ServerUnavailable",
    "Unauthorized",
    "UpstreamError",
    "from_colonies",
]


class GatewayError(Exception):
    """Root of the gateway's errors: an HTTP status and a human message (plus optional JSON fields)."""

    status = 500

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.fields}

    def headers(self) -> dict[str, str]:
        pid = self.fields.get("processid")
        return {"X-Process-Id": pid} if isinstance(pid, str) and pid else {}


class BadRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="colonyfaas"'}


class NotFound(GatewayError):
    status = 404


class FunctionNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"no function named {name!r} is deployed", function=name)


class PayloadTooLarge(GatewayError):
    status = 413


class Conflict(GatewayError):
    """An Idempotency-Key reused with different arguments."""

    status = 422


class FunctionFailed(GatewayError):
    """The function raised: the message is its traceback text."""

    status = 500


class UpstreamError(GatewayError):
    """The Colonies server answered with something the gateway cannot turn into a reply."""

    status = 502


class ServerUnavailable(GatewayError):
    status = 503


class ResultTimeout(GatewayError):
    """No result in time; the process stays queued or running and can be fetched later."""

    status = 504


def from_colonies(e: ColoniesError, what: str = "") -> GatewayError:
    """The one place SDK errors become HTTP errors."""
    prefix = f"{what}: " if what else ""
    if isinstance(e, ColoniesConnectionError):
        return ServerUnavailable(f"{prefix}colonies server unreachable: {e.message}")
    if isinstance(e, ColoniesTimeoutError):
        return ServerUnavailable(f"{prefix}colonies server did not answer in time: {e.message}")
    if isinstance(e, NotFoundError):
        return NotFound(f"{prefix}{e.message}")
    if isinstance(e, BadRequestError):
        return BadRequest(f"{prefix}{e.message}")
    if isinstance(e, ForbiddenError):
        # The gateway's own key was refused: a deployment problem, not the caller's.
        return UpstreamError(f"{prefix}colonies server refused the gateway's key: {e.message}")
    return UpstreamError(f"{prefix}colonies server error: {e.message}")
