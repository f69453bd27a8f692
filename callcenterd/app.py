"""create_app(settings): the one place where the daemon's objects are built and wired.

Every resource lives in a cleanup_ctx generator, so it is released in reverse order
even when a later start-up step fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from callcenterd import keys
from callcenterd.api import (
    admin,
    asterisk,
    auth,
    callbacks,
    calls,
    dashboard,
    email_settings,
    operators,
    outbox,
    privacy,
    queues,
    sms_settings,
    supervision,
    transfers,
    vip_callers,
    webhooks,
)
from callcenterd.api.docs import add_docs_routes
from callcenterd.api.endpoints import ENDPOINTS, SHARED_ANSWERS, SharedAnswers, mount
from callcenterd.api.headers import WEB_STATIC, Cors, security_headers
from callcenterd.api.health import add_health_routes
from callcenterd.api.metrics import add_metrics_routes, metrics_context
from callcenterd.api.middlewares import errors_as_json, request_context
from callcenterd.api.ratelimit import RATE_LIMITS, RateLimits, TokenBuckets
from callcenterd.api.ws import add_ws_routes
from callcenterd.contract.schemas import AsteriskConfig, EmailConfig, SystemSettings
from callcenterd.events.bus import EventBus
from callcenterd.events.filters import AudienceTracker
from callcenterd.events.queue_stats import queue_members, queue_of_call, queue_stats_source
from callcenterd.events.stream import CLOSE_GOING_AWAY, EventStream, stream_settings
from callcenterd.metrics.registry import Metrics
from callcenterd.notify.email import SmtpTransport
from callcenterd.notify.sms import SmsGateway
from callcenterd.notify.sms_notices import SmsNotices, SmsRules
from callcenterd.notify.webhooks import TargetPolicy
from callcenterd.routing import EngineSettings, RoutingEngine
from callcenterd.security import (
    Clock,
    PasswordHasher,
    SecretBox,
    TokenService,
    load_or_create_key,
    new_secret_key,
    new_signing_key,
    private_dir,
    utcnow,
)
from callcenterd.services.analytics import AnalyticsService
from callcenterd.services.asterisk import AsteriskService
from callcenterd.services.auth import AuthService, Lockout
from callcenterd.services.call_records import CallRecorder
from callcenterd.services.callback_calls import CallbackDial
from callcenterd.services.callbacks import CallbackFacts, CallbackService
from callcenterd.services.calls import CallService
from callcenterd.services.dispatcher import Dispatcher
from callcenterd.services.email_notifications import EmailNotifications
from callcenterd.services.fallback import FOLLOWED_EVENTS, AmiFallback
from callcenterd.services.key_fingerprints import verify_keys
from callcenterd.services.operator_groups import OperatorGroups
from callcenterd.services.operators import OperatorService
from callcenterd.services.outbox import OutboxService, OutboxWorker
from callcenterd.services.privacy import PrivacyService
from callcenterd.services.queues import QueueService
from callcenterd.services.retention import AriRecordings, RetentionService
from callcenterd.services.sms import SmsService
from callcenterd.services.supervision import SupervisionService
from callcenterd.services.system import SystemService
from callcenterd.services.system_settings import SystemSettingsService, seed_from
from callcenterd.services.transfers import CallTransfers
from callcenterd.services.users import GroupService, UserService
from callcenterd.services.vip_callers import VipCallers
from callcenterd.services.webhooks import WebhookService
from callcenterd.settings import Settings
from callcenterd.store.analytics import AnalyticsStore
from callcenterd.store.call_queries import CallQueries
from callcenterd.store.call_stats import Thresholds
from callcenterd.store.callbacks import CallbackStore
from callcenterd.store.calls import CallWriter, OperatorStatusWriter
from callcenterd.store.db import Database
from callcenterd.store.notifications import NotificationDirectory
from callcenterd.store.operators import OperatorDirectory, all_operator_profiles
from callcenterd.store.outbox import OutboxRepository
from callcenterd.store.privacy import PrivacyStore
from callcenterd.store.queues import QueueRepository, all_queue_configs
from callcenterd.store.retention import RetentionStore
from callcenterd.store.supervision import SupervisionRepository
from callcenterd.store.system import KeyFingerprints, RevokedTokenRepository, SettingsRepository
from callcenterd.store.users import (
    AuthEpoch,
    GroupRepository,
    LoginFailureRepository,
    OperatorRepository,
    UserRepository,
)
from callcenterd.store.vip_callers import VipCallerRepository
from callcenterd.store.webhooks import WebhookRepository
from callcenterd.systemd import notify, watchdog_interval
from callcenterd.tasks import running
from callcenterd.telephony.ami import AmiEndpoint, AmiLink
from callcenterd.telephony.ari_client import AriClient
from callcenterd.telephony.ari_control import AriCallControl
from callcenterd.telephony.ari_link import AriLink
from callcenterd.telephony.call_control import CallControl
from callcenterd.web.routes import add_web_routes

log = structlog.get_logger(__name__)

DATABASE = web.AppKey("database", Database)
# Last-operator routing remembers who served a number for this long (across restarts).
LAST_OPERATOR_DAYS = 30
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
API_AREAS = (
    auth.routes,
    admin.routes,
    email_settings.routes,
    queues.routes,
    operators.routes,
    calls.routes,
    transfers.routes,
    supervision.routes,
    callbacks.routes,
    asterisk.routes,
    dashboard.routes,
    vip_callers.routes,
    outbox.routes,
    webhooks.routes,
    sms_settings.routes,
    privacy.routes,
)


def _keys(settings: Settings) -> tuple[bytes, bytes]:
    """The JWT signing key and the key encrypting stored secrets (0600 files by default)."""
    auth_settings = settings.auth
    signing = (
        auth_settings.jwt_secret.get_secret_value().encode()
        if auth_settings.jwt_secret
        else load_or_create_key(settings.state_dir / "jwt.key", new_signing_key)
    )
    secret = (
        auth_settings.secret_key.get_secret_value().encode()
        if auth_settings.secret_key
        else load_or_create_key(settings.state_dir / "secret.key", new_secret_key)
    )
    return signing, secret


def ami_endpoint(settings: Settings) -> AmiEndpoint | None:
    """The AMI link's target; None (link disabled) while no secret is configured."""
    ami = settings.ami
    secret = ami.secret.get_secret_value()
    if not secret:
        return None
    return AmiEndpoint(ami.host, ami.port, ami.username, secret)


def create_app(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    monotonic: Callable[[], float] = time.monotonic,
) -> web.Application:
    """The daemon's app. `clock` dates records and tokens; `monotonic` refills rate limits."""
    app = web.Application(
        middlewares=[Cors(settings.http.cors_origins).middleware, request_context, errors_as_json],
        client_max_size=settings.http.max_body_bytes,
    )
    app.on_response_prepare.append(security_headers)
    app[keys.SETTINGS] = settings
    app[ENDPOINTS] = mount(app, API_AREAS)
    app[RATE_LIMITS] = RateLimits(
        settings.rate_limits, TokenBuckets(monotonic), trusted_proxies=settings.http.trusted_proxies
    )
    app[SHARED_ANSWERS] = SharedAnswers(settings.http.shared_answer_seconds, monotonic)
    add_health_routes(app)
    add_docs_routes(app)
    add_ws_routes(app)
    add_web_routes(app, WEB_STATIC)
    # This app's own registry: never prometheus_client's global one.
    metrics = Metrics(CollectorRegistry())
    add_metrics_routes(app, settings.metrics)

    async def database(app: web.Application) -> AsyncIterator[None]:
        private_dir(settings.state_dir)  # 0700 whatever the umask, also with keys in settings
        db = Database(settings.database_path)
        await db.open()
        applied = await db.migrate()
        if applied:
            log.info("migrations_applied", versions=[m.version for m in applied])
        app[DATABASE] = db
        yield
        await db.close()

    async def http_client(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[HTTP_CLIENT] = session
            yield

    async def services(app: web.Application) -> AsyncIterator[None]:
        # Built only: nothing runs yet. Each running part has its own lifetime below, so a
        # failing start-up step stops exactly what had started.
        await verify_keys(KeyFingerprints(app[DATABASE]), *_keys(settings), clock())
        built = build_services(settings, clock, app[DATABASE], app[HTTP_CLIENT], metrics)
        app[keys.SERVICES] = built
        await prepare(built)
        yield
        built.auth.close()

    async def outbox_worker(app: web.Application) -> AsyncIterator[None]:
        # Before the dispatcher: the webhooks are known before the first call fact.
        built = app[keys.SERVICES]
        await built.webhooks.load()
        async with running(built.outbox.worker.run(), "outbox-worker"):
            yield
        await built.webhooks.transport.close()

    async def dispatcher(app: web.Application) -> AsyncIterator[None]:
        built = app[keys.SERVICES]
        await built.dispatcher.apply_settings(await built.system_settings.current())
        await built.vip_callers.load()
        since = clock() - timedelta(days=LAST_OPERATOR_DAYS)
        built.dispatcher.last_operators.load(await CallWriter(built.db).answered_by(since))
        # The engine starts from the stored queues and operators, before any call arrives.
        built.dispatcher.load(
            await all_queue_configs(built.db), await all_operator_profiles(built.db)
        )
        # Callbacks still to serve take their places again (before any new caller).
        await built.callbacks.adopt_open()
        yield
        # Its own step, after the links have stopped: queued call records are always written.
        await built.dispatcher.stop()
        await built.supervision.stop()

    async def event_stream(app: web.Application) -> AsyncIterator[None]:
        stream = app[keys.SERVICES].events_stream
        stream.start()
        yield
        await stream.stop()

    async def ari_link(app: web.Application) -> AsyncIterator[None]:
        built = app[keys.SERVICES]
        current = await built.system_settings.current()
        await reconnect_ari(built, current.asterisk_config)
        yield
        await built.dispatcher.release(built.ari.connected_control)
        await built.ari.stop()

    async def ami_link(app: web.Application) -> AsyncIterator[None]:
        ami = app[keys.SERVICES].ami
        await ami.configure(ami_endpoint(settings))
        yield
        await ami.stop()

    async def email_jobs(app: web.Application) -> AsyncIterator[None]:
        # Digests and the daily report; what the sources know is refreshed at each tick.
        async with running(app[keys.SERVICES].email.run(), "email-notifications"):
            yield

    async def watchdog(app: web.Application) -> AsyncIterator[None]:
        interval = watchdog_interval()
        if interval is None:
            yield
            return
        async with running(_watchdog_loop(app[keys.SERVICES], interval), "systemd-watchdog"):
            yield

    async def retention(app: web.Application) -> AsyncIterator[None]:
        async with running(app[keys.SERVICES].retention.nightly(), "retention-purge"):
            yield

    def ws_clients() -> int:
        return len(app[keys.SERVICES].events_stream.clients())

    app.cleanup_ctx.extend(
        [
            database,
            http_client,
            services,
            outbox_worker,
            dispatcher,
            event_stream,
            ari_link,
            ami_link,
            metrics_context(metrics, ws_clients),
            email_jobs,
            watchdog,
            retention,
        ]
    )
    app.on_shutdown.append(_close_event_sockets)
    return app


def build_services(
    settings: Settings,
    clock: Clock,
    db: Database,
    session: aiohttp.ClientSession,
    metrics: Metrics,
) -> keys.Services:
    """Every object the daemon runs on, wired together; nothing started, nothing read."""
    signing_key, secret_key = _keys(settings)
    hasher = PasswordHasher(settings.auth.bcrypt_rounds)
    box = SecretBox(secret_key)
    system_settings = SystemSettingsService(
        db, SettingsRepository(db), box, clock, session, settings.ari.app
    )
    bus = EventBus(clock)
    outbox_rows = OutboxRepository(db)
    outbox_worker = OutboxWorker(
        db, outbox_rows, settings.outbox, clock, on_outcome=metrics.count_outbox
    )
    outbox_service = OutboxService(db, outbox_rows, outbox_worker, clock)
    webhook_service = WebhookService(
        db,
        WebhookRepository(db),
        outbox_rows,
        outbox_service,
        box,
        TargetPolicy(settings.webhooks.allow_private_targets, settings.webhooks.allow_networks),
        clock,
    )
    # Call facts enqueue their messages (webhooks, SMS, email) in their own transactions;
    # the sources other than the webhooks' are added in _wire_outbox.
    records = CallRecorder(
        CallWriter(db), bus, sources=[webhook_service.source], on_enqueued=outbox_worker.wake
    )
    callback_store = CallbackStore(db)
    sms_rules = SmsRules.of(settings)
    sms_notices = SmsNotices(sms_rules)
    callback_facts = CallbackFacts(callback_store, records, bus, sms_notices)
    links: list[AriLink] = []

    def control_of(node: str) -> CallControl | None:
        return next((link.connected_control for link in links if link.node == node), None)

    vips = VipCallers(db, VipCallerRepository(db), clock)
    dispatcher = Dispatcher(
        RoutingEngine(
            EngineSettings(
                callback_retry_delay=settings.callbacks.retry_delay,
                callback_max_attempts=settings.callbacks.max_attempts,
                callback_ring_timeout=settings.callbacks.ring_seconds,
            )
        ),
        records,
        OperatorStatusWriter(db),
        bus,
        clock,
        control_of,
        observe_routing=metrics.observe_routing,
        priority_of_caller=vips.priority_of,
        callback_facts=callback_facts.record,
        callback_dial=CallbackDial(settings.callbacks.dial_endpoint, settings.callbacks.caller_id),
    )
    ari = AriLink(session, clock, dispatcher.on_ari_event, dispatcher.on_ari_connected)
    links.append(ari)
    queue_store, directory, call_queries = (
        QueueRepository(db),
        OperatorDirectory(db),
        CallQueries(db),
    )

    async def extension_of(user_id: str) -> str | None:
        operator = await directory.for_user(user_id)
        return operator.extension if operator else None

    async def operator_of_extension(extension: str) -> str | None:
        known = dispatcher.operator_of_extension(extension)
        if known is not None:
            return known
        found = [op.id for op in await directory.find() if op.extension == extension]
        return found[0] if found else None

    async def queue_of_asterisk_name(name: str) -> str | None:
        found = [
            q.id
            for q in await queue_store.live_queues()
            if q.config.asterisk_name.lower() == name.lower()
        ]
        return found[0] if found else None

    # Calls Asterisk's own Queue() serves while ARI is down, followed through AMI.
    fallback = AmiFallback(records, clock, operator_of_extension, queue_of_asterisk_name)
    ami = AmiLink(clock, fallback.on_ami_event, events=FOLLOWED_EVENTS)
    operator_groups = OperatorGroups(directory)

    async def operator_of_user(user_id: str) -> str | None:
        operator = await directory.for_user(user_id)
        return operator.id if operator else None

    events_stream = EventStream(
        bus,
        AudienceTracker(
            operator_groups.group_of,
            queue_members(dispatcher.engine),
            queue_of_call(dispatcher.engine),
        ),
        stream_settings(settings.events),
        operator_of_user,
        queue_stats_source(dispatcher.engine, clock),
    )
    operator_service = OperatorService(
        db, directory, call_queries, dispatcher, clock, settings, system_settings.pause_reasons
    )
    call_service = CallService(db, call_queries, directory, queue_store, clock, settings, ari)

    async def phone_of(user_id: str) -> str | None:
        user = await UserRepository(db).get(user_id)
        return user.extension if user else None

    supervision_service = SupervisionService(
        SupervisionRepository(db),
        call_queries,
        dispatcher.talking,
        control_of,
        phone_of,
        bus,
        clock,
    )
    dispatcher.watch_supervision(supervision_service)
    analytics_store = AnalyticsStore(db)
    analytics = AnalyticsService(
        analytics_store,
        queue_store,
        directory,
        operator_service,
        dispatcher.engine,
        clock,
        settings,
    )

    def email_config() -> EmailConfig:
        return email.config()

    email = EmailNotifications(
        db,
        NotificationDirectory(db),
        analytics_store,
        lambda: analytics.thresholds,
        system_settings,
        SmtpTransport(email_config),
        clock,
        settings.tz,
    )
    # Recordings live in Asterisk (bridges recorded by call id), deleted through ARI.
    recordings = AriRecordings(lambda: ari.connected_control)
    retention_store = RetentionStore(db)

    async def forget_number(key: str) -> None:
        await vips.load()
        dispatcher.last_operators.forget(key)

    built = keys.Services(
        settings=settings,
        clock=clock,
        system=SystemService(db, ari, ami, clock, settings),
        db=db,
        auth=AuthService(
            UserRepository(db),
            RevokedTokenRepository(db),
            TokenService(signing_key, timedelta(minutes=settings.auth.token_ttl_minutes), clock),
            hasher,
            clock,
            LoginFailureRepository(db),
            Lockout(
                settings.auth.lockout_attempts, timedelta(minutes=settings.auth.lockout_minutes)
            ),
            AuthEpoch(db.path),
        ),
        users=UserService(
            db,
            UserRepository(db),
            OperatorRepository(db),
            hasher,
            clock,
            LoginFailureRepository(db),
        ),
        groups=GroupService(db, GroupRepository(db), clock),
        system_settings=system_settings,
        ari=ari,
        ami=ami,
        bus=bus,
        dispatcher=dispatcher,
        queues=QueueService(db, queue_store, dispatcher, clock),
        operators=operator_service,
        calls=call_service,
        transfers=CallTransfers(call_service, dispatcher, directory, settings.transfers),
        callbacks=CallbackService(
            db,
            callback_store,
            callback_facts,
            call_queries,
            directory,
            records,
            dispatcher.submit,
            clock,
            settings.tz,
        ),
        asterisk=AsteriskService(ari, dispatcher, extension_of, clock, ami=ami),
        analytics=analytics,
        events_stream=events_stream,
        operator_groups=operator_groups,
        supervision=supervision_service,
        vip_callers=vips,
        records=records,
        outbox=outbox_service,
        webhooks=webhook_service,
        email=email,
        sms=SmsService(
            sms_rules,
            sms_notices,
            SmsGateway(session, settings.sms) if settings.sms.configured else None,
            system_settings.current,
            queue_store.configs,
        ),
        retention=RetentionService(
            retention_store, recordings, settings.retention, clock, settings.tz
        ),
        privacy=PrivacyService(
            db, PrivacyStore(db), retention_store, recordings, clock, secret_key, forget_number
        ),
    )
    _wire_outbox(built, outbox_worker)
    _wire_changes(built)
    return built


def _wire_outbox(built: keys.Services, worker: OutboxWorker) -> None:
    """What the outbox sends and what call facts enqueue: a transport per kind, the call
    events' message sources (each skipped while it has nothing to say), and the alert to
    admins when a message fails finally."""
    worker.register(built.webhooks.transport)
    worker.register(built.email.transport)
    if built.sms.transport is not None:
        worker.register(built.sms.transport)
    built.records.add_source(built.email.alerts)  # missed-call alerts to supervisors
    built.records.add_source(built.sms.notices)  # the missed-call SMS to the caller
    worker.add_failure_source(built.email.failures.messages_for_failure)


def _wire_changes(built: keys.Services) -> None:
    """Saved changes act at once on what runs."""

    async def settings_saved(new: SystemSettings, old: SystemSettings) -> None:
        # The engine's timings, recording, the ARI link, the SMS switches.
        await built.dispatcher.apply_settings(new)
        await built.sms.apply_settings(new)
        if new.asterisk_config != old.asterisk_config:
            await reconnect_ari(built, new.asterisk_config)

    async def user_changed(user_id: str) -> None:
        # Event filters follow group moves; the user's open sockets recheck their token.
        await built.operator_groups.reload()
        built.events_stream.revalidate_user(user_id)

    built.system_settings.on_change(settings_saved)
    built.system_settings.on_change(built.email.settings_saved)
    built.queues.on_change(built.sms.reload_queues)
    built.queues.on_change(built.email.queues_changed)  # who supervises which queue
    built.users.on_change(built.operators.sync_user)
    built.users.on_change(user_changed)
    built.users.on_change(built.email.user_changed)
    built.auth.on_logout(built.events_stream.revalidate_user)


async def reconnect_ari(built: keys.Services, config: AsteriskConfig) -> None:
    # Leave the old Asterisk clean first: our subscription would keep the app listed.
    await built.dispatcher.release(built.ari.connected_control)
    endpoint = built.system_settings.endpoint(config) if config.enabled else None
    await built.ari.configure(endpoint)


async def prepare(built: keys.Services) -> None:
    """What the services need stored before the first request: settings, keys, the admin."""
    settings = built.settings
    await built.system_settings.seed(seed_from(settings))
    await built.auth.start()
    await built.analytics.prepare()
    await built.operator_groups.reload()
    await built.email.refresh()
    await built.sms.load()
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
    generated = await built.users.ensure_initial_admin(admin_password)
    if generated:
        # Shown once, on purpose: there is no fixed default password to leak.
        log.warning(
            "initial_admin_created",
            # Deliberately logged in clear, this once: the admin has no other way to it.
            initial_credentials=f"admin / {generated}",
            hint="log in and change it, or set CALLCENTERD_ADMIN_PASSWORD before first start",
        )


async def purge_service(
    settings: Settings, db: Database, session: aiohttp.ClientSession
) -> RetentionService:
    """The retention purge for `callcenterd purge`, outside the daemon: recordings are
    deleted through an ARI connection of its own, to the stored Asterisk settings (none
    while Asterisk is disabled there: calls with recordings then stay)."""
    _, secret_key = _keys(settings)
    # The rollups built first (as the daemon does at start): the calls purged stay counted.
    analytics = settings.analytics
    await AnalyticsStore(db).prepare_rollups(
        Thresholds(analytics.service_level_threshold, analytics.short_abandon_threshold)
    )
    system_settings = SystemSettingsService(
        db, SettingsRepository(db), SecretBox(secret_key), utcnow, session, settings.ari.app
    )
    config = (await system_settings.current()).asterisk_config
    control = (
        AriCallControl(AriClient(session, system_settings.endpoint(config)))
        if config.enabled
        else None
    )
    return RetentionService(
        RetentionStore(db), AriRecordings(lambda: control), settings.retention, utcnow, settings.tz
    )


async def _close_event_sockets(app: web.Application) -> None:
    """Before the server waits for open handlers: WebSocket clients are told to go (1001)."""
    services = app.get(keys.SERVICES)
    if services is not None:
        services.events_stream.close_all(CLOSE_GOING_AWAY, "server shutting down")


async def _watchdog_loop(services: keys.Services, interval: float) -> None:
    while True:
        # Only a daemon whose database still takes writes is "healthy" to systemd.
        if await services.system.database_ok():
            notify("WATCHDOG=1")
        await asyncio.sleep(interval)
