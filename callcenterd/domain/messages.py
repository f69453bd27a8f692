"""The outbox's vocabulary, shared by what enqueues messages and what sends them.

A `MessageSource` turns a stored fact (a call event, a callback step) into messages; the
store writes them in the fact's own transaction. A `Transport` sends one message and says
how it failed; the outbox worker owns retries, backoff and the final `failed` state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class MessageKind(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WEBHOOK = "webhook"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to enqueue.

    `recipient`: an E.164 number (sms), an email address (email), a webhook's id (webhook).
    `idempotency_key`: unique per message; enqueueing a key again is a no-op, and it goes
    with the message to the far end (header or field) so a resend can be recognised.
    `content`: what the transport needs, by kind: sms {"text"}; email {"subject", "text",
    "html" (optional)}; webhook {"event": the WebSocket event's JSON}.
    `throttle_seconds`: drop this message when one of the same kind and `topic` to the same
    recipient was enqueued within that many seconds (SMS: one per number per window).
    `not_before`: not sent before then (a reminder ahead of a callback).
    """

    kind: MessageKind
    recipient: str
    idempotency_key: str
    content: dict[str, Any]
    topic: str = ""
    throttle_seconds: int | None = None
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message as the outbox holds it, handed to a transport."""

    id: int
    kind: MessageKind
    recipient: str
    idempotency_key: str
    content: dict[str, Any]
    topic: str
    attempts: int  # tries before this one
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What the far end answered to a delivered message (HTTP status, SMTP reply)."""

    answer: str
    status_code: int | None = None


class DeliveryFailed(Exception):
    """A send that did not go through. `retryable=False`: trying again cannot help (a
    recipient refused, a 4xx from a webhook other than 408/429), so the message fails now."""

    def __init__(
        self, detail: str, *, retryable: bool = True, status_code: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
        self.status_code = status_code


class Transport(Protocol):
    kind: MessageKind

    async def send(self, message: QueuedMessage) -> DeliveryReceipt:
        """Deliver or raise DeliveryFailed; never anything else for a delivery failure."""
        ...


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What a message source knows about the call a fact belongs to."""

    call_id: str
    caller_number: str
    called_number: str | None
    queue_id: str | None
    status: str | None = None  # after the fact: incoming, queued, answered, completed, missed...
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class MessageSource(Protocol):
    """Pure: from a stored call event (its WebSocket payload as JSON) to messages.

    Sources keep what they need (settings, webhooks, queues' switches) in memory, updated
    when it changes; `messages_for` does no I/O and reads no clock.
    """

    def messages_for(
        self, event_type: str, event: dict[str, Any], call: CallFacts, at: datetime
    ) -> Sequence[OutgoingMessage]: ...
