"""/api/admin/privacy: erasing a caller's phone number wherever the daemon stored it."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ASTERISK_ERRORS, ApiRoutes
from callcenterd.contract.privacy import ErasureOut, ErasureRequest
from callcenterd.contract.validation import RequestInvalid
from callcenterd.domain.users import Role
from callcenterd.errors import Conflict
from callcenterd.security import Principal

routes = ApiRoutes("privacy")


@routes.route(
    "POST",
    "/admin/privacy/erase",
    summary="Erase a phone number: calls, timelines, callbacks, VIP list, outbox, recordings",
    roles=[Role.ADMIN],
    body=ErasureRequest,
    response=ErasureOut,
    notes=(
        "Calls and callbacks keep their rows (statistics) with the number replaced by"
        " `erased`; VIP entries and outbox messages addressed to it are deleted; the"
        " recordings of its calls are deleted in Asterisk. 409 DB_004 while the number has a"
        " call in progress or a callback still to serve; 503 when its recordings cannot be"
        " deleted (nothing is changed then). Written to the audit log by a keyed hash and"
        " the last two digits, never in clear."
    ),
    errors=(RequestInvalid, Conflict, *ASTERISK_ERRORS),
)
async def erase_number(request: web.Request, body: ErasureRequest, user: Principal) -> ErasureOut:
    report = await request.app[keys.SERVICES].privacy.erase(body, user)
    return ErasureOut(
        number_hash=report.number_hash, last_digits=report.last_digits, **report.counts()
    )
