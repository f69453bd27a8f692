"""Typed app keys for what the handlers read: the settings and the services built by create_app.

Placed between api/ and services/ (tests/unit/test_layers.py): `Services` names the objects
create_app builds (the services, and the store and telephony links they share), so this
module sits above services/; handlers read it, so it sits below api/. The keys holding api/
types live in api/ itself (ENDPOINTS in api/endpoints.py, RATE_LIMITS in api/ratelimit.py),
so nothing here names an api/ type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from callcenterd.security import Clock
from callcenterd.settings import Settings

if TYPE_CHECKING:
    from callcenterd.events.bus import EventBus
    from callcenterd.events.stream import EventStream
    from callcenterd.services.analytics import AnalyticsService
    from callcenterd.services.asterisk import AsteriskService
    from callcenterd.services.auth import AuthService
    from callcenterd.services.call_records import CallRecorder
    from callcenterd.services.callbacks import CallbackService
    from callcenterd.services.calls import CallService
    from callcenterd.services.dispatcher import Dispatcher
    from callcenterd.services.email_notifications import EmailNotifications
    from callcenterd.services.operator_groups import OperatorGroups
    from callcenterd.services.operators import OperatorService
    from callcenterd.services.outbox import OutboxService
    from callcenterd.services.privacy import PrivacyService
    from callcenterd.services.queues import QueueService
    from callcenterd.services.retention import RetentionService
    from callcenterd.services.sms import SmsService
    from callcenterd.services.supervision import SupervisionService
    from callcenterd.services.system import SystemService
    from callcenterd.services.system_settings import SystemSettingsService
    from callcenterd.services.transfers import CallTransfers
    from callcenterd.services.users import GroupService, UserService
    from callcenterd.services.vip_callers import VipCallers
    from callcenterd.services.webhooks import WebhookService
    from callcenterd.store.db import Database
    from callcenterd.telephony.ami import AmiLink
    from callcenterd.telephony.ari_link import AriLink


@dataclass(slots=True)
class Services:
    """Everything a handler may call, built once in create_app."""

    settings: Settings
    clock: Clock
    system: SystemService
    db: Database
    auth: AuthService
    users: UserService
    groups: GroupService
    system_settings: SystemSettingsService
    ari: AriLink
    ami: AmiLink
    bus: EventBus
    dispatcher: Dispatcher
    queues: QueueService
    operators: OperatorService
    calls: CallService
    callbacks: CallbackService
    asterisk: AsteriskService
    analytics: AnalyticsService
    events_stream: EventStream
    operator_groups: OperatorGroups
    transfers: CallTransfers  # hold and transfers (issue 11)
    supervision: SupervisionService
    vip_callers: VipCallers
    records: CallRecorder  # call facts: stored, their messages enqueued, then published
    outbox: OutboxService  # the durable outbox (issue 15): the worker and the admin API
    webhooks: WebhookService
    email: EmailNotifications  # email notifications and the SMTP test (issue 15)
    sms: SmsService  # SMS notices (the call-event MessageSource: sms.notices) and the test
    retention: RetentionService  # the purge of old records (issue 15)
    privacy: PrivacyService  # erasure of a phone number


SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
