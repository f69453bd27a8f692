"""/api/admin/webhooks: receivers of the call events, signed, delivered through the outbox."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.notify import (
    WebhookDeliveryOut,
    WebhookDeliveryQuery,
    WebhookIn,
    WebhookOut,
    WebhookUpdate,
)
from callcenterd.contract.schemas import Message
from callcenterd.contract.validation import RequestInvalid
from callcenterd.domain.users import Role
from callcenterd.errors import NotFound, OutboxStateConflict
from callcenterd.security import Principal
from callcenterd.services.webhooks import Delivery, Webhook

routes = ApiRoutes("webhooks")
ADMIN = [Role.ADMIN]
NOTES = (
    "Each matching call event is POSTed as JSON ({type, timestamp, data}: the WebSocket"
    " event without its id) with X-Callcenterd-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,"
    ' "<t>." + body)>, X-Callcenterd-Delivery (the same on every resend) and'
    " X-Callcenterd-Event. 2xx is delivered; 408, 429, 5xx, timeouts and refused connections"
    " are retried with backoff; other answers fail the delivery. Only call_* event types are"
    " delivered. The URL must be http(s) and its host must not resolve to a loopback,"
    " link-local, private or reserved address unless the config file allows it ([webhooks]):"
    " 422 naming url."
)


def webhook_out(webhook: Webhook) -> WebhookOut:
    return WebhookOut.model_validate(webhook, from_attributes=True)


def delivery_out(delivery: Delivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut.model_validate(delivery, from_attributes=True)


@routes.route(
    "GET", "/admin/webhooks", summary="List webhooks", roles=ADMIN, response=list[WebhookOut]
)
async def list_webhooks(request: web.Request) -> list[WebhookOut]:
    return [webhook_out(w) for w in await request.app[keys.SERVICES].webhooks.all()]


@routes.route(
    "POST",
    "/admin/webhooks",
    summary="Create a webhook (the answer shows its secret, once)",
    roles=ADMIN,
    body=WebhookIn,
    response=WebhookOut,
    status=201,
    notes=NOTES,
    errors=(RequestInvalid,),
)
async def create_webhook(request: web.Request, body: WebhookIn, user: Principal) -> WebhookOut:
    return webhook_out(await request.app[keys.SERVICES].webhooks.create(body, user))


@routes.route(
    "GET",
    "/admin/webhooks/{webhook_id}",
    summary="One webhook",
    roles=ADMIN,
    response=WebhookOut,
    errors=(NotFound,),
)
async def get_webhook(request: web.Request, webhook_id: str) -> WebhookOut:
    return webhook_out(await request.app[keys.SERVICES].webhooks.get(webhook_id))


@routes.route(
    "PUT",
    "/admin/webhooks/{webhook_id}",
    summary="Change a webhook (partial)",
    roles=ADMIN,
    body=WebhookUpdate,
    response=WebhookOut,
    notes="Switching it off (active false) cancels its queued deliveries. " + NOTES,
    errors=(NotFound, RequestInvalid),
)
async def update_webhook(
    request: web.Request, body: WebhookUpdate, user: Principal, webhook_id: str
) -> WebhookOut:
    return webhook_out(await request.app[keys.SERVICES].webhooks.update(webhook_id, body, user))


@routes.route(
    "DELETE",
    "/admin/webhooks/{webhook_id}",
    summary="Delete a webhook (its queued deliveries are cancelled)",
    roles=ADMIN,
    response=Message,
    errors=(NotFound,),
)
async def delete_webhook(request: web.Request, user: Principal, webhook_id: str) -> Message:
    await request.app[keys.SERVICES].webhooks.delete(webhook_id, user)
    return Message(message="Webhook deleted")


@routes.route(
    "GET",
    "/admin/webhooks/{webhook_id}/deliveries",
    summary="A webhook's last deliveries, newest first, with the receiver's answer codes",
    roles=ADMIN,
    query=WebhookDeliveryQuery,
    response=list[WebhookDeliveryOut],
    errors=(NotFound,),
)
async def list_deliveries(
    request: web.Request, query: WebhookDeliveryQuery, webhook_id: str
) -> list[WebhookDeliveryOut]:
    webhooks = request.app[keys.SERVICES].webhooks
    found = await webhooks.deliveries(webhook_id, query.state, query.limit)
    return [delivery_out(d) for d in found]


@routes.route(
    "POST",
    "/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    summary="Send a delivery again (same delivery id)",
    roles=ADMIN,
    response=WebhookDeliveryOut,
    notes="From sent, failed or cancelled; due at once with a fresh count of tries. 409 while"
    " it is still queued or the webhook is switched off.",
    errors=(NotFound, OutboxStateConflict),
)
async def redeliver(
    request: web.Request, user: Principal, webhook_id: str, delivery_id: str
) -> WebhookDeliveryOut:
    webhooks = request.app[keys.SERVICES].webhooks
    return delivery_out(await webhooks.redeliver(webhook_id, delivery_id, user))
