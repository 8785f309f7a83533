"""The error tree and the status/message mapping."""

from __future__ import annotations

import pytest

from sdk.errors import (
    BadRequestError,
    ChecksumError,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesTimeoutError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ResponseTooLargeError,
    ServerError,
    StoreError,
    error_from_status,
)


@pytest.mark.parametrize(("status", "message", "kind"), [
    (400, "Failed to submit, invalid JSON", BadRequestError),
    (400, "A Colony with name dev already exists", ConflictError),
    (400, "Executor with name e in Colony dev already exists", ConflictError),
    (400, "User with name u not found", NotFoundError),
    (403, "Access denied, not a member of Colony with name dev", ForbiddenError),
    (403, "Colony with name x does not exists", ForbiddenError),
    (404, "No process available for assignment", NotFoundError),
    (404, "Failed to get process", NotFoundError),
    (408, "Colony is paused", ColoniesTimeoutError),
    (413, "too large", ResponseTooLargeError),
    (500, "Failed to get executor, executor is nil", NotFoundError),
    (500, "Failed to submit workflow, invalid dependencies", ServerError),
    (503, "assignments paused", ServerError),
    (418, "teapot", ColoniesError),
])
def test_status_and_text_choose_the_class(status: int, message: str, kind: type[ColoniesError]) -> None:
    err = error_from_status(status, message)
    assert type(err) is kind
    assert err.status == status and err.message == message
    assert message in str(err) and str(status) in str(err)


def test_every_error_is_a_colonies_error() -> None:
    for kind in (BadRequestError, ForbiddenError, NotFoundError, ConflictError, ColoniesTimeoutError,
                 ServerError, ColoniesConnectionError, ChecksumError, ResponseTooLargeError, StoreError):
        assert issubclass(kind, ColoniesError)


def test_timeout_and_connection_errors_are_builtin_kinds_too() -> None:
    assert isinstance(ColoniesTimeoutError("x"), TimeoutError)
    assert isinstance(ColoniesConnectionError("x"), ConnectionError)
    assert ColoniesTimeoutError("x").processes == []


def test_without_status_only_the_message_is_shown() -> None:
    assert str(ChecksumError("bad bytes")) == "bad bytes"
    assert ChecksumError("bad bytes").status == 0
