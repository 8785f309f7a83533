"""`Call`: one RPC as data (message + reply parser); the pure base both clients send through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .errors import ColoniesError

__all__ = ["Call", "as_list", "as_model", "as_none", "as_optional_model", "as_raw"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[T]):
    """A message to sign and send, and how to turn the reply payload into a result.

    `none_if` names error text that means "no result" rather than failure (e.g. assign's
    "No process available"): the call then returns `parse(None)`.
    """

    msg: dict[str, Any]
    parse: Callable[[Any], T]
    prvkey: str | None = None
    none_if: str | None = None

    @property
    def msgtype(self) -> str:
        return str(self.msg["msgtype"])

    def result(self, payload: Any) -> T:
        return self.parse(payload)

    def absorbs(self, error: ColoniesError) -> bool:
        """True when this error is the server's way of saying "nothing" for this call."""
        return self.none_if is not None and self.none_if.lower() in error.message.lower()


def as_model(model: type[M]) -> Callable[[Any], M]:
    def parse(payload: Any) -> M:
        return model.model_validate(payload if payload is not None else {})

    return parse


def as_optional_model(model: type[M]) -> Callable[[Any], M | None]:
    def parse(payload: Any) -> M | None:
        return None if payload is None else model.model_validate(payload)

    return parse


def as_list(model: type[M]) -> Callable[[Any], list[M]]:
    """A list reply; the Go server sends `null` for an empty list."""

    def parse(payload: Any) -> list[M]:
        return [model.model_validate(item) for item in payload or []]

    return parse


def as_none(payload: Any) -> None:
    return None


def as_raw(payload: Any) -> Any:
    return payload
