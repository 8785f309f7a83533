"""Go times (every zero-time spelling, nanoseconds, offsets) and null-tolerant containers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from sdk.wire import ZERO_TIME, NullDict, NullList, Time

TIME: TypeAdapter[datetime] = TypeAdapter(Time)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00",
                                  "0001-01-01T00:53:28+00:53:28", "0001-01-01T01:00:00+01:00",
                                  "0001-01-01T00:00:00.000000Z", "", None])
def test_every_zero_time_spelling_is_zero(text: str | None) -> None:
    assert TIME.validate_python(text) == ZERO_TIME
    assert TIME.dump_python(TIME.validate_python(text), mode="json") == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-02T08:19:10.123456789+01:00", datetime(2026, 1, 2, 7, 19, 10, 123456, tzinfo=timezone.utc)),
    ("2026-01-02T08:19:10Z", datetime(2026, 1, 2, 8, 19, 10, tzinfo=timezone.utc)),
    ("2026-01-02T08:19:10.5-02:00", datetime(2026, 1, 2, 10, 19, 10, 500000, tzinfo=timezone.utc)),
])
def test_real_times(text: str, expected: datetime) -> None:
    assert TIME.validate_python(text) == expected


@pytest.mark.parametrize("text", [
    "2026-12-07T14:00:00.123456789Z", "2026-12-07T14:00:00.1234567Z", "2026-12-07T14:00:00.000000001Z",
    "2026-12-07T14:00:00.999999999Z", "2026-12-07T14:00:00.123456789+00:00", "2026-12-07T14:00:00.12345678-03:30",
])
def test_nanoseconds_are_cut_to_microseconds_in_every_spelling(text: str) -> None:
    # The UTC "Z" form (the server's) takes a short cut; it must agree with the general path,
    # which the same instant written with an offset goes through.
    got = TIME.validate_python(text)
    head, _, rest = text[20:].partition("Z") if text.endswith("Z") else (text[20:-6], "", text[-6:])
    digits = "".join(c for c in head if c.isdigit())
    expected = datetime.fromisoformat(text[:20] + digits[:6].ljust(6, "0") + (rest or "+00:00"))
    assert got == expected and got.microsecond == int(digits[:6].ljust(6, "0"))


def test_times_are_sent_in_utc_with_z() -> None:
    t = datetime(2026, 1, 2, 8, 19, 10, 120000, tzinfo=timezone(timedelta(hours=1)))
    assert TIME.dump_python(t, mode="json") == "2026-01-02T07:19:10.12Z"
    assert TIME.dump_python(datetime(2026, 1, 2), mode="json") == "2026-01-02T00:00:00Z"  # naive = UTC


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)))
def test_time_round_trip(t: datetime) -> None:
    assert TIME.validate_python(TIME.dump_python(t, mode="json")) == t


def test_null_containers() -> None:
    assert TypeAdapter(NullList[int]).validate_python(None) == []
    assert TypeAdapter(NullList[int]).validate_python([1]) == [1]
    assert TypeAdapter(NullDict[str]).validate_python(None) == {}
