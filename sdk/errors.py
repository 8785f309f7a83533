"""The SDK's error tree: one root, subclasses by meaning, each with the server's status and message."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequestError",
    "ChecksumError",
    "ColoniesConnectionError",
    "ColoniesError",
    "ColoniesTimeoutError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "ResponseTooLargeError",
    "ServerError",
    "StoreError",
    "error_from_status",
]


class ColoniesError(Exception):
    """Root of every error the SDK raises; `.status` is the HTTP status (0 when none) and
    `.message` the server's (or the SDK's) text."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} (status {self.status})" if self.status else self.message


class BadRequestError(ColoniesError):
    """The server refused the request as malformed or invalid (400)."""


class ForbiddenError(ColoniesError):
    """The signer may not do this: bad signature, not a member, not the owner (403)."""


class NotFoundError(ColoniesError):
    """The named object does not exist (404, or a 400/500 whose text says so)."""


class ConflictError(ColoniesError):
    """The object already exists (the server answers 400 "... already exists")."""


class ColoniesTimeoutError(ColoniesError, TimeoutError):
    """A deadline passed: a `wait`, a paused assign (408) or the HTTP request itself.

    From `wait_many`, `.processes` holds the last known state of every process waited for."""

    processes: list[Any]

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message, status)
        self.processes = []


class ServerError(ColoniesError):
    """The server failed internally (5xx), or its reply was not a Colonies envelope."""


class ColoniesConnectionError(ColoniesError, ConnectionError):
    """The server (or the S3 store) cannot be reached."""


class ChecksumError(ColoniesError):
    """Downloaded bytes do not match the checksum (or size) recorded in CFS."""


class ResponseTooLargeError(ColoniesError):
    """The request or reply exceeded the server's size limit (413)."""


class StoreError(ColoniesError):
    """The byte store (S3 or local directory) refused an operation."""


# Text that the Go server (and compatible ones) put in replies whose status does not say
# what happened: several "not found" cases come back as 400 or 500 there (protocol §1.3).
_NOT_FOUND_TEXT = ("not found", "does not exist", "is nil", "no such", "not exist")
_CONFLICT_TEXT = ("already exists", "already exist", "duplicate")


def error_from_status(status: int, message: str) -> ColoniesError:
    """The typed error for a server reply with this HTTP status and message text."""
    text = message.lower()
    if any(t in text for t in _CONFLICT_TEXT) and status in (400, 409, 500):
        return ConflictError(message, status)
    if status == 404:
        return NotFoundError(message, status)
    if status == 403:
        # "Colony with name x does not exists" is a role failure: keep it a ForbiddenError.
        return ForbiddenError(message, status)
    if status in (400, 500) and any(t in text for t in _NOT_FOUND_TEXT):
        return NotFoundError(message, status)
    if status == 400 or status == 422:
        return BadRequestError(message, status)
    if status in (408, 504):
        return ColoniesTimeoutError(message, status)
    if status == 413:
        return ResponseTooLargeError(message, status)
    if status >= 500:
        return ServerError(message, status)
    return ColoniesError(message, status)
