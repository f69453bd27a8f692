"""Which calls a report covers, and which local hour each part of it falls in. Pure.

A report covers a half-open UTC interval [start, end): a named period (see
`services/periods.py`) or an explicit `date_from`/`date_to`, both read in the configured
time zone: a date is that whole local day (`date_to` inclusive), a naive time is local, a
time with an offset is that instant (`date_to` inclusive of it).

SQL groups calls by UTC quarter hour (every zone's offset is a multiple of 15 minutes), and
each quarter is put in the local hour it starts in, so hourly figures are local hours,
right across DST changes and in zones like Asia/Kolkata (UTC+5:30).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from callcenterd.analytics.kpis import CallCounts
from callcenterd.services.periods import Period, local_midnight, period_bounds

HOURS = 24
CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Window:
    period: str  # the named period, or "custom" for date_from/date_to
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive


class WindowInvalid(ValueError):
    """A bad date range; `field` names the query parameter to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _instant(value: date | datetime, tz: tzinfo, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=tz)
        # An instant given as the end is inclusive: stop just after it.
        return (moment + timedelta(microseconds=1) if end else moment).astimezone(UTC)
    return local_midnight(value + timedelta(days=1) if end else value, tz)


def resolve_window(
    period: Period,
    date_from: date | datetime | None,
    date_to: date | datetime | None,
    now: datetime,
    tz: tzinfo,
    max_days: int,
) -> Window:
    """The interval a report covers; explicit dates win over `period`.

    `date_from` alone runs to the end of today (local); `date_to` alone is refused, as is
    a range ending before it starts or longer than `max_days`.
    """
    if date_from is None and date_to is None:
        start, end = period_bounds(period, now, tz)
        return Window(period, start, end)
    if date_from is None:
        raise WindowInvalid("date_from", "date_from is required with date_to")
    start = _instant(date_from, tz, end=False)
    today_ends = period_bounds("today", now, tz)[1]
    end = today_ends if date_to is None else _instant(date_to, tz, end=True)
    if end <= start:
        raise WindowInvalid("date_to", "date_to must not be before date_from")
    if end - start > timedelta(days=max_days, hours=1):  # an hour's slack for DST
        raise WindowInvalid("date_to", f"the range may cover at most {max_days} days")
    return Window(CUSTOM, start, end)


def slot_start(slot: str) -> datetime:
    """The start of a UTC quarter hour from SQL's 'YYYY-MM-DDTHH:MM'."""
    return datetime.fromisoformat(slot).replace(tzinfo=UTC)


def local_hour(moment: datetime, tz: tzinfo) -> int:
    return moment.astimezone(tz).hour


def by_local_hour(slots: Iterable[tuple[datetime, CallCounts]], tz: tzinfo) -> list[CallCounts]:
    """Counts per UTC quarter hour -> counts per local hour of day (all 24, zero-filled)."""
    hours = [CallCounts() for _ in range(HOURS)]
    for start, counts in slots:
        hour = local_hour(start, tz)
        hours[hour] = hours[hour] + counts
    return hours


def local_days(start: datetime, end: datetime, tz: tzinfo) -> int:
    """Local calendar days in [start, end), both at local midnights (at least 1)."""
    return max(1, (end.astimezone(tz).date() - start.astimezone(tz).date()).days)
