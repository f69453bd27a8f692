"""Reporting periods: calendar periods in the configured zone, as UTC [start, end)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from callcenterd.analytics.periods import period_bounds

MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3, no DST
BERLIN = ZoneInfo("Europe/Berlin")

# Thursday 2026-01-01 22:30 UTC = Friday 2026-01-02 01:30 in Moscow.
NOW = datetime(2026, 1, 1, 22, 30, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("today", utc(2026, 1, 1, 21), utc(2026, 1, 2, 21)),
        ("yesterday", utc(2025, 12, 31, 21), utc(2026, 1, 1, 21)),
        # Monday 2025-12-29 00:00 Moscow to Monday 2026-01-05 00:00.
        ("week", utc(2025, 12, 28, 21), utc(2026, 1, 4, 21)),
        ("month", utc(2025, 12, 31, 21), utc(2026, 1, 31, 21)),
    ],
)
def test_periods_follow_the_local_calendar(period: str, start: datetime, end: datetime) -> None:
    assert period_bounds(period, NOW, MOSCOW) == (start, end)  # type: ignore[arg-type]


def test_same_instant_in_utc_is_still_the_previous_day() -> None:
    assert period_bounds("today", NOW, UTC) == (utc(2026, 1, 1), utc(2026, 1, 2))


def test_a_day_across_a_dst_change_is_23_hours() -> None:
    # Berlin springs forward on 2026-03-29.
    start, end = period_bounds("today", utc(2026, 3, 29, 12), BERLIN)
    assert (start, end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert (end - start).total_seconds() == 23 * 3600


def test_december_month_ends_in_january() -> None:
    assert period_bounds("month", utc(2026, 12, 15), UTC) == (utc(2026, 12, 1), utc(2027, 1, 1))
