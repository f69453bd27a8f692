"""The staffing forecast without a database: hourly counts in, operators needed out."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from callcenterd.analytics.forecast import sample_window, staffing_forecast
from callcenterd.analytics.kpis import CallCounts

QUIET = CallCounts()


def test_the_sample_is_whole_local_weeks_before_today() -> None:
    start, end = sample_window(date(2024, 3, 14), 2, ZoneInfo("Europe/Paris"))
    assert start == datetime(2024, 2, 28, 23, 0, tzinfo=UTC)
    assert end == datetime(2024, 3, 13, 23, 0, tzinfo=UTC)


def test_busy_hours_need_operators_and_quiet_ones_none() -> None:
    hours = [QUIET] * 24
    # 14 days, 20 calls a day at 09:00, 3 min of talk each, plus 30 s wrap-up.
    hours[9] = CallCounts(entered=280, completed=280, talk_seconds=280 * 180)
    found = staffing_forecast(hours, 14, 30.0, 80.0, 20.0)
    nine = found.hours[9]
    assert nine.hour == "09:00"
    assert nine.calls_per_hour == 20.0
    assert nine.average_handle_time == 210.0
    assert nine.traffic == round(20 * 210 / 3600, 3)
    assert nine.operators_needed is not None and nine.operators_needed >= 2
    assert nine.service_level is not None and nine.service_level >= 80.0
    assert found.peak_operators_needed == nine.operators_needed
    assert found.average_handle_time == 210.0
    assert found.hours[3].operators_needed == 0
    assert found.hours[3].service_level == 100.0


def test_without_any_talk_time_there_is_no_figure() -> None:
    hours = [QUIET] * 24
    hours[10] = CallCounts(entered=7)  # calls, none completed: no handle time to use
    found = staffing_forecast(hours, 7, 0.0, 80.0, 20.0)
    assert found.hours[10].calls_per_hour == 1.0
    assert found.hours[10].operators_needed is None
    assert found.average_handle_time is None
    assert found.peak_operators_needed == 0
