"""Request and response models of /api/admin/outbox and /api/admin/webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from callcenterd.contract.schemas import PASSWORD_MASK, Skip, _In, reject_null

OutboxState = Literal["queued", "sent", "failed", "cancelled"]
OutboxKind = Literal["sms", "email", "webhook"]

# The WebSocket event types a webhook can receive: the call's facts, each written with its
# deliveries in one transaction (services/call_records.py). Other event types (operator
# status, supervision, callbacks, queue_stats) are not delivered to webhooks: refused (422).
WebhookEventType = Literal[
    "call_started",
    "call_queued",
    "call_ringing",
    "call_answered",
    "call_ended",
    "call_held",
    "call_unheld",
    "call_transfer_started",
    "call_transferred",
    "call_transfer_failed",
]
WEBHOOK_EVENT_TYPES: tuple[str, ...] = WebhookEventType.__args__  # type: ignore[attr-defined]
ALL_EVENTS: Literal["*"] = "*"


# --- the outbox ----------------------------------------------------------------------------
class OutboxListQuery(BaseModel):
    state: OutboxState | None = None
    kind: OutboxKind | None = None
    skip: Skip = 0
    limit: int = Field(50, ge=1, le=1000)


class OutboxMessageOut(BaseModel):
    id: int
    kind: OutboxKind
    recipient: str = Field(description="sms: a number; email: an address; webhook: its id")
    topic: str
    idempotency_key: str = Field(description="Goes with the message; a webhook's delivery id")
    content: dict[str, Any] = Field(description="What is sent (may hold personal data)")
    state: OutboxState
    attempts: int = Field(description="Tries made (a retry by an admin starts again at 0)")
    next_attempt_at: datetime = Field(description="When a queued message is tried next")
    last_error: str | None
    last_status_code: int | None = Field(description="The far end's last answer code")
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class OutboxPage(BaseModel):
    items: list[OutboxMessageOut]
    total: int
    page: int = Field(description="skip // limit + 1")
    pages: int = Field(description="ceil(total / limit)")


# --- webhooks ------------------------------------------------------------------------------
def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials: the secret signs each delivery")
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as err:
        raise ValueError(f"has a bad port: {err}") from err
    return value


WebhookUrl = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=10, max_length=2000, pattern=r"^https?://[^\s@/?#]+"
    ),
    AfterValidator(_http_url),
]
WebhookSecret = Annotated[str, StringConstraints(min_length=16, max_length=200)]
MAX_EVENT_TYPES = 20


def _event_types(value: Any) -> Any:
    """'*' alone (or ['*']) is every type; else the list, each once, without '*'."""
    if value == ALL_EVENTS:
        return [ALL_EVENTS]
    return value


def _no_star_among_others(value: list[str]) -> list[str]:
    """Each type once; ['*'] (every type) stands alone."""
    chosen = list(dict.fromkeys(value))
    if ALL_EVENTS in chosen and len(chosen) > 1:
        raise ValueError("'*' stands alone: every call event type")
    return chosen


def _every_type() -> list[Literal["*", WebhookEventType]]:
    return [ALL_EVENTS]


EventTypes = Annotated[
    list[Literal["*", WebhookEventType]],
    Field(min_length=1, max_length=MAX_EVENT_TYPES),
    BeforeValidator(_event_types),
    AfterValidator(_no_star_among_others),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "const": ALL_EVENTS},
                {
                    "type": "array",
                    "items": {"enum": [ALL_EVENTS, *WEBHOOK_EVENT_TYPES]},
                    "minItems": 1,
                    "maxItems": MAX_EVENT_TYPES,
                },
            ]
        }
    ),
]
SECRET_NOTE = (
    "Signs each delivery (X-Callcenterd-Signature). Generated when not given; shown in the"
    f" answer to its creation only, '{PASSWORD_MASK}' afterwards"
)


class WebhookIn(_In):
    url: WebhookUrl
    event_types: EventTypes = Field(
        default_factory=_every_type,
        description="'*' (every call event) or a list of call event types",
    )
    secret: WebhookSecret | None = Field(None, description=SECRET_NOTE)
    active: bool = True
    description: Annotated[str, StringConstraints(max_length=200)] = ""
    NOT_NULL = ("secret",)

    _not_null = field_validator("secret")(reject_null)


class WebhookUpdate(_In):
    """Partial: what is left out stays as it is."""

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    secret: Literal["********"] | WebhookSecret | None = Field(
        None, description=f"A new secret; '{PASSWORD_MASK}' or left out: keep the current one"
    )
    active: bool | None = None
    description: Annotated[str, StringConstraints(max_length=200)] | None = None
    NOT_NULL = ("url", "event_types", "secret", "active", "description")
    ALSO_READ_ONLY = ("secret_set",)

    _not_null = field_validator(*NOT_NULL)(reject_null)


class WebhookOut(BaseModel):
    id: str
    url: str
    event_types: Literal["*"] | list[WebhookEventType]
    secret: str = Field(description=SECRET_NOTE)
    active: bool
    description: str
    created_at: datetime
    updated_at: datetime


class WebhookDeliveryOut(BaseModel):
    delivery_id: str = Field(description="X-Callcenterd-Delivery (the outbox idempotency key)")
    message_id: int = Field(description="The outbox message")
    event_type: str
    state: OutboxState
    attempts: int
    last_status_code: int | None = Field(description="The receiver's last answer code")
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class WebhookDeliveryQuery(BaseModel):
    state: OutboxState | None = None
    limit: int = Field(50, ge=1, le=500)
