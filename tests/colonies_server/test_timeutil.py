"""Wire times: formatting (with its per-second cache) and parsing back."""

from __future__ import annotations

from datetime import datetime, timezone

from colonies_server.timeutil import ZERO_TIME, fmt_time, parse_time


def _reference(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000 // 1000:06d}Z"


def test_times_format_like_the_go_server_across_second_boundaries() -> None:
    base = 1_800_000_000 * 1_000_000_000
    # Within one second, across its end, back to an earlier second, and far away: the cached
    # second must never leak into another one.
    for ns in (base + 123_456_789, base + 999_999_999, base + 1_000_000_000, base + 1,
               base - 1, base + 86_400 * 1_000_000_000 * 400, 1):
        assert fmt_time(ns) == _reference(ns)
        assert parse_time(fmt_time(ns)) == ns - ns % 1000
    # Alternating between two seconds (now and a deadline), and past the cache's bound.
    for i in range(600):
        ns = base + (i % 2) * 65_000_000_000 + i * 7_000_000_000 // 2 + i
        assert fmt_time(ns) == _reference(ns)


def test_zero_and_unparseable_times() -> None:
    assert fmt_time(0) == fmt_time(-5) == ZERO_TIME
    assert parse_time(ZERO_TIME) == 0
    assert parse_time("not a time") == 0 and parse_time(None) == 0
    second = int(datetime(2027, 1, 15, 8, 30, tzinfo=timezone.utc).timestamp())
    assert parse_time("2027-01-15T08:30:00.250000Z") == second * 1_000_000_000 + 250_000_000
