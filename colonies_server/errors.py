"""The one error type handlers raise; the RPC layer turns it into the reply envelope."""

from __future__ import annotations

__all__ = ["NoReply", "RPCError", "bad_request", "forbidden", "internal", "not_found"]


class RPCError(Exception):
    """An error reply: HTTP status + message, exactly what goes into {"status", "message"}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NoReply(Exception):
    """Answer HTTP 200 with an empty body: upstream's reply to a refused getcolonystatsmsg/getprocesshistmsg
    (quirk §8.13, kept because the role matrix of the reference server shows it)."""


def bad_request(message: str) -> RPCError:
    return RPCError(400, message)


def forbidden(message: str) -> RPCError:
    return RPCError(403, message)


def not_found(message: str) -> RPCError:
    return RPCError(404, message)


def internal(message: str) -> RPCError:
    return RPCError(500, message)
