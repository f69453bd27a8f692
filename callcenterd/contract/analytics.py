"""Request and response models of the statistics endpoints: /api/dashboard/*, /api/calls/stats,
/api/queues/{id}/stats and /forecast, /api/operators/{id}/stats.

Field names follow the contract; fields it does not name are additions (marked "extra") that
a client reading only the contract's fields can ignore. Definitions: analytics/kpis.py.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from callcenterd.analytics.periods import Period
from callcenterd.contract.routing import DateOrTime
from callcenterd.domain.users import OperatorStatus

HOUR = Field(description="Local hour of day (configured time zone), 'HH:00'")


# --- queries -------------------------------------------------------------------------------
class PeriodQuery(BaseModel):
    period: Period = Field("today", description="Ignored when date_from is given")
    date_from: DateOrTime | None = Field(
        None, description="From (a date: its local midnight; a naive time: local)"
    )
    date_to: DateOrTime | None = Field(
        None,
        description="Until, inclusive (a date: that whole local day); default: end of today."
        " At most analytics.max_range_days (366) after date_from, which must not be after it;"
        " alone: the max_range_days days ending with it",
    )


class StatsQuery(PeriodQuery):
    group_id: str | None = Field(
        None, description="Only this group's calls; a supervisor: their own group only"
    )


class GroupQuery(BaseModel):
    group_id: str | None = Field(
        None, description="Only this group; a supervisor: their own group only"
    )


class ForecastQuery(BaseModel):
    target_service_level: float = Field(80.0, gt=0, lt=100, description="Percent")
    threshold: float = Field(20.0, ge=0, le=3600, description="Seconds")
    weeks: int | None = Field(
        None, ge=1, le=52, description="Past weeks averaged (default analytics.forecast_weeks)"
    )


class _Window(BaseModel):
    period: str = Field(description="The named period, or 'custom' (date_from/date_to)")
    start: datetime = Field(description="Covered from (UTC, inclusive)")
    end: datetime = Field(description="Covered until (UTC, exclusive)")


class _Scoped(_Window):
    group_id: str | None = Field(description="The group the figures are limited to (extra)")


# --- /dashboard/stats ----------------------------------------------------------------------
class HourTrend(BaseModel):
    hour: str = HOUR
    calls: int
    answered: int


class DashboardStats(_Scoped):
    total_calls_today: int = Field(description="Calls entered in the period")
    answered_calls_today: int
    missed_calls_today: int
    average_wait_time: int = Field(description="ASA: mean wait of answered calls, seconds")
    service_level: float = Field(description="Percent answered within the threshold")
    active_operators: int = Field(description="Operators logged in now (online or busy)")
    total_operators: int
    busiest_hour: str | None = Field(description="Local hour with most calls; null if none")
    call_trends: list[HourTrend] = Field(description="All 24 local hours")
    abandoned_calls: int = Field(description="extra")
    abandon_rate: float = Field(description="extra: percent")
    average_talk_time: int = Field(description="extra: seconds, completed calls")
    longest_wait_time: int = Field(description="extra: longest wait of a call, seconds")
    service_level_threshold: float = Field(description="extra: seconds")


# --- /dashboard/realtime -------------------------------------------------------------------
class Realtime(BaseModel):
    active_calls: int = Field(description="Calls being talked on now")
    queue_waiting: int = Field(description="Callers waiting (or being rung) now")
    operators_online: int
    operators_busy: int
    operators_offline: int
    current_hour_calls: int = Field(description="Calls started since the local hour began")
    longest_wait_time: int = Field(description="extra: longest current wait, seconds")
    group_id: str | None = Field(description="extra")
    timestamp: datetime


# --- /dashboard/call-analytics -------------------------------------------------------------
class HourDistribution(BaseModel):
    hour: str = HOUR
    incoming: int
    answered: int
    missed: int


class QueuePerformance(BaseModel):
    queue_id: str | None = Field(description="extra; null: calls that never reached a queue")
    queue_name: str | None
    calls: int
    answered: int
    avg_wait_time: int
    service_level: float
    abandoned: int = Field(description="extra")
    abandon_rate: float = Field(description="extra")


class OperatorSummary(BaseModel):
    operator_id: str = Field(description="extra")
    operator_name: str
    calls_handled: int = Field(description="Completed calls they answered")
    avg_talk_time: int
    efficiency: float = Field(description="Calls answered / calls offered (rung) x 100")
    occupancy: float | None = Field(
        description="extra: talk / logged-in time x 100; null without presence history"
    )


class CallAnalytics(_Scoped):
    hourly_distribution: list[HourDistribution] = Field(description="All 24 local hours")
    queue_performance: list[QueuePerformance]
    operator_summary: list[OperatorSummary]


# --- /dashboard/operator-activity ----------------------------------------------------------
class OperatorActivity(BaseModel):
    operator_id: str
    name: str
    extension: str
    status: OperatorStatus
    current_call_duration: int | None = Field(
        description="Seconds since the current call was answered; null when not on a call"
    )
    calls_today: int = Field(description="Calls answered that started today (local)")
    last_activity: datetime
    pause_reason: str | None = Field(
        description="extra: why the operator is paused now; null when not paused"
    )
    pause_seconds_today: dict[str, int] = Field(
        description="extra: seconds paused today (local), by pause reason"
    )


# --- /calls/stats --------------------------------------------------------------------------
class BusyOperator(BaseModel):
    operator_id: str = Field(description="extra")
    operator_name: str
    calls_count: int = Field(description="Calls answered in the period")


class CallStats(_Scoped):
    total_calls: int
    answered_calls: int
    missed_calls: int
    average_duration: int = Field(description="Mean talk time of completed calls, seconds")
    average_wait_time: int
    service_level: float
    peak_hour: str | None
    busiest_operators: list[BusyOperator] = Field(description="Top 5 by calls answered")
    abandoned_calls: int = Field(description="extra")
    abandon_rate: float = Field(description="extra")


# --- /queues/{id}/stats --------------------------------------------------------------------
class QueueHour(BaseModel):
    hour: str = HOUR
    calls: int
    answered: int
    avg_wait: int


class QueueStats(_Window):
    calls_entered: int
    calls_answered: int
    calls_abandoned: int = Field(description="Callers who hung up waiting (short ones too)")
    average_wait_time: int
    max_wait_time: int = Field(description="Longest wait of a call in the period, seconds")
    service_level: float
    hourly_stats: list[QueueHour] = Field(description="All 24 local hours")
    calls_missed: int = Field(description="extra: abandoned, timed out, refused, lost")
    abandon_rate: float = Field(description="extra")
    average_talk_time: int = Field(description="extra")
    waiting_now: int = Field(description="extra: callers waiting now")
    longest_current_wait: int = Field(description="extra: seconds")


# --- /queues/{id}/forecast -----------------------------------------------------------------
class ForecastHour(BaseModel):
    hour: str = HOUR
    calls_per_hour: float = Field(description="Mean calls entered in this hour of day")
    average_handle_time: float | None = Field(description="Talk + wrap-up, seconds")
    traffic: float = Field(description="Erlangs")
    operators_needed: int | None = Field(description="Erlang C; null without a handle time")
    service_level: float | None = Field(description="Predicted with that many, percent")
    average_wait: float | None = Field(description="Predicted ASA, seconds")


class Forecast(BaseModel):
    queue_id: str
    queue_name: str
    target_service_level: float
    threshold: float
    weeks: int
    start: datetime = Field(description="Sample from (UTC)")
    end: datetime = Field(description="Sample until (UTC, exclusive: today's local midnight)")
    average_handle_time: float | None = Field(description="Over the whole sample, seconds")
    wrapup_seconds: float
    peak_operators_needed: int | None
    hours: list[ForecastHour]


# --- /operators/{id}/stats -----------------------------------------------------------------
class OperatorStats(_Window):
    calls_handled: int = Field(description="Completed calls they answered")
    calls_missed: int = Field(description="Rings of theirs that ended unanswered (no answer)")
    calls_offered: int = Field(description="Calls they were rung for or answered")
    calls_answered: int = Field(description="extra: calls they answered (talking now too)")
    total_talk_time: int = Field(description="Seconds")
    avg_talk_time: int = Field(description="Seconds per handled call")
    efficiency: float = Field(description="answered / offered x 100")
    first_call_resolution: float = Field(
        description="% of handled calls whose caller did not call again within the window"
        " (analytics.repeat_call_window_hours, 24 h)"
    )
    customer_satisfaction: float | None = Field(description="Mean rating 1-5, null if none")
    occupancy: float | None = Field(
        description="extra: talk / logged-in time x 100; null without presence history"
    )
    logged_in_time: int = Field(description="extra: seconds online or paused in the period")
    pause_time: int = Field(description="extra: seconds paused (status busy) in the period")
    pause_seconds_by_reason: dict[str, int] = Field(
        description="extra: seconds paused in the period, by pause reason ('paused': no"
        " reason given, 'no_answer': autopause); reasons without time are left out"
    )
    # Each operator's own part of calls (call legs, issue 11): a transferred call's talk is
    # split between the operators who had it, and time on hold is counted apart.
    parts_answered: int = Field(
        0, description="extra: legs they answered in the period (a transfer counts for each)"
    )
    part_talk_time: int = Field(
        0, description="extra: seconds talking in those legs (transfers split, hold excluded)"
    )
    hold_time: int = Field(0, description="extra: seconds their callers were on hold")
