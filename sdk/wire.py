"""Wire basics for the models: Go times, null-tolerant lists/maps, and the base model."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

__all__ = [
    "NullDict",
    "NullList",
    "Time",
    "WireModel",
    "ZERO_TIME",
]

ZERO_TIME = datetime(1, 1, 1, tzinfo=timezone.utc)
"""Go's zero `time.Time`: what the server sends for "not set"."""

_FRACTION = re.compile(r"(\.\d{6})\d+")
_OFFSET_WITH_SECONDS = re.compile(r"([+-]\d{2}:\d{2}):\d{2}$")


def _parse_time(value: Any) -> Any:
    """Accept Go's RFC 3339 times, including nanoseconds and any spelling of the zero time."""
    if value is None or value == "":
        return ZERO_TIME
    if isinstance(value, str):
        # Year-1 times may carry an offset (Postgres renders the zero time in the session zone,
        # even with a seconds part); converting those to UTC would fall off the calendar.
        if value.startswith("0001-01-01"):
            return ZERO_TIME
        if len(value) > 27:  # longer than "2026-01-02T03:04:05.123456Z": nanoseconds or an offset
            if value[-1] == "Z" and value[19] == "." and value[20:-1].isdigit():
                # Go's UTC RFC 3339 with nanoseconds, how the Go server writes every process time:
                # cut to microseconds without the regular expressions, which took half the CPU of
                # validating such a Process (16 µs → 8 here). Our server writes microseconds.
                return value[:26] + "Z"
            value = _FRACTION.sub(_first_group, value)  # Python keeps microseconds only
            value = _OFFSET_WITH_SECONDS.sub(_first_group, value)
    return value


def _first_group(m: re.Match[str]) -> str:
    return m.group(1)


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if value == ZERO_TIME:
        return "0001-01-01T00:00:00Z"
    utc = value.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


Time = Annotated[datetime, BeforeValidator(_parse_time), PlainSerializer(_format_time, when_used="json")]
"""A server time: never None; ZERO_TIME means unset."""

T = TypeVar("T")


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


def _none_to_dict(value: Any) -> Any:
    return {} if value is None else value


# Go nil slices and maps arrive as JSON null; the models always hold a list / dict instead.
NullList = Annotated[list[T], BeforeValidator(_none_to_list)]
NullDict = Annotated[dict[str, T], BeforeValidator(_none_to_dict)]


class WireModel(BaseModel):
    """Base of all wire models: unknown (newer) fields are kept, names may be given by alias."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object as the Go server and pycolonies spell it."""
        return self.model_dump(mode="json", by_alias=True)
