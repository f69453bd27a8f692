"""Statistics as people read them: dashboards, call, queue and operator figures, staffing.

Who sees what:
- admins and managers: everything, or one group with `group_id`;
- a supervisor: their own group only. `group_id` may be left out or name their group; naming
  another group is refused (403 AUTH_003) rather than silently answered with their own
  group's figures under a label they did not ask for. A supervisor without a group sees
  empty figures;
- a group's calls: calls of the queues its operators are members of, plus the calls its
  operators answered from anywhere;
- queue figures and forecasts: every reader, any queue (queues are shared, as in /queues/);
- an operator's figures: the operator themselves, their group's supervisor, managers, admins.

Figures are defined in analytics/kpis.py, summed in SQL by store/analytics.py; live figures
(who waits, since when) come from the routing engine's state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import structlog

from callcenterd.analytics import kpis
from callcenterd.analytics.forecast import sample_window, staffing_forecast
from callcenterd.analytics.kpis import CallCounts, OperatorParts
from callcenterd.analytics.pauses import pause_seconds_by_reason
from callcenterd.analytics.periods import period_bounds
from callcenterd.analytics.windows import (
    Window,
    WindowInvalid,
    local_days,
    resolve_window,
)
from callcenterd.contract.analytics import (
    BusyOperator,
    CallAnalytics,
    CallStats,
    DashboardStats,
    Forecast,
    ForecastHour,
    ForecastQuery,
    HourDistribution,
    HourTrend,
    OperatorActivity,
    OperatorStats,
    OperatorSummary,
    PeriodQuery,
    QueueHour,
    QueuePerformance,
    QueueStats,
    Realtime,
    StatsQuery,
)
from callcenterd.contract.validation import field_error
from callcenterd.domain.users import OperatorStatus, Role
from callcenterd.errors import NotFound, PermissionDenied
from callcenterd.routing import RoutingEngine
from callcenterd.security import Clock, Principal
from callcenterd.services.operators import OperatorService, current_pause_reason
from callcenterd.settings import Settings
from callcenterd.store.analytics import AnalyticsStore, StatsScope
from callcenterd.store.call_stats import Thresholds
from callcenterd.store.operators import OperatorDirectory, OperatorRecord
from callcenterd.store.queues import QueueRepository

log = structlog.get_logger(__name__)

BUSIEST_OPERATORS = 5


@dataclass(frozen=True, slots=True)
class Audience:
    """Whose calls a report covers: the scope for SQL, the group for people."""

    scope: StatsScope
    group_id: str | None
    queue_ids: tuple[str, ...] | None  # for live figures; None: every queue


def _wait(seconds: float) -> int:
    return round(seconds)


class AnalyticsService:
    def __init__(
        self,
        store: AnalyticsStore,
        queues: QueueRepository,
        directory: OperatorDirectory,
        operators: OperatorService,
        engine: RoutingEngine,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._store = store
        self._queues = queues
        self._directory = directory
        self._operators = operators
        self._engine = engine
        self._clock = clock
        self._settings = settings

    async def prepare(self) -> None:
        """At start-up: the rollups follow the configured thresholds (rebuilt if not)."""
        began = self._clock()
        if await self._store.prepare_rollups(self.thresholds):
            log.info(
                "call_stats_rollups_rebuilt",
                service_level_threshold=self.thresholds.answered_within,
                short_abandon_threshold=self.thresholds.short_abandon,
                seconds=round((self._clock() - began).total_seconds(), 1),
            )

    # --- inputs -----------------------------------------------------------------------------
    @property
    def thresholds(self) -> Thresholds:
        analytics = self._settings.analytics
        return Thresholds(analytics.service_level_threshold, analytics.short_abandon_threshold)

    def window(self, query: PeriodQuery) -> Window:
        try:
            return resolve_window(
                query.period,
                query.date_from,
                query.date_to,
                self._clock(),
                self._settings.tz,
                self._settings.analytics.max_range_days,
            )
        except WindowInvalid as err:
            raise field_error("query", err.field, str(err)) from err

    async def audience(self, viewer: Principal, group_id: str | None) -> Audience:
        if viewer.role is Role.SUPERVISOR:
            if group_id is not None and group_id != viewer.group_id:
                raise PermissionDenied("Supervisors may only see their own group's figures")
            if viewer.group_id is None:
                return Audience(StatsScope(nothing=True), None, ())
            group_id = viewer.group_id
        elif group_id is not None and not await self._store.group_exists(group_id):
            raise field_error("query", "group_id", "no such group")
        if group_id is None:
            return Audience(StatsScope(), None, None)
        queue_ids = await self._store.group_queue_ids(group_id)
        operator_ids = await self._store.group_operator_ids(group_id)
        return Audience(StatsScope(queue_ids, operator_ids), group_id, queue_ids)

    async def _operators_of(self, audience: Audience) -> list[OperatorRecord]:
        if audience.scope.nothing:
            return []
        return await self._directory.find(audience.group_id)

    def _waiting(self, queue_ids: tuple[str, ...] | None) -> list[float]:
        """How long each caller in these queues has waited so far, seconds."""
        now = self._clock().timestamp()
        return [
            now - arrived
            for queue_id, arrived in self._engine.waiting_arrivals()
            if queue_ids is None or queue_id in queue_ids
        ]

    async def _hours(self, window: Window, scope: StatsScope) -> list[CallCounts]:
        return await self._store.by_local_hour(
            window.start, window.end, scope, self.thresholds, self._settings.tz
        )

    # --- /dashboard/stats -------------------------------------------------------------------
    async def dashboard(self, query: StatsQuery, viewer: Principal) -> DashboardStats:
        window = self.window(query)
        audience = await self.audience(viewer, query.group_id)
        hours, operators = await asyncio.gather(
            self._hours(window, audience.scope), self._operators_of(audience)
        )
        totals = sum(hours, CallCounts())
        return DashboardStats(
            period=window.period,
            start=window.start,
            end=window.end,
            group_id=audience.group_id,
            total_calls_today=totals.entered,
            answered_calls_today=totals.answered,
            missed_calls_today=totals.missed,
            average_wait_time=kpis.average_wait(totals),
            service_level=kpis.service_level(totals),
            active_operators=sum(op.status is not OperatorStatus.OFFLINE for op in operators),
            total_operators=len(operators),
            busiest_hour=kpis.busiest_hour([hour.entered for hour in hours]),
            call_trends=[
                HourTrend(hour=kpis.hour_label(h), calls=c.entered, answered=c.answered)
                for h, c in enumerate(hours)
            ],
            abandoned_calls=totals.abandoned,
            abandon_rate=kpis.abandon_rate(totals),
            average_talk_time=kpis.average_talk(totals),
            longest_wait_time=_wait(totals.longest_wait_seconds),
            service_level_threshold=self.thresholds.answered_within,
        )

    # --- /dashboard/realtime ----------------------------------------------------------------
    async def realtime(self, group_id: str | None, viewer: Principal) -> Realtime:
        audience = await self.audience(viewer, group_id)
        now = self._clock()
        local = now.astimezone(self._settings.tz)
        hour_began = local.replace(minute=0, second=0, microsecond=0)
        operators = await self._operators_of(audience)
        statuses = [op.status for op in operators]
        waits = [] if audience.scope.nothing else self._waiting(audience.queue_ids)
        return Realtime(
            active_calls=await self._store.talking_calls(audience.scope),
            queue_waiting=len(waits),
            operators_online=statuses.count(OperatorStatus.ONLINE),
            operators_busy=statuses.count(OperatorStatus.BUSY),
            operators_offline=statuses.count(OperatorStatus.OFFLINE),
            current_hour_calls=await self._store.started_since(hour_began, audience.scope),
            longest_wait_time=_wait(max(waits, default=0.0)),
            group_id=audience.group_id,
            timestamp=now,
        )

    # --- /dashboard/call-analytics ----------------------------------------------------------
    async def call_analytics(self, query: StatsQuery, viewer: Principal) -> CallAnalytics:
        window = self.window(query)
        audience = await self.audience(viewer, query.group_id)
        # Independent reads: side by side on the database's readers.
        hours, queue_performance, operator_summary = await asyncio.gather(
            self._hours(window, audience.scope),
            self._queue_performance(window, audience),
            self._operator_summary(window, audience),
        )
        return CallAnalytics(
            period=window.period,
            start=window.start,
            end=window.end,
            group_id=audience.group_id,
            hourly_distribution=[
                HourDistribution(
                    hour=kpis.hour_label(h),
                    incoming=c.entered,
                    answered=c.answered,
                    missed=c.missed,
                )
                for h, c in enumerate(hours)
            ],
            queue_performance=queue_performance,
            operator_summary=operator_summary,
        )

    async def _queue_performance(
        self, window: Window, audience: Audience
    ) -> list[QueuePerformance]:
        per_queue = await self._store.by_queue(
            window.start, window.end, audience.scope, self.thresholds
        )
        names = await self._store.queue_names()
        rows = [
            QueuePerformance(
                queue_id=queue_id,
                queue_name=names.get(queue_id) if queue_id is not None else None,
                calls=counts.entered,
                answered=counts.answered,
                avg_wait_time=kpis.average_wait(counts),
                service_level=kpis.service_level(counts),
                abandoned=counts.abandoned,
                abandon_rate=kpis.abandon_rate(counts),
            )
            for queue_id, counts in per_queue.items()
        ]
        return sorted(rows, key=lambda row: (-row.calls, row.queue_name or ""))

    async def _operator_summary(self, window: Window, audience: Audience) -> list[OperatorSummary]:
        if audience.scope.nothing:
            return []
        per_operator, live = await asyncio.gather(
            self._store.by_operator(window.start, window.end, audience.scope, self.thresholds),
            self._store.live_operator_ids(audience.group_id),
        )
        # A group's summary lists its operators, not others who answered its queues' calls.
        answered = [
            op
            for op in per_operator
            if audience.group_id is None or op in (audience.scope.operator_ids or ())
        ]
        ids = sorted(set(live) | set(answered))
        names, offered, logged_in, parts_of = await asyncio.gather(
            self._store.operator_names(ids),
            self._store.offered(ids, window.start, window.end),
            self._store.logged_in_seconds(ids, window.start, min(window.end, self._clock())),
            self._store.legs.parts_by_operator(ids, window.start, window.end),
        )
        rows = []
        for operator_id in ids:
            counts = per_operator.get(operator_id, CallCounts())
            parts = parts_of.get(operator_id, OperatorParts())
            name = names.get(operator_id)
            rows.append(
                OperatorSummary(
                    operator_id=operator_id,
                    operator_name=name.name if name else operator_id,
                    calls_handled=counts.completed,
                    avg_talk_time=kpis.average_part_talk(parts),
                    efficiency=kpis.efficiency(parts.answered, offered.get(operator_id, 0)),
                    occupancy=kpis.occupancy(parts.talk_seconds, logged_in.get(operator_id, 0.0)),
                )
            )
        return sorted(rows, key=lambda row: (-row.calls_handled, row.operator_name))

    # --- /dashboard/operator-activity -------------------------------------------------------
    async def operator_activity(
        self, group_id: str | None, viewer: Principal
    ) -> list[OperatorActivity]:
        audience = await self.audience(viewer, group_id)
        now = self._clock()
        operators = await self._operators_of(audience)
        start, end = period_bounds("today", now, self._settings.tz)
        today = await self._store.legs.parts_by_operator([op.id for op in operators], start, end)
        talking = await self._store.answered_now(StatsScope())
        paused_today = pause_seconds_by_reason(
            await self._store.pause_spells([op.id for op in operators], start, end),
            start,
            end,
            now,
        )
        return [
            OperatorActivity(
                operator_id=op.id,
                name=op.name,
                extension=op.extension,
                status=op.status,
                current_call_duration=(
                    max(0, round((now - talking[op.id]).total_seconds()))
                    if op.id in talking
                    else None
                ),
                calls_today=today.get(op.id, OperatorParts()).answered,
                last_activity=op.last_activity,
                pause_reason=current_pause_reason(op),
                pause_seconds_today=paused_today.get(op.id, {}),
            )
            for op in operators
        ]

    # --- /calls/stats -----------------------------------------------------------------------
    async def call_stats(self, query: StatsQuery, viewer: Principal) -> CallStats:
        window = self.window(query)
        audience = await self.audience(viewer, query.group_id)
        hours, per_operator = await asyncio.gather(
            self._hours(window, audience.scope),
            self._store.by_operator(window.start, window.end, audience.scope, self.thresholds),
        )
        totals = sum(hours, CallCounts())
        top = sorted(
            ((counts.answered, op) for op, counts in per_operator.items() if counts.answered),
            key=lambda item: (-item[0], item[1]),
        )[:BUSIEST_OPERATORS]
        names = await self._store.operator_names([op for _, op in top])
        return CallStats(
            period=window.period,
            start=window.start,
            end=window.end,
            group_id=audience.group_id,
            total_calls=totals.entered,
            answered_calls=totals.answered,
            missed_calls=totals.missed,
            average_duration=kpis.average_talk(totals),
            average_wait_time=kpis.average_wait(totals),
            service_level=kpis.service_level(totals),
            peak_hour=kpis.busiest_hour([hour.entered for hour in hours]),
            busiest_operators=[
                BusyOperator(
                    operator_id=op,
                    operator_name=names[op].name if op in names else op,
                    calls_count=count,
                )
                for count, op in top
            ],
            abandoned_calls=totals.abandoned,
            abandon_rate=kpis.abandon_rate(totals),
        )

    # --- /queues/{id}/stats -----------------------------------------------------------------
    async def queue_stats(self, queue_id: str, query: PeriodQuery) -> QueueStats:
        queue = await self._queues.get(queue_id)
        if queue is None:
            raise NotFound("Queue not found")
        window = self.window(query)
        hours = await self._hours(window, StatsScope(queue_ids=(queue_id,)))
        totals = sum(hours, CallCounts())
        waits = self._waiting((queue_id,))
        return QueueStats(
            period=window.period,
            start=window.start,
            end=window.end,
            calls_entered=totals.entered,
            calls_answered=totals.answered,
            calls_abandoned=totals.abandoned,
            average_wait_time=kpis.average_wait(totals),
            max_wait_time=_wait(totals.longest_wait_seconds),
            service_level=kpis.service_level(totals),
            hourly_stats=[
                QueueHour(
                    hour=kpis.hour_label(h),
                    calls=c.entered,
                    answered=c.answered,
                    avg_wait=kpis.average_wait(c),
                )
                for h, c in enumerate(hours)
            ],
            calls_missed=totals.missed,
            abandon_rate=kpis.abandon_rate(totals),
            average_talk_time=kpis.average_talk(totals),
            waiting_now=len(waits),
            longest_current_wait=_wait(max(waits, default=0.0)),
        )

    # --- /queues/{id}/forecast --------------------------------------------------------------
    async def forecast(self, queue_id: str, query: ForecastQuery) -> Forecast:
        """Operators needed per local hour of day, from the last `weeks` whole weeks
        (computed by analytics/forecast.py)."""
        queue = await self._queues.get(queue_id)
        if queue is None:
            raise NotFound("Queue not found")
        weeks = query.weeks or self._settings.analytics.forecast_weeks
        tz = self._settings.tz
        start, end = sample_window(self._clock().astimezone(tz).date(), weeks, tz)
        hours = await self._hours(Window("forecast", start, end), StatsScope(queue_ids=(queue_id,)))
        wrapup = queue.config.wrapup_seconds
        found = staffing_forecast(
            hours, local_days(start, end, tz), wrapup, query.target_service_level, query.threshold
        )
        return Forecast(
            queue_id=queue_id,
            queue_name=queue.config.name,
            target_service_level=query.target_service_level,
            threshold=query.threshold,
            weeks=weeks,
            start=start,
            end=end,
            average_handle_time=found.average_handle_time,
            wrapup_seconds=wrapup,
            peak_operators_needed=found.peak_operators_needed,
            hours=[ForecastHour.model_validate(row, from_attributes=True) for row in found.hours],
        )

    # --- /operators/{id}/stats --------------------------------------------------------------
    async def operator_stats(
        self, operator_id: str, query: PeriodQuery, viewer: Principal
    ) -> OperatorStats:
        """One operator's figures for the calls that started in the period.

        calls_missed counts their rings that ended unanswered ('leg_ended' with outcome
        'no_answer' in the period; busy, unreachable, cancelled or lost to a colleague's
        answer do not count).
        """
        await self._operators.readable(operator_id, viewer)
        window = self.window(query)
        start, end = window.start, window.end
        scope = StatsScope(operator_ids=(operator_id,))
        # Independent reads: side by side on the database's readers.
        per_operator, rated, offered_by, resolved, logged_in_by, missed = await asyncio.gather(
            self._store.by_operator(start, end, scope, self.thresholds),
            self._store.rated(operator_id, start, end),
            self._store.offered([operator_id], start, end),
            self._store.resolved_first_time(
                operator_id, start, end, self._settings.analytics.repeat_call_window_hours
            ),
            self._store.logged_in_seconds([operator_id], start, min(end, self._clock())),
            self._store.unanswered_rings(operator_id, start, end),
        )
        paused = await self._pause_seconds(operator_id, start, end)
        # Their own part of calls, transfers split (call legs; asyncio.gather types six).
        parts_of = await self._store.legs.parts_by_operator([operator_id], start, end)
        parts = parts_of.get(operator_id, OperatorParts())
        answered = per_operator.get(operator_id, CallCounts())
        offered = offered_by.get(operator_id, 0)
        logged_in = logged_in_by.get(operator_id, 0.0)
        return OperatorStats(
            period=window.period,
            start=start,
            end=end,
            calls_handled=answered.completed,
            calls_missed=missed,
            calls_offered=offered,
            calls_answered=parts.answered,
            total_talk_time=round(parts.talk_seconds),
            avg_talk_time=kpis.average_part_talk(parts),
            efficiency=kpis.efficiency(parts.answered, offered),
            first_call_resolution=kpis.first_call_resolution(resolved, answered.completed),
            customer_satisfaction=kpis.satisfaction(rated.rating_mean),
            occupancy=kpis.occupancy(parts.talk_seconds, logged_in),
            logged_in_time=round(logged_in),
            pause_time=sum(paused.values()),
            pause_seconds_by_reason=paused,
            parts_answered=parts.answered,
            part_talk_time=round(parts.talk_seconds),
            hold_time=round(parts.hold_seconds),
        )

    async def _pause_seconds(
        self, operator_id: str, start: datetime, end: datetime
    ) -> dict[str, int]:
        """Seconds the operator spent paused in [start, end), by reason."""
        spells = await self._store.pause_spells([operator_id], start, end)
        return pause_seconds_by_reason(spells, start, end, self._clock()).get(operator_id, {})
