"""Foreign exceptions become SDK errors in one place."""

from __future__ import annotations

import httpx
import pytest
import websockets.exceptions as wsx
from botocore.exceptions import ClientError, EndpointConnectionError

from sdk._boundary import translate, translate_errors
from sdk.errors import (
    ColoniesConnectionError,
    ColoniesTimeoutError,
    ForbiddenError,
    NotFoundError,
    ServerError,
    StoreError,
)


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


@pytest.mark.parametrize(("exc", "kind"), [
    (httpx.ConnectError("refused"), ColoniesConnectionError),
    (httpx.ReadTimeout("slow"), ColoniesTimeoutError),
    (httpx.RemoteProtocolError("eof"), ColoniesConnectionError),
    (wsx.InvalidHandshake("bad"), ColoniesConnectionError),
    (ConnectionRefusedError(111, "refused"), ColoniesConnectionError),
    (TimeoutError("open"), ColoniesTimeoutError),
    (client_error("NoSuchKey", 404), NotFoundError),
    (client_error("AccessDenied", 403), ForbiddenError),
    (client_error("SlowDown", 503), StoreError),
    (EndpointConnectionError(endpoint_url="http://x"), ColoniesConnectionError),
])
def test_translation(exc: Exception, kind: type[Exception]) -> None:
    assert type(translate(exc)) is kind
    with pytest.raises(kind) as info, translate_errors():
        raise exc
    assert info.value.__cause__ is exc


def test_a_reply_that_breaks_the_schema_is_a_server_error() -> None:
    from sdk.models import Process

    with pytest.raises(ServerError, match="schema"), translate_errors():
        Process.model_validate({"state": 99})


def test_other_exceptions_pass_through() -> None:
    assert translate(KeyError("x")) is None
    with pytest.raises(KeyError), translate_errors():
        raise KeyError("x")
    with pytest.raises(FileNotFoundError), translate_errors():
        raise FileNotFoundError("x")
    err = NotFoundError("n", 404)
    assert translate(err) is err
