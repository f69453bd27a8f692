"""Missed-call emails to the supervisors of the call's queue: at once, or as a digest.

Who is told: a queue's supervisors are the active users with role `supervisor` whose group
has an operator who is a member of the queue (the scope supervisors already have for
calls, callbacks and statistics). A call that reached no queue has no supervisor.

`MissedCallAlerts` is the MessageSource for the immediate mode: pure, it answers
`call_ended` with status `missed` with one email per supervisor of the call's queue, from
what `update` last gave it. `digest_messages` builds the digest mode's emails from the calls
a store query found. Both only speak when email is on, configured and in their mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.domain.messages import CallFacts, MessageKind, OutgoingMessage
from callcenterd.notify.email_templates import (
    Language,
    MissedCall,
    missed_call_alert,
    missed_calls_digest,
)

ALERT_TOPIC = "missed_call_alert"
DIGEST_TOPIC = "missed_calls_digest"
MISSED_STATUS = "missed"


@dataclass(frozen=True, slots=True)
class SupervisorAudience:
    """What the missed-call emails need to know, refreshed when settings, users or queue
    members change. `supervisors`: queue id -> the addresses of its supervisors."""

    mode: str = "off"  # immediate | digest | off; "off" too while email is off or unset
    language: Language = "ru"
    tz: tzinfo = UTC
    supervisors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    queue_names: Mapping[str, str] = field(default_factory=dict)

    def of_queue(self, queue_id: str | None) -> tuple[str, ...]:
        return self.supervisors.get(queue_id, ()) if queue_id is not None else ()


def alert_key(call_id: str, recipient: str) -> str:
    return f"email:missed-call:{call_id}:{recipient.casefold()}"


_DIGEST_PREFIX = "email:missed-digest:"
_STAMP_CHARS = len("2000-01-01T00:00:00.000000Z")  # to_iso's fixed width


def digest_key(until: datetime, recipient: str) -> str:
    return f"{_DIGEST_PREFIX}{to_iso(until)}:{recipient.casefold()}"


def digest_until_of_key(key: str) -> datetime | None:
    """The end of the window a digest key closes (None: not a digest key)."""
    if not key.startswith(_DIGEST_PREFIX):
        return None
    stamp = key.removeprefix(_DIGEST_PREFIX)[:_STAMP_CHARS]
    try:
        return from_iso(stamp)
    except ValueError:
        return None


class MissedCallAlerts:
    """The immediate mode's MessageSource."""

    def __init__(self) -> None:
        self._audience = SupervisorAudience()

    @property
    def audience(self) -> SupervisorAudience:
        return self._audience

    def update(self, audience: SupervisorAudience) -> None:
        self._audience = audience

    def __bool__(self) -> bool:
        """False unless alerts go at once: the call recorder then skips this source."""
        return self._audience.mode == "immediate"

    def messages_for(
        self, event_type: str, event: dict[str, Any], call: CallFacts, at: datetime
    ) -> Sequence[OutgoingMessage]:
        audience = self._audience
        status = event.get("status", call.status)
        if event_type != "call_ended" or status != MISSED_STATUS or audience.mode != "immediate":
            return []
        recipients = audience.of_queue(call.queue_id)
        if not recipients:
            return []
        wait = call.extra.get("wait_seconds")
        missed = MissedCall(
            call_id=call.call_id,
            caller_number=call.caller_number,
            queue_name=audience.queue_names.get(call.queue_id or "", call.queue_id),
            ended_at=at,
            wait_seconds=float(wait) if isinstance(wait, int | float) else None,
            reason=event.get("reason", call.reason),
        )
        content = missed_call_alert(audience.language, missed, audience.tz).as_content()
        return [
            OutgoingMessage(
                MessageKind.EMAIL,
                recipient,
                alert_key(call.call_id, recipient),
                content,
                topic=ALERT_TOPIC,
            )
            for recipient in recipients
        ]


@dataclass(frozen=True, slots=True)
class StoredMissedCall:
    """A missed call as the store reads it for a digest."""

    call_id: str
    caller_number: str
    queue_id: str | None
    ended_at: datetime
    wait_seconds: float | None
    reason: str | None


def digest_messages(
    audience: SupervisorAudience,
    calls: Iterable[StoredMissedCall],
    since: datetime,
    until: datetime,
) -> list[OutgoingMessage]:
    """One email per supervisor listing the calls of their queues in [since, until)."""
    if audience.mode != "digest":
        return []
    by_recipient: dict[str, list[MissedCall]] = {}
    for call in sorted(calls, key=lambda c: (c.ended_at, c.call_id)):
        shown = MissedCall(
            call.call_id,
            call.caller_number,
            audience.queue_names.get(call.queue_id or "", call.queue_id),
            call.ended_at,
            call.wait_seconds,
            call.reason,
        )
        for recipient in audience.of_queue(call.queue_id):
            by_recipient.setdefault(recipient, []).append(shown)
    return [
        OutgoingMessage(
            MessageKind.EMAIL,
            recipient,
            digest_key(until, recipient),
            missed_calls_digest(audience.language, listed, since, until, audience.tz).as_content(),
            topic=DIGEST_TOPIC,
        )
        for recipient, listed in sorted(by_recipient.items())
    ]
