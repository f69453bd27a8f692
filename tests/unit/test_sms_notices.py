"""Which SMS the notices produce: the missed-call source for every switch, number and
language; callback confirmations and reminders, and their times in the configured zone."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callcenterd.domain.messages import CallFacts, MessageKind, OutgoingMessage
from callcenterd.domain.queues import QueueConfig
from callcenterd.notify.sms_notices import CallbackNotice, SmsNotices, SmsRules
from callcenterd.settings import Settings

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
MOSCOW = ZoneInfo("Europe/Moscow")
CALLER = "8 (916) 123-45-67"
E164 = "+79161234567"


def queue(**options: Any) -> QueueConfig:
    return QueueConfig(id="q1", name="Поддержка", asterisk_name="support", **options)


def notices(
    *queues: QueueConfig, enabled: bool = True, callbacks: bool = False, **rules: Any
) -> SmsNotices:
    source = SmsNotices(SmsRules(tz=MOSCOW, **rules))
    source.update(enabled=enabled, callbacks_enabled=callbacks, queues=queues or [queue()])
    return source


def ended(
    reason: str = "abandoned", status: str = "missed", caller: str = CALLER, queue_id: str = "q1"
) -> tuple[str, dict[str, Any], CallFacts, datetime]:
    event = {"call_id": "c1", "end_time": "", "duration": 30, "status": status, "reason": reason}
    facts = CallFacts("c1", caller, "100", queue_id, status=status, reason=reason)
    return "call_ended", event, facts, AT


def texts(messages: Any) -> list[str]:
    return [m.content["text"] for m in messages]


# --- missed calls ------------------------------------------------------------------------------
def test_a_missed_call_gets_one_sms() -> None:
    [sms] = notices().messages_for(*ended())
    assert sms == OutgoingMessage(
        kind=MessageKind.SMS,
        recipient=E164,
        idempotency_key="sms:missed_call:c1",
        content={"text": "Поддержка: извините, мы пропустили ваш звонок."
                 " Пожалуйста, позвоните нам ещё раз."},
        topic="missed_call",
        throttle_seconds=3600,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("enabled", "queue_switch", "system_callbacks", "queue_callbacks"),
    list(itertools.product([True, False], [True, False], [True, False], [None, True, False])),
)
def test_every_switch_combination(
    enabled: bool, queue_switch: bool, system_callbacks: bool, queue_callbacks: bool | None
) -> None:
    config = queue(sms_missed_call=queue_switch, callback_enabled=queue_callbacks)
    found = texts(
        notices(config, enabled=enabled, callbacks=system_callbacks).messages_for(*ended())
    )
    if not (enabled and queue_switch):
        assert found == []
        return
    promised = system_callbacks if queue_callbacks is None else queue_callbacks
    [text] = found
    assert ("Мы перезвоним вам в ближайшее время." in text) is promised
    assert ("Пожалуйста, позвоните нам ещё раз." in text) is not promised


@pytest.mark.parametrize(
    ("reason", "status", "sent"),
    [
        ("abandoned", "missed", True),
        ("timeout", "missed", True),
        ("no_operator", "missed", True),
        ("callback", "missed", False),  # they booked a callback: its confirmation goes instead
        ("rejected", "missed", False),
        ("lost", "missed", False),
        ("callback_failed", "missed", False),
        ("callback_cancelled", "missed", False),
        ("caller_hangup", "completed", False),
        ("operator_hangup", "completed", False),
    ],
)
def test_only_calls_the_caller_gave_up_on(reason: str, status: str, sent: bool) -> None:
    assert bool(notices().messages_for(*ended(reason, status))) is sent


@pytest.mark.parametrize(
    "caller", ["anonymous", "Unknown", "restricted", "", "1001", "101", "*97", "alice", "+7916"]
)
def test_anonymous_and_internal_numbers_never_get_one(caller: str) -> None:
    assert notices().messages_for(*ended(caller=caller)) == []


def test_other_events_and_unknown_queues_get_none() -> None:
    source = notices()
    _, event, facts, at = ended()
    assert source.messages_for("call_answered", event, facts, at) == []
    assert source.messages_for(*ended(queue_id="elsewhere")) == []
    no_queue = CallFacts("c1", CALLER, None, None, status="missed", reason="abandoned")
    assert source.messages_for("call_ended", event, no_queue, at) == []


def test_without_a_gateway_nothing_is_queued() -> None:
    assert notices(configured=False).messages_for(*ended()) == []


def test_the_language_per_queue_or_the_default() -> None:
    english = queue(notification_language="en")
    [sms] = notices(english).messages_for(*ended())
    assert sms.content["text"] == "Поддержка: sorry we missed your call. Please call us again."
    [sms] = notices(queue(), language="en", callbacks=True).messages_for(*ended())
    assert (
        sms.content["text"]
        == "Поддержка: sorry we missed your call. We will call you back shortly."
    )
    [sms] = notices(queue(notification_language="ru"), language="en").messages_for(*ended())
    assert sms.content["text"].startswith("Поддержка: извините")


def test_the_company_is_named_before_the_queue() -> None:
    [sms] = notices(company="ООО Ромашка").messages_for(*ended())
    assert sms.content["text"].startswith("ООО Ромашка, Поддержка: извините")


def test_update_follows_changes() -> None:
    source = notices()
    source.update(enabled=False)
    assert source.messages_for(*ended()) == []
    source.update(enabled=True, queues=[queue(sms_missed_call=False)])
    assert source.messages_for(*ended()) == []
    source.update(queues=[queue(), QueueConfig(id="q2", name="Sales", asterisk_name="sales")])
    assert len(source.messages_for(*ended(queue_id="q2"))) == 1
    source.update(queues=[])  # the queue was deleted
    assert source.messages_for(*ended()) == []


def test_no_window_means_no_throttle() -> None:
    [sms] = notices(window_seconds=0).messages_for(*ended())
    assert sms.throttle_seconds is None


def test_rules_from_the_daemon_settings() -> None:
    settings = Settings.model_validate(
        {"timezone": "Asia/Yekaterinburg",
         "sms": {"url": "http://127.0.0.1:9/send", "country_code": "49", "national_prefix": "0",
                 "national_number_length": 0, "language": "en", "window_seconds": 60}}
    )  # fmt: skip
    rules = SmsRules.of(settings)
    assert rules.configured and rules.window_seconds == 60 and rules.language == "en"
    assert (rules.plan.country_code, rules.plan.national_prefix) == ("49", "0")
    assert str(rules.tz) == "Asia/Yekaterinburg"
    assert not SmsRules.of(Settings()).configured


# --- callbacks ---------------------------------------------------------------------------------
def callback(scheduled_at: datetime | None = None, number: str = CALLER) -> CallbackNotice:
    return CallbackNotice("cb1", "q1", number, scheduled_at)


def test_a_callback_as_soon_as_possible_is_confirmed_without_a_reminder() -> None:
    [sms] = notices().callback_booked(callback(), AT)
    assert sms.content["text"] == "Поддержка: мы перезвоним вам, как только освободится оператор."
    assert (sms.topic, sms.idempotency_key) == (
        "callback_scheduled",
        "sms:callback_scheduled:cb1:soon",
    )
    assert sms.throttle_seconds == 3600 and sms.not_before is None


def test_a_timed_callback_is_confirmed_with_its_local_time_and_reminded() -> None:
    at = AT + timedelta(hours=3)  # 15:00 in Moscow
    confirmation, reminder = notices().callback_booked(callback(at), AT)
    assert confirmation.content["text"] == "Поддержка: мы перезвоним вам сегодня в 15:00."
    assert reminder.content["text"] == "Поддержка: напоминаем, мы перезвоним вам сегодня в 15:00."
    assert reminder.not_before == at - timedelta(minutes=15)
    assert reminder.throttle_seconds is None and reminder.topic == "callback_reminder"
    assert reminder.idempotency_key.startswith(SmsNotices.reminder_prefix("cb1"))


@pytest.mark.parametrize(
    ("offset", "ru", "en"),
    [
        (timedelta(hours=13), "завтра в 01:00", "tomorrow at 01:00"),
        (timedelta(days=3), "10.12 в 12:00", "on 10 Dec at 12:00"),
    ],
)
def test_days_are_said_as_people_say_them(offset: timedelta, ru: str, en: str) -> None:
    [ru_sms, _] = notices().callback_booked(callback(AT + offset), AT)
    assert ru_sms.content["text"] == f"Поддержка: мы перезвоним вам {ru}."
    [en_sms, _] = notices(language="en").callback_booked(callback(AT + offset), AT)
    assert en_sms.content["text"] == f"Поддержка: we will call you back {en}."


def test_a_callback_sooner_than_the_reminder_lead_is_only_confirmed() -> None:
    [sms] = notices().callback_booked(callback(AT + timedelta(minutes=10)), AT)
    assert sms.topic == "callback_scheduled"
    assert sms.content["text"] == "Поддержка: мы перезвоним вам сегодня в 12:10."


def test_without_a_confirmation_a_near_callback_is_reminded_at_once() -> None:
    config = queue(sms_callback_scheduled=False)
    [sms] = notices(config).callback_booked(callback(AT + timedelta(minutes=10)), AT)
    assert (sms.topic, sms.not_before) == ("callback_reminder", None)
    assert sms.content["text"] == "Поддержка: напоминаем, мы перезвоним вам сегодня в 12:10."


@pytest.mark.parametrize(
    ("scheduled", "reminder", "topics"),
    [
        (True, True, ["callback_scheduled", "callback_reminder"]),
        (True, False, ["callback_scheduled"]),
        (False, True, ["callback_reminder"]),
        (False, False, []),
    ],
)
def test_callback_switches(scheduled: bool, reminder: bool, topics: list[str]) -> None:
    config = queue(sms_callback_scheduled=scheduled, sms_callback_reminder=reminder)
    found = notices(config).callback_booked(callback(AT + timedelta(hours=2)), AT)
    assert [m.topic for m in found] == topics


def test_no_reminders_when_the_lead_is_zero() -> None:
    found = notices(reminder_minutes=0).callback_booked(callback(AT + timedelta(hours=2)), AT)
    assert [m.topic for m in found] == ["callback_scheduled"]


def test_a_moved_callback_is_not_throttled_and_keyed_by_its_time() -> None:
    moved = AT + timedelta(hours=5)
    confirmation, reminder = notices().callback_rescheduled(callback(moved), AT)
    assert confirmation.throttle_seconds is None
    assert confirmation.idempotency_key.endswith("2026-12-07T14:00:00.000000Z")
    assert confirmation.content["text"] == "Поддержка: мы перезвоним вам сегодня в 17:00."
    assert reminder.not_before == moved - timedelta(minutes=15)


def test_callbacks_follow_the_global_switch_and_the_number_rules() -> None:
    assert notices(enabled=False).callback_booked(callback(), AT) == []
    assert notices().callback_booked(callback(number="1001"), AT) == []
    assert notices().callback_booked(callback(number="anonymous"), AT) == []
