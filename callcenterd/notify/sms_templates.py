"""Every SMS text the daemon sends, in Russian and English, in one place. Pure.

Short (one SMS segment where the names allow), and each starts with who is writing: the
company (settings `[sms] company`) and the queue's name. Callback times are the caller's
local ones, in the configured time zone, said as today/tomorrow when they are.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal

Language = Literal["ru", "en"]
LANGUAGES: tuple[Language, ...] = ("ru", "en")

_TEXTS: dict[str, dict[Language, str]] = {
    "missed_call": {
        "ru": "{who}: извините, мы пропустили ваш звонок. Пожалуйста, позвоните нам ещё раз.",
        "en": "{who}: sorry we missed your call. Please call us again.",
    },
    "missed_call_callback": {
        "ru": "{who}: извините, мы пропустили ваш звонок. Мы перезвоним вам в ближайшее время.",
        "en": "{who}: sorry we missed your call. We will call you back shortly.",
    },
    "callback_soon": {
        "ru": "{who}: мы перезвоним вам, как только освободится оператор.",
        "en": "{who}: we will call you back as soon as an operator is free.",
    },
    "callback_at": {
        "ru": "{who}: мы перезвоним вам {when}.",
        "en": "{who}: we will call you back {when}.",
    },
    "callback_reminder": {
        "ru": "{who}: напоминаем, мы перезвоним вам {when}.",
        "en": "{who}: a reminder, we will call you back {when}.",
    },
    "test": {
        "ru": "{who}: тестовое сообщение. SMS-уведомления настроены.",
        "en": "{who}: test message. SMS notifications are set up.",
    },
}
_DAYS: dict[Language, tuple[str, str, str]] = {
    # today, tomorrow, another day (day.month)
    "ru": ("сегодня в {time}", "завтра в {time}", "{date} в {time}"),
    "en": ("today at {time}", "tomorrow at {time}", "on {date} at {time}"),
}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def who(company: str, queue_name: str) -> str:
    """The sender as the text names it: "Company, Queue", or either alone."""
    parts = [part.strip() for part in (company, queue_name) if part and part.strip()]
    if len(parts) == 2 and parts[0].casefold() == parts[1].casefold():
        parts = parts[:1]
    return ", ".join(parts)


def when(moment: datetime, now: datetime, tz: tzinfo, language: Language) -> str:
    """`moment` as the caller reads it, relative to `now`: "today at 15:30"."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    time = local.strftime("%H:%M")
    same, tomorrow, other = _DAYS[language]
    days = (local.date() - today).days
    if days == 0:
        return same.format(time=time)
    if days == 1:
        return tomorrow.format(time=time)
    if language == "ru":
        date = local.strftime("%d.%m")
    else:
        date = f"{local.day} {_MONTHS_EN[local.month - 1]}"
    return other.format(date=date, time=time)


def text(name: str, language: Language, sender: str, **values: str) -> str:
    """The text `name` in `language`, from `sender` (see `who`), with `values` filled in."""
    template = _TEXTS[name][language]
    filled = template.format(who=sender, **values)
    if sender:
        return filled
    # No company and no queue name: the text starts without a sender.
    rest = filled.removeprefix(": ")
    return rest[:1].upper() + rest[1:]


def names() -> tuple[str, ...]:
    return tuple(_TEXTS)
