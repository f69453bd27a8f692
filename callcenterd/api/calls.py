"""/api/calls: call history, one call with its timeline, and changes made by hand."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.call_export import CSV_MEDIA_TYPE, EXPORT_NOTE, stream_calls_csv
from callcenterd.api.endpoints import ASTERISK_ERRORS, ApiRoutes
from callcenterd.contract.analytics import CallStats, StatsQuery
from callcenterd.contract.routing import (
    CallCreate,
    CallDetail,
    CallEventOut,
    CallExportQuery,
    CallLegOut,
    CallListQuery,
    CallPage,
    CallUpdate,
)
from callcenterd.domain.users import Role
from callcenterd.errors import Conflict, NotFound
from callcenterd.security import Principal
from callcenterd.services.calls import CallRecord, CallWithTimeline, recording_url

routes = ApiRoutes("calls")
RECORDING_CHUNK = 64 * 1024
EVERYONE = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR, Role.OPERATOR]
SCOPE_NOTE = (
    "supervisor: calls of their group's operators (rung or answered) and of queues one of"
    " them is a member of; operator: calls they answered or were rung for."
)


def _fields(call: CallRecord) -> dict[str, object]:
    return {
        "id": call.id,
        "channel_id": call.channel_id,
        "caller_number": call.caller_number,
        "called_number": call.called_number,
        "operator_id": call.operator_id,
        "operator_name": call.operator_name,
        "queue_id": call.queue_id,
        "queue_name": call.queue_name,
        "status": call.status,
        "reason": call.reason,
        "start_time": call.start_time,
        "answer_time": call.answer_time,
        "end_time": call.end_time,
        "duration": call.duration,
        "wait_seconds": call.wait_seconds,
        "recording_url": recording_url(call),
        "notes": call.notes,
        "rating": call.rating,
        "routed_by": call.routed_by,
        "created_at": call.created_at,
    }


def call_detail(found: CallWithTimeline) -> CallDetail:
    call = found.call
    return CallDetail.model_validate(
        {
            **_fields(call),
            "operators_tried": list(call.operators_tried),
            "updated_at": call.updated_at,
            "hold_seconds": call.hold_seconds,
            "legs": [
                CallLegOut(
                    leg_id=leg.leg_id,
                    operator_id=leg.operator_id,
                    node=leg.node,
                    rung_at=leg.rung_at,
                    answered_at=leg.answered_at,
                    ended_at=leg.ended_at,
                    outcome=leg.outcome,
                    talk_seconds=leg.talk_seconds,
                    hold_seconds=leg.hold_seconds,
                )
                for leg in found.legs
            ],
            "events": [
                CallEventOut(
                    at=event.at, kind=event.kind, operator_id=event.operator_id, data=event.data
                )
                for event in found.events
            ],
        }
    )


@routes.route(
    "GET",
    "/calls/",
    summary="Call history, newest first",
    roles=EVERYONE,
    query=CallListQuery,
    response=CallPage,
    notes=SCOPE_NOTE,
    shared=True,
)
async def list_calls(request: web.Request, query: CallListQuery, user: Principal) -> web.Response:
    result = await request.app[keys.SERVICES].calls.page(query, user)
    # The items arrive as JSON rendered by SQLite (see CallQueries.page_json): spliced in,
    # not parsed and re-encoded, so a big page costs the event loop almost nothing.
    text = (
        f'{{"items":{result.items_json},"total":{result.total},'
        f'"page":{result.page},"pages":{result.pages}}}'
    )
    return web.Response(text=text, content_type="application/json")


@routes.route(
    "POST",
    "/calls/",
    summary="Record a call by hand (status incoming)",
    roles=[Role.ADMIN],
    body=CallCreate,
    response=CallDetail,
    status=201,
    notes="409 when the channel already has an open call.",
    errors=(Conflict,),
)
async def create_call(request: web.Request, body: CallCreate, user: Principal) -> CallDetail:
    return call_detail(await request.app[keys.SERVICES].calls.create(body, user))


# Declared before /calls/{call_id}, which would otherwise take "export" for a call id.
@routes.route(
    "GET",
    "/calls/export",
    summary="Call history as a CSV file (streamed)",
    roles=EVERYONE,
    query=CallExportQuery,
    produces=CSV_MEDIA_TYPE,
    notes=SCOPE_NOTE + EXPORT_NOTE,
)
async def export_calls(
    request: web.Request, query: CallExportQuery, user: Principal
) -> web.StreamResponse:
    return await stream_calls_csv(request, query, user)


# Declared before /calls/{call_id}, which would otherwise take "stats" for a call id.
@routes.route(
    "GET",
    "/calls/stats",
    summary="Call figures over a period",
    roles=[Role.ADMIN, Role.MANAGER, Role.SUPERVISOR],
    query=StatsQuery,
    response=CallStats,
    rate="dashboard",
    notes="supervisor: their own group only (another group_id: 403 AUTH_003).",
    shared=True,
)
async def call_stats(request: web.Request, query: StatsQuery, user: Principal) -> CallStats:
    return await request.app[keys.SERVICES].analytics.call_stats(query, user)


@routes.route(
    "GET",
    "/calls/{call_id}",
    summary="One call with its timeline",
    roles=EVERYONE,
    response=CallDetail,
    notes=SCOPE_NOTE + " Calls outside the scope answer 404.",
    errors=(NotFound,),
)
async def get_call(request: web.Request, user: Principal, call_id: str) -> CallDetail:
    return call_detail(await request.app[keys.SERVICES].calls.get(call_id, user))


@routes.route(
    "PUT",
    "/calls/{call_id}",
    summary="Notes, rating; an admin may also close a call left open",
    roles=[Role.ADMIN, Role.OPERATOR],
    body=CallUpdate,
    response=CallDetail,
    notes=(
        "operator: calls they answered (403 AUTH_003 otherwise), notes and rating only."
        " `status` (admin): `completed` (needs an answer time) or `missed`, for an open call;"
        " 409 DB_004 for a closed call, or `completed` for one never answered."
    ),
    errors=(NotFound, Conflict),
)
async def update_call(
    request: web.Request, body: CallUpdate, user: Principal, call_id: str
) -> CallDetail:
    return call_detail(await request.app[keys.SERVICES].calls.update(call_id, body, user))


@routes.route(
    "GET",
    "/calls/{call_id}/recording",
    summary="The call's recording (audio/wav), streamed from Asterisk",
    roles=EVERYONE,
    notes=(
        SCOPE_NOTE + " 404 DB_002 when the call has no recording (or Asterisk no longer has"
        " it); 503 AST_004 when ARI is not connected."
    ),
    errors=(NotFound, *ASTERISK_ERRORS),
)
async def get_recording(request: web.Request, user: Principal, call_id: str) -> web.StreamResponse:
    recording = request.app[keys.SERVICES].calls.recording(call_id, user, RECORDING_CHUNK)
    async with recording as chunks:
        response = web.StreamResponse(
            headers={
                "Content-Type": "audio/wav",
                "Content-Disposition": f'attachment; filename="{call_id}.wav"',
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response
