"""/api/admin/outbox: every message leaving the daemon (SMS, email, webhooks), and what admins
do with one: retry it, cancel it. Admins only: a message's content may hold personal data."""

from __future__ import annotations

import math

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.notify import OutboxListQuery, OutboxMessageOut, OutboxPage
from callcenterd.domain.users import Role
from callcenterd.errors import NotFound, OutboxStateConflict
from callcenterd.security import Principal
from callcenterd.services.outbox import OutboxRow

routes = ApiRoutes("outbox")
ADMIN = [Role.ADMIN]
MAX_ID = 2**63 - 1


def message_out(row: OutboxRow) -> OutboxMessageOut:
    return OutboxMessageOut.model_validate(row, from_attributes=True)


def _id(message_id: str) -> int:
    if not message_id.isdigit() or int(message_id) > MAX_ID:
        raise NotFound("No outbox message with this id")
    return int(message_id)


@routes.route(
    "GET",
    "/admin/outbox",
    summary="Outbox messages, newest first",
    roles=ADMIN,
    query=OutboxListQuery,
    response=OutboxPage,
    notes="Filter by state and kind; skip/limit as the call history.",
)
async def list_outbox(request: web.Request, query: OutboxListQuery) -> OutboxPage:
    rows, total = await request.app[keys.SERVICES].outbox.page(
        query.state, query.kind, query.skip, query.limit
    )
    return OutboxPage(
        items=[message_out(row) for row in rows],
        total=total,
        page=query.skip // query.limit + 1,
        pages=math.ceil(total / query.limit),
    )


@routes.route(
    "GET",
    "/admin/outbox/{message_id}",
    summary="One outbox message",
    roles=ADMIN,
    response=OutboxMessageOut,
    errors=(NotFound,),
)
async def get_outbox_message(request: web.Request, message_id: str) -> OutboxMessageOut:
    return message_out(await request.app[keys.SERVICES].outbox.get(_id(message_id)))


@routes.route(
    "POST",
    "/admin/outbox/{message_id}/retry",
    summary="Queue a failed or cancelled message again",
    roles=ADMIN,
    response=OutboxMessageOut,
    notes="Due at once, with a fresh count of tries (attempts starts again at 0; the last"
    " error stays until the next try). 409 for a queued or sent message.",
    errors=(NotFound, OutboxStateConflict),
)
async def retry_outbox_message(
    request: web.Request, user: Principal, message_id: str
) -> OutboxMessageOut:
    return message_out(await request.app[keys.SERVICES].outbox.retry(_id(message_id), user))


@routes.route(
    "POST",
    "/admin/outbox/{message_id}/cancel",
    summary="Cancel a queued message",
    roles=ADMIN,
    response=OutboxMessageOut,
    notes="409 unless the message is queued. A try already under way may still reach the far"
    " end: the message is then shown as sent.",
    errors=(NotFound, OutboxStateConflict),
)
async def cancel_outbox_message(
    request: web.Request, user: Principal, message_id: str
) -> OutboxMessageOut:
    return message_out(await request.app[keys.SERVICES].outbox.cancel(_id(message_id), user))
