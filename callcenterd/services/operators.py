"""Operators as people see them: lists, choosing a status, and their statistics.

Two statuses live on an operator row. `presence` is what the operator (or a supervisor)
chose: online, paused (the API's `busy`) or offline; this service writes it. `status` is what
is shown (busy while on a call or in wrap-up too); the routing dispatcher writes it when the
engine re-derives it, which `RoutingPort.submit` waits for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from callcenterd.api.routing_schemas import OperatorStatusIn
from callcenterd.domain.events import OperatorPresenceSet, OperatorRemoved, OperatorUpserted
from callcenterd.domain.queues import Presence
from callcenterd.domain.users import OperatorStatus, Role
from callcenterd.errors import NotFound, PermissionDenied
from callcenterd.security import Clock
from callcenterd.services.context import Principal, audit
from callcenterd.services.periods import Period, period_bounds
from callcenterd.services.routing_port import RoutingPort
from callcenterd.settings import Settings
from callcenterd.store.call_queries import CallQueries
from callcenterd.store.db import Database
from callcenterd.store.queues import OperatorDirectory, OperatorRecord

log = structlog.get_logger(__name__)

# The API's status -> the presence it chooses.
PRESENCE_OF = {
    OperatorStatus.ONLINE: Presence.ONLINE,
    OperatorStatus.BUSY: Presence.PAUSED,
    OperatorStatus.OFFLINE: Presence.OFFLINE,
}


@dataclass(frozen=True, slots=True)
class OperatorView:
    operator: OperatorRecord
    current_calls: int
    calls_today: int


@dataclass(frozen=True, slots=True)
class OperatorFigures:
    """One operator's figures over a period; see `OperatorService.stats` for definitions."""

    calls_handled: int
    calls_missed: int
    calls_offered: int
    total_talk_time: int
    avg_talk_time: int
    efficiency: float
    first_call_resolution: float
    customer_satisfaction: float | None
    period: Period
    start: datetime
    end: datetime


def _percent(part: int, whole: int) -> float:
    return round(part * 100 / whole, 1) if whole else 0.0


class OperatorService:
    def __init__(
        self,
        db: Database,
        directory: OperatorDirectory,
        calls: CallQueries,
        routing: RoutingPort,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._db = db
        self._directory = directory
        self._calls = calls
        self.routing = routing  # public so tests (and the app) can swap the port
        self._clock = clock
        self._settings = settings

    # --- access -----------------------------------------------------------------------------
    async def _get(self, operator_id: str) -> OperatorRecord:
        operator = await self._directory.get(operator_id)
        if operator is None:
            raise NotFound("Operator not found")
        return operator

    @staticmethod
    def _check_access(operator: OperatorRecord, viewer: Principal, action: str) -> None:
        """Supervisors act on their group's operators, operators on themselves only."""
        if viewer.role is Role.SUPERVISOR and (
            viewer.group_id is None or operator.group_id != viewer.group_id
        ):
            raise PermissionDenied(f"Supervisors may only {action} operators of their own group")
        if viewer.role is Role.OPERATOR and operator.user_id != viewer.id:
            raise PermissionDenied(f"Operators may only {action} themselves")

    # --- reads ------------------------------------------------------------------------------
    async def list_operators(
        self, viewer: Principal, group_id: str | None, status: OperatorStatus | None
    ) -> list[OperatorView]:
        if viewer.role is Role.SUPERVISOR:
            if viewer.group_id is None:
                return []
            group_id = viewer.group_id
        operators = await self._directory.find(group_id, status)
        return await self._views(operators)

    async def _views(self, operators: list[OperatorRecord]) -> list[OperatorView]:
        if not operators:
            return []
        start, end = period_bounds("today", self._clock(), self._settings.tz)
        current = await self._calls.open_by_operator()
        today = await self._calls.answered_by_operator(start, end)
        return [OperatorView(op, current.get(op.id, 0), today.get(op.id, 0)) for op in operators]

    async def view(self, operator_id: str) -> OperatorView:
        return (await self._views([await self._get(operator_id)]))[0]

    # --- status -----------------------------------------------------------------------------
    async def set_status(
        self, operator_id: str, body: OperatorStatusIn, actor: Principal
    ) -> OperatorView:
        operator = await self._get(operator_id)
        self._check_access(operator, actor, "set the status of")
        presence = PRESENCE_OF[body.status]
        reason = body.reason if presence is Presence.PAUSED else None
        now = self._clock()
        async with self._db.transaction() as conn:
            await self._directory.set_presence(conn, operator_id, presence, reason, now)
            await audit(
                conn,
                now,
                actor,
                "operator",
                "set_status",
                operator_id,
                {"status": body.status.value, "presence": presence.value, "reason": body.reason},
            )
        log.info(
            "operator_presence_set",
            operator_id=operator_id,
            presence=presence.value,
            by=actor.id,
        )
        # The profile as stored first, so an operator the engine has not met yet is known
        # to it; then the presence itself (it also cancels rings when going offline).
        profile = await self._directory.profile(operator_id)
        if profile is not None:
            await self.routing.submit(OperatorUpserted(profile))
        await self.routing.submit(OperatorPresenceSet(operator_id, presence, reason))
        return await self.view(operator_id)

    async def sync_user(self, user_id: str) -> None:
        """After a user changed (role, skills, extension, deactivation, deletion): tell the
        engine the operator as now stored, or that they no longer route."""
        operator_id = await self._directory.operator_id_of(user_id)
        if operator_id is None:
            return
        profile = await self._directory.profile(operator_id)
        if profile is None:
            await self.routing.submit(OperatorRemoved(operator_id))
        else:
            await self.routing.submit(OperatorUpserted(profile))

    # --- statistics -------------------------------------------------------------------------
    async def stats(self, operator_id: str, period: Period, viewer: Principal) -> OperatorFigures:
        """An operator's figures for calls that started in the period (configured time zone).

        - calls_handled: completed calls they answered;
        - calls_missed: their rings that ended unanswered: timeline entries 'leg_ended' with
          outcome 'no_answer' in the period (busy, unreachable, cancelled or lost to a
          colleague's answer do not count);
        - calls_offered: distinct calls they were rung for or answered;
        - total_talk_time / avg_talk_time: talk seconds of handled calls, sum and mean;
        - efficiency: handled / offered x 100;
        - first_call_resolution: handled calls whose caller did not call again (any queue)
          within 24 h of the call's end, x 100 / handled;
        - customer_satisfaction: mean rating (1-5) of handled calls, null when none is rated.
        Percentages are 0.0 when there is nothing to divide by.
        """
        operator = await self._get(operator_id)
        self._check_access(operator, viewer, "see the statistics of")
        start, end = period_bounds(period, self._clock(), self._settings.tz)
        handled = await self._calls.handled(operator_id, start, end)
        missed = await self._calls.unanswered_rings(operator_id, start, end)
        offered = await self._calls.offered(operator_id, start, end)
        resolved = await self._calls.resolved_first_time(operator_id, start, end)
        return OperatorFigures(
            calls_handled=handled.calls,
            calls_missed=missed,
            calls_offered=offered,
            total_talk_time=handled.talk_seconds,
            avg_talk_time=round(handled.talk_seconds / handled.calls) if handled.calls else 0,
            efficiency=_percent(handled.calls, max(offered, handled.calls)),
            first_call_resolution=_percent(resolved, handled.calls),
            customer_satisfaction=(
                None if handled.rating_mean is None else round(handled.rating_mean, 2)
            ),
            period=period,
            start=start,
            end=end,
        )
