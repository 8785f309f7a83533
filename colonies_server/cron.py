"""Cron expressions with seconds (6 fields: sec min hour day-of-month month day-of-week), pure.

Fields accept `*`, `N`, `A-B`, `*/S`, `A/S`, `A-B/S` and comma lists; day-of-week 0-7 (0 and 7 = Sunday),
month and weekday names (JAN, MON…). Like robfig/cron (what Colonies uses): when both day fields are
restricted a day matching either one fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CronError", "CronExpr", "next_run", "parse"]

_MONTHS = {n: i + 1 for i, n in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
_DAYS = {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


class CronError(ValueError):
    """A cron expression that cannot be parsed."""


@dataclass(frozen=True)
class CronExpr:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_any: bool
    weekdays_any: bool

    def day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_any or self.weekdays_any:
            return dom and dow
        return dom or dow


def _value(text: str, names: dict[str, int], what: str) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise CronError(f"invalid {what} value {text!r}")
    return int(text)


def _field(text: str, lo: int, hi: int, what: str, names: dict[str, int] | None = None) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        step = 1
        if step_s:
            if not step_s.isdigit() or int(step_s) == 0:
                raise CronError(f"invalid step in {what} field {part!r}")
            step = int(step_s)
        if rng in ("*", "?"):
            a, b = lo, hi
        elif "-" in rng:
            x, _, y = rng.partition("-")
            a, b = _value(x, names or {}, what), _value(y, names or {}, what)
        else:
            a = _value(rng, names or {}, what)
            b = hi if step_s else a
        if not (lo <= a <= hi and lo <= b <= hi) or a > b:
            raise CronError(f"{what} field {part!r} is out of range {lo}-{hi}")
        out.update(range(a, b + 1, step))
    return frozenset(out)


def parse(expr: str) -> CronExpr:
    """Parse a 6-field cron expression (seconds first), e.g. "0/1 * * * * *"."""
    parts = expr.split()
    if len(parts) != 6:
        raise CronError(f"cron expression must have 6 fields (sec min hour dom month dow), got {len(parts)}")
    weekdays = _field(parts[5], 0, 7, "day-of-week", _DAYS)
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    return CronExpr(_field(parts[0], 0, 59, "second"), _field(parts[1], 0, 59, "minute"),
                    _field(parts[2], 0, 23, "hour"), _field(parts[3], 1, 31, "day-of-month"),
                    _field(parts[4], 1, 12, "month", _MONTHS), weekdays,
                    parts[3] in ("*", "?"), parts[5] in ("*", "?"))


def next_run(cron: CronExpr, after: datetime) -> datetime:
    """The first time strictly after `after` (whole seconds) that matches."""
    t = after.replace(microsecond=0) + timedelta(seconds=1)
    for _ in range(100_000):
        if t.month not in cron.months:
            t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
        elif not cron.day_matches(t):
            t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
        elif t.hour not in cron.hours:
            t = t.replace(minute=0, second=0) + timedelta(hours=1)
        elif t.minute not in cron.minutes:
            t = t.replace(second=0) + timedelta(minutes=1)
        elif t.second not in cron.seconds:
            t = t + timedelta(seconds=1)
        else:
            return t
    raise CronError("cron expression never matches")
