"""Reporting periods ("today", "yesterday", "week", "month"), defined once for every report.

Periods are calendar periods in the configured time zone, as half-open UTC intervals
``[start, end)``:

* ``today``: local midnight today to local midnight tomorrow;
* ``yesterday``: local midnight yesterday to local midnight today;
* ``week``: Monday 00:00 of the current (ISO) week to the next Monday 00:00;
* ``month``: the 1st 00:00 of the current month to the 1st 00:00 of the next month.

Midnights are computed on local dates, so a day across a DST change is 23 or 25 hours long.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

Period = Literal["today", "yesterday", "week", "month"]
PERIODS: tuple[Period, ...] = ("today", "yesterday", "week", "month")


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """00:00 of a local calendar day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period_bounds(period: Period, now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC interval [start, end) of `period` as seen at `now` in time zone `tz`."""
    today = now.astimezone(tz).date()
    if period == "today":
        first, after = today, today + timedelta(days=1)
    elif period == "yesterday":
        first, after = today - timedelta(days=1), today
    elif period == "week":
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
    else:  # month
        first = today.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    return local_midnight(first, tz), local_midnight(after, tz)
