"""/api/dashboard: the supervisor's screens (figures over a period, live state, operators).

The statistics routes of other areas (/calls/stats, /queues/{id}/stats and /forecast,
/operators/{id}/stats) are declared in their own modules and answered by the same service,
`services/analytics.py`, where the rules on who sees what are written down.
"""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.analytics import (
    CallAnalytics,
    DashboardStats,
    GroupQuery,
    OperatorActivity,
    Realtime,
    StatsQuery,
)
from callcenterd.domain.users import Role
from callcenterd.security import Principal

routes = ApiRoutes("dashboard")
READERS = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR]
GROUP_NOTE = (
    "supervisor: their own group only (another group_id: 403 AUTH_003). A group's calls:"
    " calls of the queues its operators are members of, and calls its operators answered."
)
PERIOD_NOTE = (
    " Calls count in the period (and local hour) they started in; date_from/date_to"
    " (configured time zone) override period. Definitions: README, Statistics."
)


@routes.route(
    "GET",
    "/dashboard/stats",
    summary="The main figures over a period",
    roles=READERS,
    query=StatsQuery,
    response=DashboardStats,
    rate="dashboard",
    notes=GROUP_NOTE + PERIOD_NOTE,
    shared=True,
)
async def dashboard_stats(
    request: web.Request, query: StatsQuery, user: Principal
) -> DashboardStats:
    return await request.app[keys.SERVICES].analytics.dashboard(query, user)


@routes.route(
    "GET",
    "/dashboard/realtime",
    summary="What is happening now",
    roles=READERS,
    query=GroupQuery,
    response=Realtime,
    rate="dashboard",
    notes=GROUP_NOTE + " Waiting callers come from the routing engine's live state.",
    shared=True,
)
async def dashboard_realtime(request: web.Request, query: GroupQuery, user: Principal) -> Realtime:
    return await request.app[keys.SERVICES].analytics.realtime(query.group_id, user)


@routes.route(
    "GET",
    "/dashboard/call-analytics",
    summary="Calls by hour, queue and operator over a period",
    roles=READERS,
    query=StatsQuery,
    response=CallAnalytics,
    rate="dashboard",
    notes=GROUP_NOTE + PERIOD_NOTE,
    shared=True,
)
async def call_analytics(request: web.Request, query: StatsQuery, user: Principal) -> CallAnalytics:
    return await request.app[keys.SERVICES].analytics.call_analytics(query, user)


@routes.route(
    "GET",
    "/dashboard/operator-activity",
    summary="Each operator now: status, current call, calls today",
    roles=READERS,
    query=GroupQuery,
    response=list[OperatorActivity],
    rate="dashboard",
    notes="supervisor: their own group only (another group_id: 403 AUTH_003).",
    shared=True,
)
async def operator_activity(
    request: web.Request, query: GroupQuery, user: Principal
) -> list[OperatorActivity]:
    return await request.app[keys.SERVICES].analytics.operator_activity(query.group_id, user)
