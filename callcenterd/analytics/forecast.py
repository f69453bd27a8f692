"""Staffing forecast: operators needed per local hour of day, from past weeks' calls. Pure.

The sample is the last `weeks` whole weeks before today (local midnights). For each hour of
day: arrivals = calls entered in that hour / days in the sample; handle time = mean talk of
the completed calls of that hour (the sample's mean when that hour had none) + the queue's
wrap-up; then Erlang C's fewest operators meeting the target (analytics/erlang.py).

No I/O, no clock: `today` and the hourly counts are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from callcenterd.analytics import kpis
from callcenterd.analytics.erlang import operators_needed, traffic_erlangs
from callcenterd.analytics.kpis import CallCounts
from callcenterd.analytics.periods import local_midnight


@dataclass(frozen=True, slots=True)
class HourForecast:
    hour: str  # "HH:00", local
    calls_per_hour: float
    average_handle_time: float | None  # talk + wrap-up, seconds
    traffic: float  # erlangs
    operators_needed: int | None  # None without a handle time
    service_level: float | None  # percent, predicted with that many operators
    average_wait: float | None  # predicted average speed of answer, seconds


@dataclass(frozen=True, slots=True)
class StaffingForecast:
    average_handle_time: float | None  # over the whole sample, seconds
    peak_operators_needed: int | None
    hours: list[HourForecast]


def sample_window(today: date, weeks: int, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC: the `weeks` whole weeks before `today` (local midnights)."""
    return local_midnight(today - timedelta(days=7 * weeks), tz), local_midnight(today, tz)


def staffing_forecast(
    hours: Sequence[CallCounts],
    days: int,
    wrapup: float,
    target_service_level: float,
    threshold: float,
) -> StaffingForecast:
    """`hours`: the sample's counts per local hour of day (0..23); `days`: days sampled;
    `target_service_level` in percent, answered within `threshold` seconds."""
    overall = sum(hours, CallCounts())
    overall_talk = overall.talk_seconds / overall.completed if overall.completed else None
    rows = [
        _hour(h, counts, days, overall_talk, wrapup, target_service_level, threshold)
        for h, counts in enumerate(hours)
    ]
    needed = [row.operators_needed for row in rows if row.operators_needed is not None]
    return StaffingForecast(
        average_handle_time=None if overall_talk is None else round(overall_talk + wrapup, 1),
        peak_operators_needed=max(needed, default=None),
        hours=rows,
    )


def _hour(
    hour: int,
    counts: CallCounts,
    days: int,
    overall_talk: float | None,
    wrapup: float,
    target_service_level: float,
    threshold: float,
) -> HourForecast:
    rate = counts.entered / days
    talk = counts.talk_seconds / counts.completed if counts.completed else overall_talk
    label = kpis.hour_label(hour)
    if rate == 0:
        return HourForecast(
            hour=label,
            calls_per_hour=0.0,
            average_handle_time=None if talk is None else round(talk + wrapup, 1),
            traffic=0.0,
            operators_needed=0,
            service_level=100.0,
            average_wait=0.0,
        )
    if talk is None or talk + wrapup <= 0:
        return HourForecast(
            hour=label,
            calls_per_hour=round(rate, 2),
            average_handle_time=None,
            traffic=0.0,
            operators_needed=None,
            service_level=None,
            average_wait=None,
        )
    handle = talk + wrapup
    traffic = traffic_erlangs(rate, 3600.0, handle)
    staffed = operators_needed(traffic, handle, target_service_level / 100, threshold)
    return HourForecast(
        hour=label,
        calls_per_hour=round(rate, 2),
        average_handle_time=round(handle, 1),
        traffic=round(traffic, 3),
        operators_needed=staffed.operators,
        service_level=round(staffed.service_level * 100, 1),
        average_wait=round(staffed.average_speed_of_answer, 1),
    )
