"""Every email the daemon writes, in one place: Russian by default, English available.

Pure: values in, `EmailContent` (subject, plain text, HTML) out. Times are shown in the
configured timezone; every value put in HTML is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo
from html import escape
from typing import Literal

from callcenterd.domain.messages import QueuedMessage
from callcenterd.notify.email import EmailContent

Language = Literal["ru", "en"]


@dataclass(frozen=True, slots=True)
class MissedCall:
    call_id: str
    caller_number: str
    queue_name: str | None
    ended_at: datetime
    wait_seconds: float | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class QueueDay:
    """One queue's figures for a day, as the dashboards define them (analytics/kpis.py)."""

    queue_name: str
    calls: int
    answered: int
    missed: int
    abandoned: int
    service_level: float
    average_wait: int
    average_talk: int
    abandon_rate: float
    longest_wait: int


_REASONS: dict[Language, dict[str, str]] = {
    "ru": {
        "abandoned": "абонент не дождался ответа",
        "timeout": "истекло время ожидания в очереди",
        "no_operator": "нет доступных операторов",
        "rejected": "звонок отклонён",
        "lost": "звонок потерян (перезапуск)",
    },
    "en": {
        "abandoned": "the caller gave up waiting",
        "timeout": "the queue's maximum wait ran out",
        "no_operator": "no operator available",
        "rejected": "rejected",
        "lost": "lost (restart)",
    },
}

_WORDS: dict[Language, dict[str, str]] = {
    "ru": {
        "alert_subject": "Пропущенный звонок от {caller} ({queue})",
        "alert_intro": "Пропущен звонок в очереди «{queue}».",
        "caller": "Номер",
        "queue": "Очередь",
        "time": "Время",
        "waited": "Ожидание",
        "reason": "Причина",
        "call_id": "ID звонка",
        "no_queue": "без очереди",
        "seconds": "с",
        "digest_subject": "Пропущенные звонки: {count} с {since} по {until}",
        "digest_intro": "Пропущенные звонки в ваших очередях с {since} по {until} ({count}):",
        "report_subject": "Отчёт за {day}: {calls} звонков, пропущено {missed}",
        "report_intro": "Показатели очередей за {day} (часовой пояс {tz}).",
        "report_empty": "За этот день звонков не было.",
        "calls": "Звонков",
        "answered": "Отвечено",
        "missed": "Пропущено",
        "abandoned": "Брошено",
        "service_level": "Уровень сервиса ({threshold} с)",
        "average_wait": "Среднее ожидание, с",
        "average_talk": "Средний разговор, с",
        "abandon_rate": "Доля брошенных, %",
        "longest_wait": "Макс. ожидание, с",
        "total": "Всего",
        "failure_subject": "Не доставлено сообщение #{id} ({kind} для {recipient})",
        "failure_intro": "Исходящее сообщение не доставлено после {attempts} попыток"
        " и помечено как failed.",
        "kind": "Тип",
        "recipient": "Получатель",
        "topic": "Тема",
        "created": "Создано",
        "error": "Ошибка",
        "failure_hint": "Повторить или отменить: GET /api/admin/outbox?state=failed.",
        "test_subject": "Проверка почты callcenterd",
        "test_text": "Это тестовое письмо: настройки SMTP callcenterd работают.",
        "footer": "Письмо отправлено callcenterd автоматически.",
    },
    "en": {
        "alert_subject": "Missed call from {caller} ({queue})",
        "alert_intro": "A call was missed in queue “{queue}”.",
        "caller": "Number",
        "queue": "Queue",
        "time": "Time",
        "waited": "Waited",
        "reason": "Reason",
        "call_id": "Call ID",
        "no_queue": "no queue",
        "seconds": "s",
        "digest_subject": "Missed calls: {count} from {since} to {until}",
        "digest_intro": "Missed calls in your queues from {since} to {until} ({count}):",
        "report_subject": "Report for {day}: {calls} calls, {missed} missed",
        "report_intro": "Queue figures for {day} (time zone {tz}).",
        "report_empty": "There were no calls that day.",
        "calls": "Calls",
        "answered": "Answered",
        "missed": "Missed",
        "abandoned": "Abandoned",
        "service_level": "Service level ({threshold} s)",
        "average_wait": "Average wait, s",
        "average_talk": "Average talk, s",
        "abandon_rate": "Abandon rate, %",
        "longest_wait": "Longest wait, s",
        "total": "Total",
        "failure_subject": "Message #{id} not delivered ({kind} to {recipient})",
        "failure_intro": "An outgoing message was not delivered after {attempts} tries"
        " and is marked failed.",
        "kind": "Kind",
        "recipient": "Recipient",
        "topic": "Topic",
        "created": "Created",
        "error": "Error",
        "failure_hint": "Retry or cancel it: GET /api/admin/outbox?state=failed.",
        "test_subject": "callcenterd email test",
        "test_text": "This is a test email: callcenterd's SMTP settings work.",
        "footer": "Sent automatically by callcenterd.",
    },
}

_STYLE = "border-collapse:collapse;font-family:sans-serif;font-size:14px"
_CELL = "border:1px solid #ccc;padding:4px 8px"


def reason_text(language: Language, reason: str | None) -> str:
    if reason is None:
        return "—"
    return _REASONS[language].get(reason, reason)


def _local(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _html(body: str, language: Language) -> str:
    footer = escape(_WORDS[language]["footer"])
    return (
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8"></head>'
        f'<body style="font-family:sans-serif">{body}'
        f'<p style="color:#888;font-size:12px">{footer}</p></body></html>'
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f'<th style="{_CELL};background:#eee">{escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{escape(str(v))}</td>' for v in row) + "</tr>"
        for row in rows
    )
    return f'<table style="{_STYLE}"><tr>{head}</tr>{body}</table>'


def _text_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(header), *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _waited(language: Language, seconds: float | None) -> str:
    return "—" if seconds is None else f"{round(seconds)} {_WORDS[language]['seconds']}"


# --- missed-call alert -------------------------------------------------------------------------
def missed_call_alert(language: Language, call: MissedCall, tz: tzinfo) -> EmailContent:
    words = _WORDS[language]
    queue = call.queue_name or words["no_queue"]
    fields = [
        (words["caller"], call.caller_number),
        (words["queue"], queue),
        (words["time"], _local(call.ended_at, tz)),
        (words["waited"], _waited(language, call.wait_seconds)),
        (words["reason"], reason_text(language, call.reason)),
        (words["call_id"], call.call_id),
    ]
    intro = words["alert_intro"].format(queue=queue)
    text = "\n".join([intro, "", *(f"{name}: {value}" for name, value in fields)])
    rows = "".join(
        f'<tr><th style="{_CELL};text-align:left">{escape(n)}</th>'
        f'<td style="{_CELL}">{escape(v)}</td></tr>'
        for n, v in fields
    )
    html = _html(f'<p>{escape(intro)}</p><table style="{_STYLE}">{rows}</table>', language)
    subject = words["alert_subject"].format(caller=call.caller_number, queue=queue)
    return EmailContent(subject, f"{text}\n\n-- \n{words['footer']}\n", html)


# --- digest ------------------------------------------------------------------------------------
def missed_calls_digest(
    language: Language, calls: Sequence[MissedCall], since: datetime, until: datetime, tz: tzinfo
) -> EmailContent:
    words = _WORDS[language]
    span = {"since": _local(since, tz), "until": _local(until, tz), "count": len(calls)}
    header = [words["time"], words["caller"], words["queue"], words["waited"], words["reason"]]
    rows = [
        (
            _local(call.ended_at, tz),
            call.caller_number,
            call.queue_name or words["no_queue"],
            _waited(language, call.wait_seconds),
            reason_text(language, call.reason),
        )
        for call in calls
    ]
    intro = words["digest_intro"].format(**span)
    text = f"{intro}\n\n{_text_table(header, rows)}\n\n-- \n{words['footer']}\n"
    html = _html(f"<p>{escape(intro)}</p>{_table(header, rows)}", language)
    return EmailContent(words["digest_subject"].format(**span), text, html)


# --- daily report ------------------------------------------------------------------------------
def daily_report(
    language: Language,
    day: date,
    queues: Sequence[QueueDay],
    total: QueueDay,
    threshold_seconds: int,
    tz_name: str,
) -> EmailContent:
    words = _WORDS[language]
    header = [
        words["queue"],
        words["calls"],
        words["answered"],
        words["missed"],
        words["abandoned"],
        words["service_level"].format(threshold=threshold_seconds),
        words["average_wait"],
        words["average_talk"],
        words["abandon_rate"],
        words["longest_wait"],
    ]

    def row(figures: QueueDay) -> tuple[object, ...]:
        return (
            figures.queue_name,
            figures.calls,
            figures.answered,
            figures.missed,
            figures.abandoned,
            f"{figures.service_level:.1f} %",
            figures.average_wait,
            figures.average_talk,
            f"{figures.abandon_rate:.1f}",
            figures.longest_wait,
        )

    rows = [row(q) for q in queues]
    rows.append(row(replace(total, queue_name=words["total"])))
    day_text = day.isoformat()
    intro = words["report_intro"].format(day=day_text, tz=tz_name)
    if not queues:
        text = f"{intro}\n\n{words['report_empty']}\n\n-- \n{words['footer']}\n"
        html = _html(f"<p>{escape(intro)}</p><p>{escape(words['report_empty'])}</p>", language)
    else:
        text = f"{intro}\n\n{_text_table(header, rows)}\n\n-- \n{words['footer']}\n"
        html = _html(f"<p>{escape(intro)}</p>{_table(header, rows)}", language)
    subject = words["report_subject"].format(day=day_text, calls=total.calls, missed=total.missed)
    return EmailContent(subject, text, html)


# --- outbox failure ----------------------------------------------------------------------------
def outbox_failure(
    language: Language, message: QueuedMessage, error: str, tz: tzinfo
) -> EmailContent:
    words = _WORDS[language]
    attempts = message.attempts + 1  # the one that just failed too
    fields = [
        (words["kind"], message.kind.value),
        (words["recipient"], message.recipient),
        (words["topic"], message.topic or "—"),
        (words["created"], _local(message.created_at, tz)),
        (words["error"], error),
        ("idempotency_key", message.idempotency_key),
    ]
    intro = words["failure_intro"].format(attempts=attempts)
    text = "\n".join([intro, "", *(f"{n}: {v}" for n, v in fields), "", words["failure_hint"]])
    rows = "".join(
        f'<tr><th style="{_CELL};text-align:left">{escape(n)}</th>'
        f'<td style="{_CELL}">{escape(v)}</td></tr>'
        for n, v in fields
    )
    html = _html(
        f'<p>{escape(intro)}</p><table style="{_STYLE}">{rows}</table>'
        f"<p>{escape(words['failure_hint'])}</p>",
        language,
    )
    subject = words["failure_subject"].format(
        id=message.id, kind=message.kind.value, recipient=message.recipient
    )
    return EmailContent(subject, f"{text}\n\n-- \n{words['footer']}\n", html)


# --- connection test ---------------------------------------------------------------------------
def connection_test_email(language: Language) -> EmailContent:
    words = _WORDS[language]
    html = _html(f"<p>{escape(words['test_text'])}</p>", language)
    return EmailContent(words["test_subject"], f"{words['test_text']}\n", html)
