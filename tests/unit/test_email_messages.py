"""The email message sources, pure: missed-call alerts, digests, outbox-failure alerts, and
the templates they fill."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from callcenterd.domain.messages import CallFacts, MessageKind, QueuedMessage
from callcenterd.notify.email_templates import QueueDay, daily_report
from callcenterd.notify.missed_calls import (
    ALERT_TOPIC,
    DIGEST_TOPIC,
    MissedCallAlerts,
    StoredMissedCall,
    SupervisorAudience,
    digest_key,
    digest_messages,
    digest_until_of_key,
)
from callcenterd.notify.outbox_alerts import (
    FAILURE_TOPIC,
    THROTTLE_SECONDS,
    AdminAudience,
    OutboxFailureAlerts,
)
from callcenterd.services.email_notifications import window_end

MOSCOW = ZoneInfo("Europe/Moscow")
AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)  # 12:30 in Moscow
AUDIENCE = SupervisorAudience(
    mode="immediate",
    language="ru",
    tz=MOSCOW,
    supervisors={"q-sales": ("anna@example.com", "boris@example.com"), "q-help": ("vera@ex.ru",)},
    queue_names={"q-sales": "Продажи", "q-help": "Поддержка"},
)


def ended(status: str = "missed", reason: str = "abandoned") -> dict[str, object]:
    return {"call_id": "c1", "end_time": "…", "duration": 0, "status": status, "reason": reason}


def facts(queue_id: str | None = "q-sales", **extra: object) -> CallFacts:
    return CallFacts("c1", "+79161234567", "100", queue_id, "missed", "abandoned", dict(extra))


def source(audience: SupervisorAudience = AUDIENCE) -> MissedCallAlerts:
    alerts = MissedCallAlerts()
    alerts.update(audience)
    return alerts


# --- immediate alerts --------------------------------------------------------------------------
def test_a_missed_call_alerts_each_supervisor_of_its_queue() -> None:
    messages = source().messages_for("call_ended", ended(), facts(wait_seconds=42.4), AT)
    assert [m.recipient for m in messages] == ["anna@example.com", "boris@example.com"]
    first = messages[0]
    assert first.kind is MessageKind.EMAIL and first.topic == ALERT_TOPIC
    assert first.idempotency_key == "email:missed-call:c1:anna@example.com"
    assert first.content["subject"] == "Пропущенный звонок от +79161234567 (Продажи)"
    text = first.content["text"]
    assert "Время: 2026-12-07 12:30" in text  # Moscow time
    assert "Ожидание: 42 с" in text
    assert "Причина: абонент не дождался ответа" in text
    assert "<td" in first.content["html"] and "+79161234567" in first.content["html"]


def test_alerts_in_english() -> None:
    english = SupervisorAudience(**{**_fields(AUDIENCE), "language": "en"})
    [first, _] = source(english).messages_for("call_ended", ended(reason="timeout"), facts(), AT)
    assert first.content["subject"] == "Missed call from +79161234567 (Продажи)"
    assert "Reason: the queue's maximum wait ran out" in first.content["text"]
    assert "Waited: —" in first.content["text"]  # no wait known


def _fields(audience: SupervisorAudience) -> dict[str, object]:
    return {name: getattr(audience, name) for name in SupervisorAudience.__slots__}


def test_nothing_but_missed_call_ends() -> None:
    alerts = source()
    assert alerts.messages_for("call_ended", ended(status="completed"), facts(), AT) == []
    assert alerts.messages_for("call_started", {"call_id": "c1"}, facts(), AT) == []
    assert alerts.messages_for("call_ended", ended(), facts(queue_id=None), AT) == []
    assert alerts.messages_for("call_ended", ended(), facts(queue_id="q-unknown"), AT) == []


def test_no_alerts_unless_in_immediate_mode() -> None:
    for mode in ("digest", "off"):
        quiet = SupervisorAudience(**{**_fields(AUDIENCE), "mode": mode})
        assert source(quiet).messages_for("call_ended", ended(), facts(), AT) == []
    assert MissedCallAlerts().messages_for("call_ended", ended(), facts(), AT) == []  # not fed


def test_html_values_are_escaped() -> None:
    tricky = SupervisorAudience(**{**_fields(AUDIENCE), "queue_names": {"q-sales": "<b>&Q"}})
    [first, _] = source(tricky).messages_for("call_ended", ended(), facts(), AT)
    assert "&lt;b&gt;&amp;Q" in first.content["html"] and "<b>&Q" not in first.content["html"]


# --- digest ------------------------------------------------------------------------------------
def stored(call_id: str, queue_id: str | None, minutes: int) -> StoredMissedCall:
    return StoredMissedCall(
        call_id, f"+7900000{call_id}", queue_id, AT + timedelta(minutes=minutes), 12.0, "timeout"
    )


def test_a_digest_lists_each_supervisors_calls_in_one_email() -> None:
    digest = SupervisorAudience(**{**_fields(AUDIENCE), "mode": "digest"})
    since, until = AT, AT + timedelta(minutes=30)
    calls = [
        stored("03", "q-sales", 20),
        stored("01", "q-sales", 5),
        stored("02", "q-help", 10),
        stored("04", None, 12),
    ]
    messages = digest_messages(digest, calls, since, until)
    assert [m.recipient for m in messages] == [
        "anna@example.com",
        "boris@example.com",
        "vera@ex.ru",
    ]
    anna = messages[0]
    assert anna.topic == DIGEST_TOPIC
    assert anna.idempotency_key == digest_key(until, "anna@example.com")
    assert anna.content["subject"] == "Пропущенные звонки: 2 с 2026-12-07 12:30 по 2026-12-07 13:00"
    text = anna.content["text"]
    assert text.index("+790000001") < text.index("+790000003")  # oldest first
    assert "+790000002" not in text
    assert text.count("истекло время ожидания в очереди") == 2


def test_no_digest_outside_digest_mode_or_without_calls() -> None:
    assert digest_messages(AUDIENCE, [stored("01", "q-sales", 1)], AT, AT) == []
    digest = SupervisorAudience(**{**_fields(AUDIENCE), "mode": "digest"})
    assert digest_messages(digest, [], AT, AT + timedelta(minutes=30)) == []


def test_a_digest_key_names_its_window() -> None:
    until = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
    assert digest_until_of_key(digest_key(until, "Anna@Example.com")) == until
    assert digest_until_of_key("email:missed-call:c1:x@example.com") is None
    assert digest_key(until, "Anna@Example.com") == digest_key(until, "anna@example.com")


def test_digest_windows_are_multiples_of_the_interval() -> None:
    half_hour = timedelta(minutes=30)
    assert window_end(datetime(2026, 12, 7, 10, 29, 59, tzinfo=UTC), half_hour) == datetime(
        2026, 12, 7, 10, 0, tzinfo=UTC
    )
    assert window_end(datetime(2026, 12, 7, 10, 30, tzinfo=UTC), half_hour) == datetime(
        2026, 12, 7, 10, 30, tzinfo=UTC
    )


# --- daily report template ---------------------------------------------------------------------
def test_the_daily_report_shows_every_queue_and_the_total() -> None:
    sales = QueueDay("Продажи", 10, 7, 3, 2, 71.4, 12, 95, 20.0, 61)
    help_ = QueueDay("Поддержка", 4, 4, 0, 0, 100.0, 8, 30, 0.0, 9)
    total = QueueDay("", 14, 11, 3, 2, 78.6, 11, 71, 14.3, 61)
    content = daily_report("ru", date(2026, 12, 6), [sales, help_], total, 20, "Europe/Moscow")
    assert content.subject == "Отчёт за 2026-12-06: 14 звонков, пропущено 3"
    lines = content.text.splitlines()
    assert lines[0] == "Показатели очередей за 2026-12-06 (часовой пояс Europe/Moscow)."
    assert any(line.split()[:4] == ["Продажи", "10", "7", "3"] for line in lines)
    assert any(line.split()[:3] == ["Всего", "14", "11"] for line in lines)
    assert "Уровень сервиса (20 с)" in content.text and "71.4 %" in content.text
    assert content.html is not None and "<table" in content.html


def test_a_day_without_calls_says_so() -> None:
    content = daily_report(
        "en", date(2026, 12, 6), [], QueueDay("", 0, 0, 0, 0, 0, 0, 0, 0, 0), 20, "UTC"
    )
    assert content.subject == "Report for 2026-12-06: 0 calls, 0 missed"
    assert "There were no calls that day." in content.text


# --- outbox failures ---------------------------------------------------------------------------
def failed_message(
    kind: MessageKind = MessageKind.SMS, topic: str = "missed_call"
) -> QueuedMessage:
    return QueuedMessage(
        id=17,
        kind=kind,
        recipient="+79161234567",
        idempotency_key="sms:missed:c1",
        content={"text": "Мы пропустили ваш звонок"},
        topic=topic,
        attempts=4,
        created_at=AT,
    )


ADMINS = AdminAudience(True, "ru", MOSCOW, ("root@example.com", "ops@example.com"))


def failures(audience: AdminAudience = ADMINS) -> OutboxFailureAlerts:
    alerts = OutboxFailureAlerts()
    alerts.update(audience)
    return alerts


def test_a_final_failure_is_emailed_to_each_admin() -> None:
    messages = failures().messages_for_failure(failed_message(), "HTTP 500 from the gateway")
    assert [m.recipient for m in messages] == ["root@example.com", "ops@example.com"]
    first = messages[0]
    assert first.kind is MessageKind.EMAIL and first.topic == FAILURE_TOPIC
    assert first.throttle_seconds == THROTTLE_SECONDS  # no flood during an outage
    assert first.idempotency_key == "email:outbox-failed:17:4:root@example.com"
    assert first.content["subject"] == "Не доставлено сообщение #17 (sms для +79161234567)"
    text = first.content["text"]
    assert "после 5 попыток" in text and "Ошибка: HTTP 500 from the gateway" in text
    assert "Создано: 2026-12-07 12:30" in text


def test_a_failed_failure_alert_is_never_reported() -> None:
    alert = failed_message(MessageKind.EMAIL, FAILURE_TOPIC)
    assert failures().messages_for_failure(alert, "550 refused") == []


def test_other_failed_emails_are_reported() -> None:
    digest = failed_message(MessageKind.EMAIL, DIGEST_TOPIC)
    assert len(failures().messages_for_failure(digest, "550 refused")) == 2


def test_nothing_while_email_is_off() -> None:
    off = AdminAudience(False, "ru", MOSCOW, ("root@example.com",))
    assert failures(off).messages_for_failure(failed_message(), "boom") == []
    assert OutboxFailureAlerts().messages_for_failure(failed_message(), "boom") == []


def test_a_long_error_is_cut() -> None:
    [first, _] = failures().messages_for_failure(failed_message(), "x" * 5000)
    assert len(first.content["text"]) < 2000 and "x" * 500 + "…" in first.content["text"]
