"""Which calls a report covers, and which local hour each part of it falls in. Pure.

A report covers a half-open UTC interval [start, end): a named period (see
`analytics/periods.py`) or an explicit `date_from`/`date_to`, both read in the configured
time zone: a date is that whole local day (`date_to` inclusive), a naive time is local, a
time with an offset is that instant (`date_to` inclusive of it).

SQL groups calls by UTC quarter hour (every zone's offset is a multiple of 15 minutes), and
each quarter is put in the local hour it starts in, so hourly figures are local hours,
right across DST changes and in zones like Asia/Kolkata (UTC+5:30).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from callcenterd.analytics.periods import Period, local_midnight, period_bounds

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


def _days_before(date_to: date | datetime, end: datetime, tz: tzinfo, days: int) -> datetime:
    """The start of the `days` days ending at `end` (`date_to` read as in `_instant`)."""
    if isinstance(date_to, datetime):
        return end - timedelta(days=days)
    return local_midnight(date_to - timedelta(days=days - 1), tz)


def resolve_window(
    period: Period,
    date_from: date | datetime | None,
    date_to: date | datetime | None,
    now: datetime,
    tz: tzinfo,
    max_days: int,
) -> Window:
    """The interval a report covers; explicit dates win over `period`.

    `date_from` alone runs to the end of today (local); `date_to` alone covers the
    `max_days` days that end with it (a date: those whole local days). A range ending
    before it starts or longer than `max_days` is refused.
    """
    if date_from is None and date_to is None:
        start, end = period_bounds(period, now, tz)
        return Window(period, start, end)
    today_ends = period_bounds("today", now, tz)[1]
    end = today_ends if date_to is None else _instant(date_to, tz, end=True)
    if date_from is None:
        assert date_to is not None  # both None is the named period, above
        return Window(CUSTOM, _days_before(date_to, end, tz, max_days), end)
    start = _instant(date_from, tz, end=False)
    if end <= start:
        raise WindowInvalid("date_to", "date_to must not be before date_from")
    if end - start > timedelta(days=max_days, hours=1):  # an hour's slack for DST
        raise WindowInvalid("date_to", f"the range may cover at most {max_days} days")
    return Window(CUSTOM, start, end)


def _offset_minutes(moment: datetime, tz: tzinfo) -> int:
    offset = moment.astimezone(tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)


def offset_stretches(
    start: datetime, end: datetime, tz: tzinfo
) -> list[tuple[datetime, datetime, int]]:
    """[start, end) cut where `tz`'s UTC offset changes: (first, after, offset minutes).

    Walks by day and, on a day whose offset changed, by quarter hour (every zone changes on
    a quarter hour), so a year's range costs a few hundred offset lookups.
    """
    stretches: list[tuple[datetime, datetime, int]] = []
    first, offset = start, _offset_minutes(start, tz)
    day, quarter = timedelta(days=1), timedelta(minutes=15)
    moment = start
    while moment < end:
        step_end = min(moment + day, end)
        if _offset_minutes(step_end, tz) == offset and step_end < end:
            moment = step_end
            continue
        while moment < step_end:  # the change is within this day (or the window ends)
            # On UTC quarter hours (where offsets change), whatever minute the window began.
            floor = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)
            after = min(floor + quarter, step_end)
            changed = _offset_minutes(after, tz)
            if after < end and changed != offset:
                stretches.append((first, after, offset))
                first, offset = after, changed
            moment = after
    stretches.append((first, end, offset))
    return stretches


def local_days(start: datetime, end: datetime, tz: tzinfo) -> int:
    """Local calendar days in [start, end), both at local midnights (at least 1)."""
    return max(1, (end.astimezone(tz).date() - start.astimezone(tz).date()).days)
