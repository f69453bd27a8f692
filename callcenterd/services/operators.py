"""Operators as people see them: lists, choosing a status, and their statistics.

Two statuses live on an operator row. `presence` is what the operator (or a supervisor)
chose: online, paused (the API's `busy`) or offline; this service writes it. `status` is what
is shown (busy while on a call or in wrap-up too); the routing dispatcher writes it when the
engine re-derives it, which `RoutingPort.submit` waits for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from callcenterd.analytics.periods import period_bounds
from callcenterd.contract.routing import OperatorStatusIn
from callcenterd.contract.validation import field_error
from callcenterd.domain.events import OperatorPresenceSet, OperatorRemoved, OperatorUpserted
from callcenterd.domain.pauses import UNSPECIFIED_PAUSE_REASON
from callcenterd.domain.queues import Presence
from callcenterd.domain.users import OperatorStatus, Role
from callcenterd.errors import NotFound, PermissionDenied
from callcenterd.security import Clock, Principal
from callcenterd.services.context import audit
from callcenterd.services.routing_port import RoutingPort
from callcenterd.settings import Settings
from callcenterd.store.call_queries import CallQueries
from callcenterd.store.db import Database
from callcenterd.store.operators import OperatorDirectory, OperatorRecord

log = structlog.get_logger(__name__)

# The API's status -> the presence it chooses.
PRESENCE_OF = {
    OperatorStatus.ONLINE: Presence.ONLINE,
    OperatorStatus.BUSY: Presence.PAUSED,
    OperatorStatus.OFFLINE: Presence.OFFLINE,
}


# The pause reasons operators may choose now (SystemSettings.pause_reasons).
PauseReasonSource = Callable[[], Awaitable[Sequence[str]]]


def current_pause_reason(operator: OperatorRecord) -> str | None:
    """Why the operator is paused now, as stored; None when they are not paused."""
    if operator.presence is not Presence.PAUSED:
        return None
    return operator.presence_reason or UNSPECIFIED_PAUSE_REASON


@dataclass(frozen=True, slots=True)
class OperatorView:
    operator: OperatorRecord
    current_calls: int
    calls_today: int


class OperatorService:
    def __init__(
        self,
        db: Database,
        directory: OperatorDirectory,
        calls: CallQueries,
        routing: RoutingPort,
        clock: Clock,
        settings: Settings,
        pause_reasons: PauseReasonSource,
    ) -> None:
        self._db = db
        self._pause_reasons = pause_reasons
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

    async def readable(self, operator_id: str, viewer: Principal) -> OperatorRecord:
        """The operator, if `viewer` may see their figures (else NotFound/PermissionDenied)."""
        operator = await self._get(operator_id)
        self._check_access(operator, viewer, "see the statistics of")
        return operator

    async def view(self, operator_id: str) -> OperatorView:
        return (await self._views([await self._get(operator_id)]))[0]

    # --- status -----------------------------------------------------------------------------
    async def set_status(
        self, operator_id: str, body: OperatorStatusIn, actor: Principal
    ) -> OperatorView:
        operator = await self._get(operator_id)
        self._check_access(operator, actor, "set the status of")
        presence = PRESENCE_OF[body.status]
        # A reason given with online or offline means nothing and is not kept.
        reason = body.reason if presence is Presence.PAUSED else None
        if reason is not None:
            await self._check_pause_reason(reason)
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

    async def pause_reasons(self) -> list[str]:
        return list(await self._pause_reasons())

    async def _check_pause_reason(self, reason: str) -> None:
        """People pause with a configured reason; the system reasons are the daemon's."""
        allowed = await self._pause_reasons()
        if reason not in allowed:
            choices = ", ".join(allowed) or "none is configured"
            raise field_error("body", "reason", f"not a configured pause reason ({choices})")

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
