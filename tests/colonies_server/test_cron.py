"""Cron expression parsing and next-run computation (6 fields, seconds first)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from colonies_server.cron import CronError, next_run, parse

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def _next(expr: str, after: datetime = T0) -> datetime:
    return next_run(parse(expr), after)


def test_every_second() -> None:
    assert _next("0/1 * * * * *") == datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc)
    assert _next("* * * * * *") == datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc)


def test_steps_ranges_lists() -> None:
    assert _next("*/15 * * * * *") == datetime(2026, 1, 2, 3, 4, 15, tzinfo=timezone.utc)
    assert _next("0 30 9-17 * * *") == datetime(2026, 1, 2, 9, 30, 0, tzinfo=timezone.utc)
    assert _next("0 0 0,12 * * *") == datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)
    assert _next("0 0 0 1 JAN *") == datetime(2027, 1, 1, tzinfo=timezone.utc)


def test_weekdays() -> None:
    # 2026-01-02 is a Friday; next Monday 08:00 is 2026-01-05.
    assert _next("0 0 8 * * MON") == datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
    assert _next("0 0 8 * * 1") == _next("0 0 8 * * MON")
    assert _next("0 0 8 * * 7") == datetime(2026, 1, 4, 8, tzinfo=timezone.utc)  # 7 = Sunday


def test_both_day_fields_restricted_means_either() -> None:
    # 15th of the month OR a Monday: Monday 5 January comes first.
    assert _next("0 0 0 15 * MON") == datetime(2026, 1, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("bad", ["* * * * *", "61 * * * * *", "*/0 * * * * *", "a * * * * *", "5-1 * * * * *",
                                 "0 0 0 31 2 *"])
def test_invalid_expressions(bad: str) -> None:
    with pytest.raises(CronError):
        _next(bad)
