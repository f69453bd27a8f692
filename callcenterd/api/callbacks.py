"""/api/callbacks: callbacks booked by callers (DTMF 1) or by people, listed and changed."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.callbacks import (
    CallbackCreate,
    CallbackList,
    CallbackListQuery,
    CallbackOut,
    CallbackReschedule,
)
from callcenterd.domain.users import Role
from callcenterd.errors import Conflict, NotFound, PermissionDenied
from callcenterd.security import Principal
from callcenterd.services.callbacks import StoredCallback

routes = ApiRoutes("callbacks")
EVERYONE = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR, Role.OPERATOR]
BOOKERS = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR]
SCOPE_NOTE = (
    "supervisor: callbacks of queues one of their group's operators is a member of (others"
    " answer 404); operator: the callbacks they served."
)


def callback_out(callback: StoredCallback) -> CallbackOut:
    return CallbackOut.model_validate(callback, from_attributes=True)


@routes.route(
    "GET",
    "/callbacks/",
    summary="Callbacks, newest first",
    roles=EVERYONE,
    query=CallbackListQuery,
    response=CallbackList,
    notes=SCOPE_NOTE,
)
async def list_callbacks(
    request: web.Request, query: CallbackListQuery, user: Principal
) -> CallbackList:
    found = await request.app[keys.SERVICES].callbacks.list_callbacks(query, user)
    return CallbackList(items=[callback_out(callback) for callback in found])


@routes.route(
    "POST",
    "/callbacks/",
    summary="Book a callback: for a missed call (call_id), or a number in a queue",
    roles=BOOKERS,
    body=CallbackCreate,
    response=CallbackOut,
    status=201,
    notes=(
        "It takes its place in line now (or waits for scheduled_at). 404 for an unknown call;"
        " 409 when the call was not missed or a callback for the number and queue is pending;"
        " supervisor: a queue outside their group's answers 403."
    ),
    errors=(NotFound, Conflict, PermissionDenied),
)
async def create_callback(
    request: web.Request, body: CallbackCreate, user: Principal
) -> CallbackOut:
    return callback_out(await request.app[keys.SERVICES].callbacks.create(body, user))


@routes.route(
    "GET",
    "/callbacks/{callback_id}",
    summary="One callback",
    roles=EVERYONE,
    response=CallbackOut,
    notes=SCOPE_NOTE,
    errors=(NotFound,),
)
async def get_callback(request: web.Request, user: Principal, callback_id: str) -> CallbackOut:
    return callback_out(await request.app[keys.SERVICES].callbacks.get(callback_id, user))


@routes.route(
    "PUT",
    "/callbacks/{callback_id}",
    summary="Reschedule a pending callback (it keeps its place in line)",
    roles=BOOKERS,
    body=CallbackReschedule,
    response=CallbackOut,
    notes="409 unless the callback is pending. " + SCOPE_NOTE,
    errors=(NotFound, Conflict),
)
async def reschedule_callback(
    request: web.Request, body: CallbackReschedule, user: Principal, callback_id: str
) -> CallbackOut:
    callbacks = request.app[keys.SERVICES].callbacks
    return callback_out(await callbacks.reschedule(callback_id, body, user))


@routes.route(
    "POST",
    "/callbacks/{callback_id}/cancel",
    summary="Cancel a pending callback",
    roles=BOOKERS,
    response=CallbackOut,
    notes="409 unless the callback is pending. " + SCOPE_NOTE,
    errors=(NotFound, Conflict),
)
async def cancel_callback(request: web.Request, user: Principal, callback_id: str) -> CallbackOut:
    return callback_out(await request.app[keys.SERVICES].callbacks.cancel(callback_id, user))
