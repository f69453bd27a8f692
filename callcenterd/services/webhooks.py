"""Webhooks: what admins configure, and what the source and the transport read in memory.

The list is loaded at start and kept in step with every change, so a call fact's deliveries
are decided without a query (`WebhookSource`) and a send finds its URL and secret without
one (`target`). Secrets are stored encrypted (SecretBox), shown once at creation, masked in
every other answer. Deleting a webhook, or switching it off, cancels its queued deliveries
in the same transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from callcenterd.contract.notify import ALL_EVENTS, WebhookIn, WebhookUpdate
from callcenterd.contract.schemas import PASSWORD_MASK
from callcenterd.contract.validation import field_error
from callcenterd.domain.messages import MessageKind
from callcenterd.errors import NotFound, OutboxStateConflict
from callcenterd.notify.webhooks import (
    TargetPolicy,
    TargetRefused,
    WebhookSource,
    WebhookTarget,
    WebhookTransport,
    rule_of,
)
from callcenterd.security import Clock, Principal, SecretBox
from callcenterd.services.context import audit
from callcenterd.services.outbox import OutboxService
from callcenterd.store.db import Database
from callcenterd.store.outbox import OutboxRepository, OutboxRow
from callcenterd.store.webhooks import StoredWebhook, WebhookRepository

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook as answered: `secret` is the mask, or the clear secret just after creation."""

    id: str
    url: str
    event_types: str | list[str]
    secret: str
    active: bool
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    message_id: int
    event_type: str
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


def _delivery(row: OutboxRow) -> Delivery:
    return Delivery(
        delivery_id=row.idempotency_key,
        message_id=row.id,
        event_type=row.topic,
        state=row.state,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
    )


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookService:
    def __init__(
        self,
        db: Database,
        repository: WebhookRepository,
        outbox_rows: OutboxRepository,
        outbox: OutboxService,
        box: SecretBox,
        policy: TargetPolicy,
        clock: Clock,
    ) -> None:
        self._db = db
        self._repository = repository
        self._outbox_rows = outbox_rows
        self._outbox = outbox
        self._box = box
        self._policy = policy
        self._clock = clock
        self.source = WebhookSource()
        self._targets: dict[str, WebhookTarget] = {}
        # The outbox worker's transport for kind `webhook` (its session: close()).
        self.transport = WebhookTransport(self.target, policy)

    async def load(self) -> None:
        stored = await self._repository.list()
        self.source.replace(rule_of(w.id, w.event_types, w.active) for w in stored)
        self._targets = {w.id: self._target(w) for w in stored}

    def target(self, webhook_id: str) -> WebhookTarget | None:
        """The transport's lookup: URL and clear secret."""
        return self._targets.get(webhook_id)

    def _target(self, webhook: StoredWebhook) -> WebhookTarget:
        return WebhookTarget(
            webhook.url, self._box.decrypt(webhook.encrypted_secret), webhook.active
        )

    def _remember(self, webhook: StoredWebhook) -> None:
        self.source.put(rule_of(webhook.id, webhook.event_types, webhook.active))
        self._targets[webhook.id] = self._target(webhook)

    def _forget(self, webhook_id: str) -> None:
        self.source.remove(webhook_id)
        self._targets.pop(webhook_id, None)

    # --- CRUD ---------------------------------------------------------------------------------
    async def all(self) -> list[Webhook]:
        return [self._answer(w) for w in await self._repository.list()]

    async def get(self, webhook_id: str) -> Webhook:
        return self._answer(await self._stored(webhook_id))

    async def _stored(self, webhook_id: str) -> StoredWebhook:
        found = await self._repository.get(webhook_id)
        if found is None:
            raise NotFound("No webhook with this id")
        return found

    async def _check_url(self, url: str) -> None:
        try:
            await self._policy.check_url(url)
        except TargetRefused as err:
            raise field_error("body", "url", f"URL refused: {err}") from err

    async def create(self, body: WebhookIn, actor: Principal) -> Webhook:
        await self._check_url(body.url)
        now = self._clock()
        secret = body.secret or new_secret()
        webhook = StoredWebhook(
            id=str(uuid.uuid4()),
            url=body.url,
            event_types=_types(body.event_types),
            encrypted_secret=self._box.encrypt(secret),
            active=body.active,
            description=body.description,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as conn:
            await self._repository.create(conn, webhook)
            await audit(
                conn, now, actor, "webhook", "create", webhook.id, _logged(body.model_dump())
            )
        self._remember(webhook)
        log.info("webhook_created", webhook_id=webhook.id, event_types=body.event_types)
        # The one answer that shows the secret.
        return replace(self._answer(webhook), secret=secret)

    async def update(self, webhook_id: str, body: WebhookUpdate, actor: Principal) -> Webhook:
        current = await self._stored(webhook_id)
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        if changes.get("secret") in (None, PASSWORD_MASK):
            changes.pop("secret", None)
        else:
            changes["secret"] = self._box.encrypt(changes["secret"])
        if "event_types" in changes:
            changes["event_types"] = _types(changes["event_types"])
        if "url" in changes:
            await self._check_url(changes["url"])
        now = self._clock()
        stops = changes.get("active") is False and current.active
        async with self._db.transaction() as conn:
            if not await self._repository.update(conn, webhook_id, now, changes):
                raise NotFound("No webhook with this id")
            if stops:
                await self._outbox_rows.cancel_recipient_in(
                    conn, MessageKind.WEBHOOK, webhook_id, now, "webhook switched off"
                )
            await audit(conn, now, actor, "webhook", "update", webhook_id, _logged(changes))
        updated = await self._stored(webhook_id)
        self._remember(updated)
        return self._answer(updated)

    async def delete(self, webhook_id: str, actor: Principal) -> None:
        now = self._clock()
        async with self._db.transaction() as conn:
            if not await self._repository.delete(conn, webhook_id):
                raise NotFound("No webhook with this id")
            await self._outbox_rows.cancel_recipient_in(
                conn, MessageKind.WEBHOOK, webhook_id, now, "webhook deleted"
            )
            await audit(conn, now, actor, "webhook", "delete", webhook_id, {})
        self._forget(webhook_id)

    # --- deliveries ---------------------------------------------------------------------------
    async def deliveries(self, webhook_id: str, state: str | None, limit: int) -> list[Delivery]:
        await self._stored(webhook_id)
        rows, _ = await self._outbox_rows.page(
            kind=MessageKind.WEBHOOK.value, recipient=webhook_id, state=state, limit=limit
        )
        return [_delivery(row) for row in rows]

    async def redeliver(self, webhook_id: str, delivery_id: str, actor: Principal) -> Delivery:
        """Send a delivery again, with the same delivery id (a receiver that lost it, or
        gave up on it, gets it again): from sent, failed or cancelled."""
        webhook = await self._stored(webhook_id)
        row = await self._outbox_rows.by_key(delivery_id)
        if row is None or row.kind is not MessageKind.WEBHOOK or row.recipient != webhook_id:
            raise NotFound("No delivery with this id for this webhook")
        if not webhook.active:
            raise OutboxStateConflict("The webhook is switched off: switch it on first")
        await self._outbox.requeue(row.id, ("sent", "failed", "cancelled"), actor, "redeliver")
        found = await self._outbox_rows.get(row.id)
        assert found is not None
        return _delivery(found)

    @staticmethod
    def _answer(webhook: StoredWebhook) -> Webhook:
        return Webhook(
            id=webhook.id,
            url=webhook.url,
            event_types=webhook.event_types,
            secret=PASSWORD_MASK,
            active=webhook.active,
            description=webhook.description,
            created_at=webhook.created_at,
            updated_at=webhook.updated_at,
        )


def _types(event_types: Sequence[str]) -> str | list[str]:
    """As stored and answered: "*" for every type, else the list."""
    return ALL_EVENTS if list(event_types) == [ALL_EVENTS] else list(event_types)


def _logged(changes: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps: never the secret."""
    return {k: (PASSWORD_MASK if k == "secret" and v else v) for k, v in changes.items()}
