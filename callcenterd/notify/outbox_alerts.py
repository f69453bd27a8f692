"""Admins hear of messages the outbox gave up on.

`OutboxFailureAlerts.messages_for_failure(message, error)` is what the outbox worker calls
when a message fails finally; it answers the emails to enqueue (in the transaction that marks
the message failed). Pure, from what `update` last gave it.

No loops: a failed email of this very topic is never reported. No floods: at most one such
email per admin per `THROTTLE_SECONDS` (the outbox's throttle); the others are in
`GET /api/admin/outbox?state=failed`, which each email points to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo

from callcenterd.domain.messages import MessageKind, OutgoingMessage, QueuedMessage
from callcenterd.notify.email_templates import Language, outbox_failure

FAILURE_TOPIC = "outbox_failure"
THROTTLE_SECONDS = 600
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class AdminAudience:
    enabled: bool = False  # email on and configured
    language: Language = "ru"
    tz: tzinfo = UTC
    recipients: tuple[str, ...] = ()


def failure_key(message: QueuedMessage, recipient: str) -> str:
    # With the attempts: a message retried by an admin that fails again is news again.
    return f"email:outbox-failed:{message.id}:{message.attempts}:{recipient.casefold()}"


class OutboxFailureAlerts:
    def __init__(self) -> None:
        self._audience = AdminAudience()

    def update(self, audience: AdminAudience) -> None:
        self._audience = audience

    def messages_for_failure(self, message: QueuedMessage, error: str) -> Sequence[OutgoingMessage]:
        audience = self._audience
        if not audience.enabled or is_failure_alert(message):
            return []
        shown_error = error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "…"
        content = outbox_failure(audience.language, message, shown_error, audience.tz)
        return [
            OutgoingMessage(
                MessageKind.EMAIL,
                recipient,
                failure_key(message, recipient),
                content.as_content(),
                topic=FAILURE_TOPIC,
                throttle_seconds=THROTTLE_SECONDS,
            )
            for recipient in audience.recipients
        ]


def is_failure_alert(message: QueuedMessage) -> bool:
    return message.kind is MessageKind.EMAIL and message.topic == FAILURE_TOPIC
