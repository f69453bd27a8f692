"""Email notifications (`SystemSettings.email_notifications`): who is told what, and when.

- Missed-call alerts to the queue's supervisors (notify/missed_calls.py says who they are).
  Immediate mode: `alerts` (a MessageSource) answers the recorder's `call_ended`. Digest
  mode: every `digest_interval_minutes` (windows on multiples of it since the epoch, so
  :00/:30 for 30) one email per supervisor lists the calls that ended missed in the window.
  Its idempotency key names the window, so a restart never sends one twice; the first
  digest after a start covers the time since the last digest in the outbox (at most
  `DIGEST_CATCH_UP` back, and that far when there is none), so a window cut short by a
  stop is still reported. While running, a tick in another mode marks its windows done, so
  switching to digests does not repeat calls already alerted; a restart right after that
  switch, before any digest, does (once, at most `DIGEST_CATCH_UP` of them).
- A daily report to managers (`daily_report_recipients`, or every active manager): the
  previous local day's figures per queue, from the dashboards' own definitions (the
  rollups' counts through `AnalyticsStore.by_queue`, figures by analytics/kpis.py). Sent at
  `daily_report_time` local; a daemon that was down at that time sends it when it starts,
  any time that same day (the key is per date and recipient: once). A day whose report time
  was never reached while running (the daemon down from before the time to after
  midnight) is not reported afterwards.
- Outbox failures to admins: `failures.messages_for_failure` (notify/outbox_alerts.py),
  called by the outbox worker.

What the sources know (settings, supervisors, managers, admins) is refreshed at every tick
of the loop (TICK_SECONDS), after each settings save and after each user change, so a new
queue member's supervisor is told within a tick.

`send_test` sends one email at once, not through the outbox, and says what went wrong the
way the Asterisk connection test does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo

import structlog

from callcenterd.analytics import kpis
from callcenterd.analytics.kpis import CallCounts
from callcenterd.analytics.periods import local_midnight
from callcenterd.contract.schemas import (
    EmailConfig,
    EmailTestRequest,
    EmailTestResult,
    SystemSettings,
)
from callcenterd.domain.messages import MessageKind, OutgoingMessage
from callcenterd.domain.users import Role
from callcenterd.notify.email import SmtpFailed, SmtpProblem, SmtpTransport
from callcenterd.notify.email_templates import QueueDay, connection_test_email, daily_report
from callcenterd.notify.missed_calls import (
    DIGEST_TOPIC,
    MissedCallAlerts,
    StoredMissedCall,
    SupervisorAudience,
    digest_messages,
    digest_until_of_key,
)
from callcenterd.notify.outbox_alerts import AdminAudience, OutboxFailureAlerts
from callcenterd.security import Clock
from callcenterd.services.system_settings import SystemSettingsService
from callcenterd.store.analytics import AnalyticsStore, StatsScope
from callcenterd.store.call_stats import Thresholds
from callcenterd.store.db import Database
from callcenterd.store.notifications import NotificationDirectory
from callcenterd.store.outbox import enqueue_in

log = structlog.get_logger(__name__)

TICK_SECONDS = 30.0
DIGEST_CATCH_UP = timedelta(hours=24)
REPORT_TOPIC = "daily_report"
NO_QUEUE = {"ru": "без очереди", "en": "no queue"}


def report_key(day: date, recipient: str) -> str:
    return f"email:daily-report:{day.isoformat()}:{recipient.casefold()}"


def window_end(now: datetime, interval: timedelta) -> datetime:
    """The latest multiple of `interval` since the epoch at or before `now`."""
    seconds = interval.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // seconds * seconds, UTC)


def queue_day(name: str, counts: CallCounts) -> QueueDay:
    return QueueDay(
        queue_name=name,
        calls=counts.entered,
        answered=counts.answered,
        missed=counts.missed,
        abandoned=counts.abandoned,
        service_level=kpis.service_level(counts),
        average_wait=kpis.average_wait(counts),
        average_talk=kpis.average_talk(counts),
        abandon_rate=kpis.abandon_rate(counts),
        longest_wait=round(counts.longest_wait_seconds),
    )


class EmailNotifications:
    def __init__(
        self,
        db: Database,
        directory: NotificationDirectory,
        analytics: AnalyticsStore,
        thresholds: Callable[[], Thresholds],
        system_settings: SystemSettingsService,
        transport: SmtpTransport,
        clock: Clock,
        tz: tzinfo,
    ) -> None:
        self._db = db
        self._directory = directory
        self._analytics = analytics
        self._thresholds = thresholds
        self._system_settings = system_settings
        self._transport = transport
        self._clock = clock
        self._tz = tz
        self.alerts = MissedCallAlerts()
        self.failures = OutboxFailureAlerts()
        self._settings = SystemSettings()
        self._digest_until: datetime | None = None  # the end of the last digest window done
        self._reported_on: date | None = None  # the local date whose report time was handled

    # --- what the sources know --------------------------------------------------------------
    @property
    def transport(self) -> SmtpTransport:
        """The outbox worker's transport for MessageKind.EMAIL (the settings of the moment)."""
        return self._transport

    def config(self) -> EmailConfig:
        """The SMTP settings of the last refresh (password in clear): for the transport."""
        return self._settings.email_config

    @property
    def active(self) -> bool:
        return self._settings.email_notifications and self._settings.email_config.configured

    async def refresh(self, settings: SystemSettings | None = None) -> None:
        self._settings = settings or await self._system_settings.current()
        config = self._settings.email_config
        mode = config.supervisor_alerts if self.active else "off"
        supervisors, names = await asyncio.gather(
            self._directory.supervisors_by_queue(), self._analytics.queue_names()
        )
        self.alerts.update(SupervisorAudience(mode, config.language, self._tz, supervisors, names))
        admins = tuple(config.admin_recipients) or await self._directory.active_emails(Role.ADMIN)
        self.failures.update(AdminAudience(self.active, config.language, self._tz, admins))

    async def settings_saved(self, new: SystemSettings, old: SystemSettings) -> None:
        await self.refresh(new)

    async def user_changed(self, user_id: str) -> None:
        await self.refresh()

    async def queues_changed(self) -> None:
        # A queue's members decide its supervisors: a new queue is alerted about at once.
        await self.refresh()

    # --- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Tick for as long as the daemon runs (tasks.running); a failing tick is logged."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("email_tick_failed")
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self) -> None:
        await self.refresh()
        now = self._clock()
        await self.run_digest(now)
        await self.run_daily_report(now)

    async def _enqueue(self, messages: list[OutgoingMessage], now: datetime) -> int:
        if not messages:
            return 0
        async with self._db.transaction() as conn:
            return await enqueue_in(conn, messages, now)

    # --- digest -----------------------------------------------------------------------------
    async def run_digest(self, now: datetime) -> int:
        """Queue the digests of the windows closed since the last one; the number queued."""
        config = self._settings.email_config
        until = window_end(now, timedelta(minutes=config.digest_interval_minutes))
        if self.alerts.audience.mode != "digest":
            self._digest_until = until  # covered by immediate alerts, or not wanted
            return 0
        if self._digest_until is None:
            last_key = await self._directory.last_key_of_topic(DIGEST_TOPIC)
            self._digest_until = digest_until_of_key(last_key) if last_key else None
        since = max(self._digest_until or until - DIGEST_CATCH_UP, until - DIGEST_CATCH_UP)
        if since >= until:
            return 0
        rows = await self._directory.missed_calls(since, until)
        calls = [
            StoredMissedCall(
                r.call_id, r.caller_number, r.queue_id, r.ended_at, r.wait_seconds, r.reason
            )
            for r in rows
        ]
        queued = await self._enqueue(
            digest_messages(self.alerts.audience, calls, since, until), now
        )
        self._digest_until = until
        if queued:
            log.info("missed_calls_digest_queued", emails=queued, calls=len(calls))
        return queued

    # --- daily report -----------------------------------------------------------------------
    async def run_daily_report(self, now: datetime) -> int:
        """Once the report time has passed today (local): yesterday's report, once."""
        config = self._settings.email_config
        local = now.astimezone(self._tz)
        today = local.date()
        if not self.active or not config.daily_report or self._reported_on == today:
            return 0
        hour, minute = (int(part) for part in config.daily_report_time.split(":"))
        if local < datetime.combine(today, time(hour, minute), tzinfo=self._tz):
            return 0
        day = today - timedelta(days=1)
        queued = await self._enqueue(await self.daily_report_messages(day), now)
        self._reported_on = today
        log.info("daily_report_queued", day=day.isoformat(), emails=queued)
        return queued

    async def daily_report_messages(self, day: date) -> list[OutgoingMessage]:
        config = self._settings.email_config
        recipients = tuple(config.daily_report_recipients) or await self._directory.active_emails(
            Role.MANAGER
        )
        if not recipients:
            return []
        queues, total = await self.day_figures(day)
        content = daily_report(
            config.language,
            day,
            queues,
            total,
            round(self._thresholds().answered_within),
            str(self._tz),
        ).as_content()
        return [
            OutgoingMessage(MessageKind.EMAIL, to, report_key(day, to), content, topic=REPORT_TOPIC)
            for to in recipients
        ]

    async def day_figures(self, day: date) -> tuple[list[QueueDay], QueueDay]:
        """Each queue's figures for a local day (busiest first) and the day's total."""
        start, end = (
            local_midnight(day, self._tz),
            local_midnight(day + timedelta(days=1), self._tz),
        )
        thresholds = self._thresholds()
        per_queue, names = await asyncio.gather(
            self._analytics.by_queue(start, end, StatsScope(), thresholds),
            self._analytics.queue_names(),
        )
        no_queue = NO_QUEUE[self._settings.email_config.language]
        rows = [
            queue_day(names.get(queue_id, queue_id) if queue_id else no_queue, counts)
            for queue_id, counts in per_queue.items()
        ]
        rows.sort(key=lambda row: (-row.calls, row.queue_name))
        return rows, queue_day("", sum(per_queue.values(), CallCounts()))

    # --- the connection test ----------------------------------------------------------------
    async def send_test(self, body: EmailTestRequest) -> EmailTestResult:
        config = (await self._system_settings.current()).email_config
        details = {"host": config.host, "port": config.port, "security": config.security}
        try:
            receipt = await self._transport.deliver(
                config, body.to, connection_test_email(config.language), f"test:{uuid.uuid4()}"
            )
        except SmtpFailed as err:
            log.info("email_test_failed", problem=err.problem.value, host=config.host)
            return _failure(err, details)
        return EmailTestResult(
            success=True,
            message=f"Test email sent to {body.to}",
            data={
                "to": body.to,
                "answer": receipt.answer,
                "connection_details": {**details, "status": "Sent"},
            },
        )


_CAUSES: dict[SmtpProblem, tuple[str, list[str], list[str]]] = {
    SmtpProblem.NOT_CONFIGURED: (
        "Email not configured",
        ["No SMTP host or no from address in email_config"],
        ["Set email_config.host and email_config.from_address in PUT /api/admin/settings"],
    ),
    SmtpProblem.REFUSED: (
        "Connection refused",
        ["No SMTP server listens on this host and port", "A firewall rejects the connection"],
        ["Check the host and port (587 for STARTTLS, 465 for TLS, 25 plain)"],
    ),
    SmtpProblem.TIMEOUT: (
        "Connection timeout",
        ["The SMTP server is down or overloaded", "A firewall drops the connection"],
        ["Check that the server answers: nc -v HOST PORT", "Check the firewall"],
    ),
    SmtpProblem.TLS: (
        "TLS failed",
        [
            "The certificate is not trusted (self-signed, expired, another host's name)",
            "The security mode does not match the port (tls on a STARTTLS port, or back)",
        ],
        [
            "Use security 'starttls' on 587 and 'tls' on 465",
            "Install the relay's CA, or turn verify_certificate off for a private relay",
        ],
    ),
    SmtpProblem.AUTH: (
        "Authentication failed",
        ["Wrong username or password", "The server wants an application password"],
        ["Check email_config.username and password"],
    ),
    SmtpProblem.RECIPIENT_REFUSED: (
        "Recipient refused",
        ["The address does not exist", "The server does not relay for this sender"],
        ["Check the address; check that the account may send to other domains"],
    ),
    SmtpProblem.SENDER_REFUSED: (
        "Sender refused",
        ["The from address is not allowed for this account"],
        ["Use a from address the account owns"],
    ),
    SmtpProblem.NOT_SUPPORTED: (
        "Not supported by the server",
        ["STARTTLS or AUTH asked for but not offered by the server"],
        ["Choose the security mode the server offers; leave username empty for no login"],
    ),
}


def _failure(err: SmtpFailed, details: dict[str, object]) -> EmailTestResult:
    title, causes, troubleshooting = _CAUSES.get(
        err.problem, ("Sending failed", ["Unexpected answer from the SMTP server"], [])
    )
    return EmailTestResult(
        success=False,
        message=f"{title}: {err.detail}",
        data={
            "error": title,
            "code": err.problem.value,
            "smtp_code": err.status_code,
            "retryable": err.retryable,
            "details": {**details, "possible_causes": causes},
            "troubleshooting": troubleshooting,
        },
    )
