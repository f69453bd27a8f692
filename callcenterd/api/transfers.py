"""/api/calls/{call_id}/hold, /unhold, /transfer (+ /complete, /cancel): issue 11, parts 1-2.

Each answers the call with its timeline and legs (as GET /api/calls/{call_id}) once what was
asked is stored; the telephony follows at once (music, bridges, the target's phone ringing).
"""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.calls import EVERYONE, call_detail
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.routing import CallDetail
from callcenterd.contract.transfers import TransferRequest
from callcenterd.errors import (
    CallAlreadyHeld,
    CallNotAnswered,
    CallNotHeld,
    NotFound,
    NoTransferInProgress,
    PermissionDenied,
    TransferInProgress,
    TransferNotSupported,
    TransferTargetBusy,
    TransferTargetNotAnswered,
    TransferTargetOffline,
    TransferTargetUnknown,
    TransferToSelf,
)
from callcenterd.security import Principal

routes = ApiRoutes("calls")
WHO = (
    "admin, manager: any call; supervisor: calls of their group (others 404); operator: only"
    " the call they are talking on now (403 AUTH_003)."
)
TARGET_ERRORS = (
    TransferTargetOffline,
    TransferTargetBusy,
    TransferToSelf,
    TransferTargetUnknown,
    TransferNotSupported,
)


@routes.route(
    "POST",
    "/calls/{call_id}/hold",
    summary="Put the caller on hold (music); the operator stays on the line",
    roles=EVERYONE,
    response=CallDetail,
    notes=WHO + " 409 CALL_001 not answered, CALL_002 already held, CALL_004 in a transfer.",
    errors=(NotFound, PermissionDenied, CallNotAnswered, CallAlreadyHeld, TransferInProgress),
)
async def hold(request: web.Request, user: Principal, call_id: str) -> CallDetail:
    return call_detail(await request.app[keys.SERVICES].transfers.hold(call_id, user))


@routes.route(
    "POST",
    "/calls/{call_id}/unhold",
    summary="Take the caller off hold, back with the operator",
    roles=EVERYONE,
    response=CallDetail,
    notes=WHO + " 409 CALL_001 not answered, CALL_003 not held, CALL_004 in a transfer.",
    errors=(NotFound, PermissionDenied, CallNotAnswered, CallNotHeld, TransferInProgress),
)
async def unhold(request: web.Request, user: Principal, call_id: str) -> CallDetail:
    return call_detail(await request.app[keys.SERVICES].transfers.unhold(call_id, user))


@routes.route(
    "POST",
    "/calls/{call_id}/transfer",
    summary="Transfer the call to an operator, a queue or an external number",
    roles=EVERYONE,
    body=TransferRequest,
    response=CallDetail,
    notes=(
        WHO + " blind: the operator's leg is hung up and the caller rings the target (a queue"
        " keeps the caller's first arrival for its place in line; an operator who does not"
        " answer sends the caller back to their queue). attended (operator targets only): the"
        " caller is held while the target's phone rings for the operator; then"
        " /transfer/complete or /transfer/cancel; a target that refuses or does not answer"
        " gives the caller back to the operator. 409 CALL_001 not answered, CALL_004 a"
        " transfer under way, CALL_007 target offline, CALL_008 target busy; 422 CALL_009"
        " the operator themself, CALL_010 unknown or inactive target, CALL_011 not available."
    ),
    errors=(NotFound, PermissionDenied, CallNotAnswered, TransferInProgress, *TARGET_ERRORS),
)
async def transfer(
    request: web.Request, body: TransferRequest, user: Principal, call_id: str
) -> CallDetail:
    return call_detail(await request.app[keys.SERVICES].transfers.transfer(call_id, body, user))


@routes.route(
    "POST",
    "/calls/{call_id}/transfer/complete",
    summary="Complete an attended transfer: the caller joins the target, the operator leaves",
    roles=EVERYONE,
    response=CallDetail,
    notes=WHO + " 409 CALL_005 no attended transfer, CALL_006 the target has not answered.",
    errors=(
        NotFound,
        PermissionDenied,
        CallNotAnswered,
        NoTransferInProgress,
        TransferTargetNotAnswered,
    ),
)
async def complete_transfer(request: web.Request, user: Principal, call_id: str) -> CallDetail:
    return call_detail(await request.app[keys.SERVICES].transfers.complete(call_id, user))


@routes.route(
    "POST",
    "/calls/{call_id}/transfer/cancel",
    summary="Cancel an attended transfer: the target's leg is hung up, the caller is back",
    roles=EVERYONE,
    response=CallDetail,
    notes=WHO + " 409 CALL_005 no attended transfer.",
    errors=(NotFound, PermissionDenied, CallNotAnswered, NoTransferInProgress),
)
async def cancel_transfer(request: web.Request, user: Principal, call_id: str) -> CallDetail:
    return call_detail(await request.app[keys.SERVICES].transfers.cancel(call_id, user))
