"""Which SMS the daemon sends, and when: the caller's missed call, a callback booked or moved,
a reminder before a timed callback. Pure: no I/O, no clock (times are passed in).

`SmsNotices` is a MessageSource (domain/messages.py) for `call_ended` events, and builds the
callback messages that services/callbacks.py enqueues in the callback's own transaction. It
holds what it decides by in memory: the global switch (SystemSettings.sms_notifications), the
system's callback_enabled, and per queue its name, its SMS switches, its language and its own
callback_enabled. Services call `update` when those change.

A caller gets an SMS only from a queue that allows that notice, at an E.164 number
(`domain/phone_numbers.py`: anonymous ids and extensions never), at most one missed-call SMS
and one callback confirmation per number per `[sms] window_seconds` (the outbox's throttle,
by topic). A callback's later messages (a new time, the reminder) are not throttled: each is
one per callback and time, and tells the caller something they need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from callcenterd.domain.clock import to_iso
from callcenterd.domain.messages import CallFacts, MessageKind, OutgoingMessage
from callcenterd.domain.phone_numbers import NumberPlan, to_e164
from callcenterd.domain.queues import QueueConfig
from callcenterd.notify import sms_templates as texts
from callcenterd.notify.sms_templates import Language
from callcenterd.settings import Settings

# How a call the caller gave up on ends (routing/engine.py, services/fallback.py): hung up
# while waiting, waited longer than the queue's limit, or found nobody logged in. Not
# `callback` (they chose a callback: its confirmation is sent), `rejected` (no queue open to
# take the call), `lost` (the daemon lost sight of it) or a callback's own end.
MISSED_REASONS = frozenset({"abandoned", "timeout", "no_operator"})
# A callback due within this long is "as soon as an operator is free", not a time.
SOON = timedelta(seconds=60)

TOPIC_MISSED_CALL = "missed_call"
TOPIC_CALLBACK_SCHEDULED = "callback_scheduled"
TOPIC_CALLBACK_REMINDER = "callback_reminder"


@dataclass(frozen=True, slots=True)
class QueueSms:
    """A queue's SMS switches, as the notices need them."""

    name: str
    missed_call: bool = True
    callback_scheduled: bool = True
    callback_reminder: bool = True
    language: Language | None = None  # None: `[sms] language`
    callback_enabled: bool | None = None  # None: the system's callback_enabled

    @classmethod
    def of(cls, config: QueueConfig) -> QueueSms:
        return cls(
            name=config.name,
            missed_call=config.sms_missed_call,
            callback_scheduled=config.sms_callback_scheduled,
            callback_reminder=config.sms_callback_reminder,
            language=config.notification_language,
            callback_enabled=config.callback_enabled,
        )


@dataclass(frozen=True, slots=True)
class SmsRules:
    """The daemon's `[sms]` settings the notices follow (fixed while it runs)."""

    configured: bool = True  # a gateway URL is set: without one nothing is queued
    plan: NumberPlan = field(default_factory=NumberPlan)
    window_seconds: int = 3600
    language: Language = "ru"
    company: str = ""
    reminder_minutes: int = 15
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @classmethod
    def of(cls, settings: Settings) -> SmsRules:
        sms = settings.sms
        return cls(
            configured=sms.configured,
            plan=NumberPlan(
                sms.country_code,
                sms.national_prefix,
                sms.national_number_length,
                sms.internal_max_length,
            ),
            window_seconds=sms.window_seconds,
            language=sms.language,
            company=sms.company,
            reminder_minutes=sms.reminder_minutes,
            tz=settings.tz,
        )


@dataclass(frozen=True, slots=True)
class CallbackNotice:
    """A callback as its messages need it (from the callback's stored row)."""

    callback_id: str
    queue_id: str
    number: str
    scheduled_at: datetime | None  # None: as soon as an operator is free


class SmsNotices:
    def __init__(self, rules: SmsRules) -> None:
        self._rules = rules
        self._enabled = False
        self._callbacks_enabled = False
        self._queues: dict[str, QueueSms] = {}

    # --- what it decides by -------------------------------------------------------------------
    def update(
        self,
        *,
        enabled: bool | None = None,
        callbacks_enabled: bool | None = None,
        queues: Iterable[QueueConfig] | None = None,
    ) -> None:
        """Take what changed: the global switch (sms_notifications), the system's
        callback_enabled, the live queues (all of them: a queue left out is gone)."""
        if enabled is not None:
            self._enabled = enabled
        if callbacks_enabled is not None:
            self._callbacks_enabled = callbacks_enabled
        if queues is not None:
            self._queues = {queue.id: QueueSms.of(queue) for queue in queues}

    @property
    def active(self) -> bool:
        return self._enabled and self._rules.configured

    def __bool__(self) -> bool:
        """False while no SMS can be sent: the call recorder then skips this source."""
        return self.active

    def _language(self, queue: QueueSms) -> Language:
        return queue.language or self._rules.language

    def _who(self, queue: QueueSms) -> str:
        return texts.who(self._rules.company, queue.name)

    def _throttle(self) -> int | None:
        return self._rules.window_seconds or None

    # --- the MessageSource: call events -------------------------------------------------------
    def messages_for(
        self, event_type: str, event: dict[str, Any], call: CallFacts, at: datetime
    ) -> Sequence[OutgoingMessage]:
        """A missed call's SMS to the caller (with the callback promise when the queue
        offers callbacks)."""
        if event_type != "call_ended" or not self.active:
            return []
        status = call.status or event.get("status")
        reason = call.reason or event.get("reason")
        if status != "missed" or reason not in MISSED_REASONS or call.queue_id is None:
            return []
        queue = self._queues.get(call.queue_id)
        if queue is None or not queue.missed_call:
            return []
        number = to_e164(call.caller_number, self._rules.plan)
        if number is None:
            return []
        promise = (
            self._callbacks_enabled if queue.callback_enabled is None else queue.callback_enabled
        )
        name = "missed_call_callback" if promise else "missed_call"
        return [
            OutgoingMessage(
                kind=MessageKind.SMS,
                recipient=number,
                idempotency_key=f"sms:{TOPIC_MISSED_CALL}:{call.call_id}",
                content={"text": texts.text(name, self._language(queue), self._who(queue))},
                topic=TOPIC_MISSED_CALL,
                throttle_seconds=self._throttle(),
            )
        ]

    # --- callbacks ----------------------------------------------------------------------------
    def callback_booked(self, callback: CallbackNotice, at: datetime) -> list[OutgoingMessage]:
        """A callback was booked (by the caller or by a person): its confirmation (one per
        number per window) and, for a timed one, its reminder."""
        return self._callback_messages(callback, at, throttled=True)

    def callback_rescheduled(self, callback: CallbackNotice, at: datetime) -> list[OutgoingMessage]:
        """A person moved the callback: the new time (not throttled) and its reminder. The
        reminder of the old time is withdrawn by the caller of this (`reminder_prefix`)."""
        return self._callback_messages(callback, at, throttled=False)

    @staticmethod
    def reminder_prefix(callback_id: str) -> str:
        """What the idempotency keys of a callback's reminders start with."""
        return f"sms:{TOPIC_CALLBACK_REMINDER}:{callback_id}:"

    def _callback_messages(
        self, callback: CallbackNotice, at: datetime, *, throttled: bool
    ) -> list[OutgoingMessage]:
        if not self.active:
            return []
        queue = self._queues.get(callback.queue_id)
        number = to_e164(callback.number, self._rules.plan)
        if queue is None or number is None:
            return []
        timed = callback.scheduled_at is not None and callback.scheduled_at > at + SOON
        messages: list[OutgoingMessage] = []
        if queue.callback_scheduled:
            messages.append(self._confirmation(callback, queue, number, at, throttled, timed))
        reminder = self._reminder(callback, queue, number, at, confirmed=bool(messages))
        if timed and reminder is not None:
            messages.append(reminder)
        return messages

    def _confirmation(
        self,
        callback: CallbackNotice,
        queue: QueueSms,
        number: str,
        at: datetime,
        throttled: bool,
        timed: bool,
    ) -> OutgoingMessage:
        language = self._language(queue)
        if timed:
            assert callback.scheduled_at is not None
            moment = texts.when(callback.scheduled_at, at, self._rules.tz, language)
            body = texts.text("callback_at", language, self._who(queue), when=moment)
        else:
            body = texts.text("callback_soon", language, self._who(queue))
        stamp = to_iso(callback.scheduled_at) if callback.scheduled_at else "soon"
        return OutgoingMessage(
            kind=MessageKind.SMS,
            recipient=number,
            idempotency_key=f"sms:{TOPIC_CALLBACK_SCHEDULED}:{callback.callback_id}:{stamp}",
            content={"text": body},
            topic=TOPIC_CALLBACK_SCHEDULED,
            throttle_seconds=self._throttle() if throttled else None,
        )

    def _reminder(
        self,
        callback: CallbackNotice,
        queue: QueueSms,
        number: str,
        at: datetime,
        *,
        confirmed: bool,
    ) -> OutgoingMessage | None:
        """`reminder_minutes` before the callback. Sooner than that: the confirmation, just
        sent, already says the time; without one (switched off) the reminder goes now."""
        minutes = self._rules.reminder_minutes
        scheduled = callback.scheduled_at
        if not queue.callback_reminder or not minutes or scheduled is None:
            return None
        remind_at: datetime | None = scheduled - timedelta(minutes=minutes)
        assert remind_at is not None
        if remind_at <= at:
            if confirmed:
                return None
            remind_at = None  # at once
        language = self._language(queue)
        moment = texts.when(scheduled, remind_at or at, self._rules.tz, language)
        body = texts.text("callback_reminder", language, self._who(queue), when=moment)
        return OutgoingMessage(
            kind=MessageKind.SMS,
            recipient=number,
            idempotency_key=self.reminder_prefix(callback.callback_id) + to_iso(scheduled),
            content={"text": body},
            topic=TOPIC_CALLBACK_REMINDER,
            not_before=remind_at,
        )
