"""/api/operators: who is online, choosing a status, and each operator's figures."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.analytics import OperatorStats, PeriodQuery
from callcenterd.contract.routing import (
    OperatorListItem,
    OperatorListQuery,
    OperatorStatusIn,
    PauseReasonsOut,
)
from callcenterd.domain.pauses import SYSTEM_PAUSE_REASONS
from callcenterd.domain.users import Role
from callcenterd.errors import NotFound
from callcenterd.security import Principal
from callcenterd.services.operators import OperatorView

routes = ApiRoutes("operators")
READERS = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR]
EVERYONE = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR, Role.OPERATOR]


def operator_item(view: OperatorView) -> OperatorListItem:
    operator = view.operator
    return OperatorListItem(
        id=operator.id,
        user_id=operator.user_id,
        name=operator.name,
        extension=operator.extension,
        status=operator.status,
        status_reason=operator.status_reason,
        presence=operator.presence,
        presence_reason=operator.presence_reason,
        group_id=operator.group_id,
        skills=list(operator.skills),
        max_concurrent_calls=operator.max_concurrent_calls,
        current_calls=view.current_calls,
        calls_today=view.calls_today,
        last_activity=operator.last_activity,
    )


@routes.route(
    "GET",
    "/operators/",
    summary="List operators",
    roles=READERS,
    query=OperatorListQuery,
    response=list[OperatorListItem],
    notes="A supervisor always gets their own group, whatever `group_id` says.",
    shared=True,
)
async def list_operators(
    request: web.Request, query: OperatorListQuery, user: Principal
) -> list[OperatorListItem]:
    views = await request.app[keys.SERVICES].operators.list_operators(
        user, query.group_id, query.status
    )
    return [operator_item(view) for view in views]


@routes.route(
    "GET",
    "/operators/pause-reasons",
    summary="The reasons an operator may pause with",
    roles=EVERYONE,
    response=PauseReasonsOut,
    notes="Admins edit the list as `pause_reasons` in /api/admin/settings.",
)
async def pause_reasons(request: web.Request, user: Principal) -> PauseReasonsOut:
    reasons = await request.app[keys.SERVICES].operators.pause_reasons()
    return PauseReasonsOut(reasons=reasons, system_reasons=sorted(SYSTEM_PAUSE_REASONS))


@routes.route(
    "PUT",
    "/operators/{operator_id}/status",
    summary="Choose an operator's status (busy = paused: not rung)",
    roles=EVERYONE,
    body=OperatorStatusIn,
    response=OperatorListItem,
    notes=(
        "supervisor: operators of their group; operator: themselves (else 403 AUTH_003)."
        " 'busy' pauses with `reason`, one of GET /api/operators/pause-reasons (else 422 on"
        " `reason`). The answer shows the status as the routing engine now displays it."
    ),
    errors=(NotFound,),
)
async def set_operator_status(
    request: web.Request, body: OperatorStatusIn, user: Principal, operator_id: str
) -> OperatorListItem:
    view = await request.app[keys.SERVICES].operators.set_status(operator_id, body, user)
    return operator_item(view)


@routes.route(
    "GET",
    "/operators/{operator_id}/stats",
    summary="An operator's figures over a period",
    roles=EVERYONE,
    query=PeriodQuery,
    response=OperatorStats,
    notes=(
        "supervisor: operators of their group; operator: themselves (else 403 AUTH_003)."
        " Calls that started in the period (configured time zone) count; calls_missed counts"
        " rings that ended unanswered ('no_answer'); efficiency = answered / offered x 100;"
        " first_call_resolution: handled calls whose caller did not call again within"
        " analytics.repeat_call_window_hours (24 h); occupancy = talk / logged-in time."
    ),
    errors=(NotFound,),
)
async def operator_stats(
    request: web.Request, query: PeriodQuery, user: Principal, operator_id: str
) -> OperatorStats:
    return await request.app[keys.SERVICES].analytics.operator_stats(operator_id, query, user)
