"""The figures of analytics/kpis.py and the windows and hours of analytics/windows.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenterd.analytics import kpis
from callcenterd.analytics.kpis import CallCounts
from callcenterd.analytics.windows import (
    WindowInvalid,
    local_days,
    offset_stretches,
    resolve_window,
)

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def test_service_level_counts_unserved_callers_but_not_short_abandons() -> None:
    # 8 answered (6 within the threshold), 3 abandoned of whom 1 quickly, 1 timed out:
    # 6 / (8 + 2 + 1) = 54.5 %.
    counts = CallCounts(
        entered=13,
        answered=8,
        answered_within_threshold=6,
        missed=5,
        abandoned=3,
        short_abandoned=1,
        unserved=3,  # 2 long abandons + 1 timeout
    )
    assert kpis.service_level(counts) == 54.5
    # Abandon rate: (3 - 1) / (13 - 1) = 16.7 %.
    assert kpis.abandon_rate(counts) == 16.7


def test_nothing_to_divide_by() -> None:
    empty = CallCounts()
    assert kpis.service_level(empty) == 0.0
    assert kpis.abandon_rate(empty) == 0.0
    assert kpis.average_wait(empty) == 0
    assert kpis.average_talk(empty) == 0
    assert kpis.efficiency(0, 0) == 0.0
    assert kpis.first_call_resolution(0, 0) == 0.0
    assert kpis.satisfaction(None) is None
    assert kpis.occupancy(100, 0) is None
    assert kpis.busiest_hour([0] * 24) is None


def test_averages_and_ratios() -> None:
    counts = CallCounts(answered=3, answered_wait_seconds=50.0, completed=2, talk_seconds=301)
    assert kpis.average_wait(counts) == 17  # 16.67 rounded
    assert kpis.average_talk(counts) == 150  # 150.5 rounds to even
    assert kpis.efficiency(3, 4) == 75.0
    # Answered more than offered (a call answered without a recorded ring) caps at 100.
    assert kpis.efficiency(3, 2) == 100.0
    assert kpis.satisfaction(4.333333) == 4.33
    assert kpis.occupancy(1800, 3600) == 50.0
    assert kpis.occupancy(5000, 3600) == 100.0


def test_busiest_hour_takes_the_earliest_on_a_tie() -> None:
    calls = [0] * 24
    calls[9] = calls[14] = 5
    assert kpis.busiest_hour(calls) == "09:00"
    calls[14] = 6
    assert kpis.busiest_hour(calls) == "14:00"


def test_counts_add_up_and_keep_the_longest_wait() -> None:
    one = CallCounts(entered=1, answered=1, longest_wait_seconds=30.0, talk_seconds=10)
    two = CallCounts(entered=2, missed=2, longest_wait_seconds=12.0, talk_seconds=5)
    total = one + two
    assert (total.entered, total.answered, total.missed) == (3, 1, 2)
    assert total.longest_wait_seconds == 30.0
    assert total.talk_seconds == 15


# --- windows ---------------------------------------------------------------------------------
NOW = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)  # a Wednesday


def test_named_period_and_explicit_dates() -> None:
    window = resolve_window("today", None, None, NOW, BERLIN, 366)
    assert window.period == "today"
    assert (window.start, window.end) == (
        datetime(2025, 3, 11, 23, 0, tzinfo=UTC),
        datetime(2025, 3, 12, 23, 0, tzinfo=UTC),
    )
    # Dates are whole local days, date_to included; explicit dates win over the period.
    window = resolve_window("month", date(2025, 3, 1), date(2025, 3, 2), NOW, BERLIN, 366)
    assert window.period == "custom"
    assert (window.start, window.end) == (
        datetime(2025, 2, 28, 23, 0, tzinfo=UTC),
        datetime(2025, 3, 2, 23, 0, tzinfo=UTC),
    )
    # Naive times are local; date_to as an instant is inclusive of it.
    window = resolve_window(
        "today", datetime(2025, 3, 1, 8, 0), datetime(2025, 3, 1, 9, 0), NOW, BERLIN, 366
    )
    assert window.start == datetime(2025, 3, 1, 7, 0, tzinfo=UTC)
    assert window.end == datetime(2025, 3, 1, 8, 0, 0, 1, tzinfo=UTC)
    # date_from alone: until the end of today.
    window = resolve_window("today", date(2025, 3, 10), None, NOW, BERLIN, 366)
    assert window.end == datetime(2025, 3, 12, 23, 0, tzinfo=UTC)


def test_date_to_alone_covers_the_longest_range_ending_with_it() -> None:
    # A date: the 7 whole local days ending with it (Berlin, across the DST change of 30 March).
    window = resolve_window("today", None, date(2025, 4, 2), NOW, BERLIN, 7)
    assert window.period == "custom"
    assert (window.start, window.end) == (
        datetime(2025, 3, 26, 23, 0, tzinfo=UTC),
        datetime(2025, 4, 2, 22, 0, tzinfo=UTC),
    )
    # An instant: exactly that many days before it.
    window = resolve_window("today", None, datetime(2025, 3, 1, 9, 0, tzinfo=UTC), NOW, BERLIN, 2)
    assert window.end - window.start == timedelta(days=2)


def test_bad_ranges() -> None:
    with pytest.raises(WindowInvalid) as err:
        resolve_window("today", date(2025, 3, 2), date(2025, 3, 1), NOW, BERLIN, 366)
    assert err.value.field == "date_to"
    # 366 days is allowed (a leap year), 367 not.
    resolve_window("today", date(2024, 1, 1), date(2024, 12, 31), NOW, BERLIN, 366)
    with pytest.raises(WindowInvalid):
        resolve_window("today", date(2024, 1, 1), date(2025, 1, 1), NOW, BERLIN, 366)


def test_offset_stretches_cut_windows_where_the_offset_changes() -> None:
    # Berlin's local 30 March 2025 (CET -> CEST at 01:00 UTC) is 23 hours long.
    start = datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    change = datetime(2025, 3, 30, 1, 0, tzinfo=UTC)
    end = datetime(2025, 3, 30, 22, 0, tzinfo=UTC)
    assert offset_stretches(start, end, BERLIN) == [(start, change, 60), (change, end, 120)]
    # Kolkata (UTC+5:30) never changes: a year is one stretch.
    year = (datetime(2024, 12, 31, 18, 30, tzinfo=UTC), datetime(2025, 12, 31, 18, 30, tzinfo=UTC))
    assert offset_stretches(*year, KOLKATA) == [(*year, 330)]
    # A window ending right at a change, and one within a day.
    assert offset_stretches(start, change, BERLIN) == [(start, change, 60)]
    short = (change, change + timedelta(hours=2))
    assert offset_stretches(*short, BERLIN) == [(*short, 120)]


def test_local_days_counts_calendar_days() -> None:
    start = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)  # 2 March, Berlin midnight
    end = datetime(2025, 3, 29, 23, 0, tzinfo=UTC)  # 30 March, Berlin midnight (CET)
    assert local_days(start, end, BERLIN) == 28
