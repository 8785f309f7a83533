"""Wire times: RFC 3339 UTC strings with microseconds; the zero time is Go's 0001-01-01T00:00:00Z."""

from __future__ import annotations

import time

__all__ = ["ZERO_TIME", "fmt_time", "parse_time"]

ZERO_TIME = "0001-01-01T00:00:00Z"


# Recently formatted times → their value (to microseconds), so the store's parse_time of a time the
# server just wrote is a dict hit instead of a datetime parse. Bounded by clearing.
_recent: dict[str, int] = {}
# Seconds recently formatted → their text. Most times fall in a few seconds: now, and a deadline
# (now + maxexectime) for each call, which a cache of the last second alone missed twice a call.
_seconds: dict[int, str] = {}


def fmt_time(ns: int) -> str:
    """Unix nanoseconds → "YYYY-MM-DDTHH:MM:SS.ffffffZ" (0 → the zero time)."""
    if ns <= 0:
        return ZERO_TIME
    sec, rem = divmod(ns, 1_000_000_000)
    head = _seconds.get(sec)
    if head is None:
        if len(_seconds) >= 256:
            _seconds.clear()
        head = _seconds[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    text = f"{head}.{rem // 1000:06d}Z"
    if len(_recent) > 100_000:
        _recent.clear()
    _recent[text] = ns - ns % 1000
    return text


def parse_time(text: object) -> int:
    """A wire time back to Unix nanoseconds (0 for the zero time or anything unparseable)."""
    hit = _recent.get(text) if isinstance(text, str) else None
    if hit is not None:
        return hit
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return 0
    from datetime import datetime

    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
