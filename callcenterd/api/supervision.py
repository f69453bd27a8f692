"""/api/calls/{call_id}/supervise: listen to, whisper to or barge into a live call.

POST starts a session (202: the supervisor's own phone is rung; the session turns `active`
when it answers); PUT .../supervise/{session_id} changes its mode; DELETE ends it;
GET /api/calls/{call_id}/supervisions is the call's audit of every session.
"""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ASTERISK_ERRORS, ApiRoutes
from callcenterd.contract.supervision import SuperviseRequest, SupervisionModeOut, SupervisionOut
from callcenterd.domain.supervision import SupervisionSession
from callcenterd.domain.users import Role
from callcenterd.errors import (
    AlreadySupervising,
    CallNotLive,
    NoOwnPhone,
    NotFound,
    SupervisionOver,
)
from callcenterd.security import Principal

routes = ApiRoutes("supervision")
SUPERVISORS = [Role.ADMIN, Role.MANAGER, Role.SUPERVISOR]
WHO = (
    "admin, manager: any call; supervisor: calls of their own group (403 AUTH_003 otherwise)."
    " Unknown call: 404 DB_002."
)


def session_out(session: SupervisionSession) -> SupervisionOut:
    return SupervisionOut(
        id=session.id,
        call_id=session.call_id,
        supervisor_id=session.supervisor_id,
        operator_id=session.operator_id,
        extension=session.extension,
        mode=session.mode,
        state=session.state,
        started_at=session.started_at,
        answered_at=session.answered_at,
        ended_at=session.ended_at,
        end_reason=session.end_reason,
        modes=[
            SupervisionModeOut(mode=span.mode, started_at=span.started_at, ended_at=span.ended_at)
            for span in session.modes
        ],
    )


@routes.route(
    "POST",
    "/calls/{call_id}/supervise",
    summary="Supervise a live call from your own phone (listen, whisper, barge)",
    roles=SUPERVISORS,
    body=SuperviseRequest,
    response=SupervisionOut,
    status=202,
    notes=(
        WHO + " Your phone (your user's extension) is rung; when it answers it hears the call"
        " (state `active`). 409 SUP_001: the call is not talking; 422 SUP_002: you have no"
        " extension; 409 SUP_004: you are supervising another call; 503 AST_004: Asterisk is"
        " not connected."
    ),
    errors=(NotFound, CallNotLive, NoOwnPhone, AlreadySupervising, *ASTERISK_ERRORS),
)
async def start_supervision(
    request: web.Request, body: SuperviseRequest, user: Principal, call_id: str
) -> SupervisionOut:
    supervision = request.app[keys.SERVICES].supervision
    return session_out(await supervision.start(call_id, body.mode, user))


@routes.route(
    "PUT",
    "/calls/{call_id}/supervise/{session_id}",
    summary="Change the mode of a live supervision session",
    roles=SUPERVISORS,
    body=SuperviseRequest,
    response=SupervisionOut,
    notes=(
        WHO + " Only the session's supervisor, an admin or a manager. 409 SUP_003: the session"
        " has ended. The supervisor's phone stays up; Asterisk's snoop is replaced."
    ),
    errors=(NotFound, SupervisionOver, *ASTERISK_ERRORS),
)
async def change_supervision(
    request: web.Request, body: SuperviseRequest, user: Principal, call_id: str, session_id: str
) -> SupervisionOut:
    supervision = request.app[keys.SERVICES].supervision
    return session_out(await supervision.change(call_id, session_id, body.mode, user))


@routes.route(
    "DELETE",
    "/calls/{call_id}/supervise/{session_id}",
    summary="End a supervision session (the supervisor's phone is hung up)",
    roles=SUPERVISORS,
    response=SupervisionOut,
    notes=WHO + " Only the session's supervisor, an admin or a manager. 409 SUP_003: ended.",
    errors=(NotFound, SupervisionOver),
)
async def end_supervision(
    request: web.Request, user: Principal, call_id: str, session_id: str
) -> SupervisionOut:
    supervision = request.app[keys.SERVICES].supervision
    return session_out(await supervision.end(call_id, session_id, user))


@routes.route(
    "GET",
    "/calls/{call_id}/supervisions",
    summary="Every supervision session of a call, with its modes and times (the audit)",
    roles=SUPERVISORS,
    response=list[SupervisionOut],
    notes=WHO,
    errors=(NotFound,),
)
async def list_supervisions(
    request: web.Request, user: Principal, call_id: str
) -> list[SupervisionOut]:
    supervision = request.app[keys.SERVICES].supervision
    return [session_out(s) for s in await supervision.of_call(call_id, user)]
