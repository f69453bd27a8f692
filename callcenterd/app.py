"""create_app(settings): the one place where the daemon's objects are built and wired.

Every resource lives in a cleanup_ctx generator, so it is released in reverse order
even when a later start-up step fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from callcenterd import keys
from callcenterd.api import admin, asterisk, auth, calls, dashboard, operators, queues
from callcenterd.api.docs import add_docs_routes
from callcenterd.api.endpoints import ENDPOINTS, mount
from callcenterd.api.health import add_health_routes
from callcenterd.api.metrics import add_metrics_routes, metrics_context
from callcenterd.api.middlewares import errors_as_json, request_context
from callcenterd.api.ratelimit import RATE_LIMITS, RateLimits
from callcenterd.api.ws import add_ws_routes
from callcenterd.contract.schemas import AsteriskConfig, SystemSettings
from callcenterd.events.bus import EventBus
from callcenterd.events.filters import AudienceTracker
from callcenterd.events.queue_stats import queue_members, queue_of_call, queue_stats_source
from callcenterd.events.stream import CLOSE_GOING_AWAY, EventStream, stream_settings
from callcenterd.metrics.registry import Metrics
from callcenterd.routing import RoutingEngine
from callcenterd.security import (
    Clock,
    PasswordHasher,
    SecretBox,
    TokenService,
    load_or_create_key,
    new_secret_key,
    new_signing_key,
    utcnow,
)
from callcenterd.services.analytics import AnalyticsService
from callcenterd.services.asterisk import AsteriskService
from callcenterd.services.auth import AuthService
from callcenterd.services.calls import CallService
from callcenterd.services.dispatcher import Dispatcher
from callcenterd.services.fallback import AmiFallback
from callcenterd.services.operator_groups import OperatorGroups
from callcenterd.services.operators import OperatorService
from callcenterd.services.queues import QueueService
from callcenterd.services.system import SystemService
from callcenterd.services.system_settings import SystemSettingsService, seed_from
from callcenterd.services.users import GroupService, UserService
from callcenterd.settings import Settings
from callcenterd.store.analytics import AnalyticsStore
from callcenterd.store.call_queries import CallQueries
from callcenterd.store.calls import CallWriter, OperatorStatusWriter
from callcenterd.store.db import Database
from callcenterd.store.operators import OperatorDirectory, all_operator_profiles
from callcenterd.store.queues import QueueRepository, all_queue_configs
from callcenterd.store.system import RevokedTokenRepository, SettingsRepository
from callcenterd.store.users import GroupRepository, OperatorRepository, UserRepository
from callcenterd.systemd import notify, watchdog_interval
from callcenterd.tasks import running
from callcenterd.telephony.ami import AmiEndpoint, AmiLink
from callcenterd.telephony.ari_link import AriLink

log = structlog.get_logger(__name__)

DATABASE = web.AppKey("database", Database)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
API_AREAS = (
    auth.routes,
    admin.routes,
    queues.routes,
    operators.routes,
    calls.routes,
    asterisk.routes,
    dashboard.routes,
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


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    app = web.Application(middlewares=[request_context, errors_as_json])
    app[keys.SETTINGS] = settings
    app[ENDPOINTS] = mount(app, API_AREAS)
    app[RATE_LIMITS] = RateLimits(
        settings.rate_limits, trusted_proxies=settings.http.trusted_proxies
    )
    add_health_routes(app)
    add_docs_routes(app)
    add_ws_routes(app)
    # This app's own registry: never prometheus_client's global one.
    metrics = Metrics(CollectorRegistry())
    add_metrics_routes(app, settings.metrics)

    async def database(app: web.Application) -> AsyncIterator[None]:
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
        db, session = app[DATABASE], app[HTTP_CLIENT]
        signing_key, secret_key = _keys(settings)
        hasher = PasswordHasher(settings.auth.bcrypt_rounds)
        users = UserRepository(db)
        system_settings = SystemSettingsService(
            db, SettingsRepository(db), SecretBox(secret_key), clock, session, settings.ari.app
        )
        bus = EventBus(clock)
        links: list[AriLink] = []
        dispatcher = Dispatcher(
            RoutingEngine(),
            CallWriter(db),
            OperatorStatusWriter(db),
            bus,
            clock,
            lambda: links[0].client if links and links[0].connected else None,
            observe_routing=metrics.observe_routing,
        )
        ari = AriLink(session, clock, dispatcher.on_ari_event, dispatcher.on_ari_connected)
        links.append(ari)

        async def extension_of(user_id: str) -> str | None:
            operator = await directory.for_user(user_id)
            return operator.extension if operator else None

        queue_store, directory, call_queries = (
            QueueRepository(db),
            OperatorDirectory(db),
            CallQueries(db),
        )

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
        fallback = AmiFallback(
            CallWriter(db), bus, clock, operator_of_extension, queue_of_asterisk_name
        )
        ami = AmiLink(clock, fallback.on_ami_event)
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
        operator_service = OperatorService(db, directory, call_queries, dispatcher, clock, settings)
        built = keys.Services(
            settings=settings,
            clock=clock,
            system=SystemService(db, ari, ami, clock, settings),
            db=db,
            auth=AuthService(
                users,
                RevokedTokenRepository(db),
                TokenService(
                    signing_key, timedelta(minutes=settings.auth.token_ttl_minutes), clock
                ),
                hasher,
                clock,
            ),
            users=UserService(db, users, OperatorRepository(db), hasher, clock),
            groups=GroupService(db, GroupRepository(db), clock),
            system_settings=system_settings,
            ari=ari,
            ami=ami,
            bus=bus,
            dispatcher=dispatcher,
            queues=QueueService(db, queue_store, dispatcher, clock),
            operators=operator_service,
            calls=CallService(db, call_queries, directory, queue_store, clock, settings, ari),
            asterisk=AsteriskService(ari, dispatcher, extension_of, clock, ami=ami),
            analytics=AnalyticsService(
                AnalyticsStore(db),
                queue_store,
                directory,
                operator_service,
                dispatcher.engine,
                clock,
                settings,
            ),
            events_stream=events_stream,
        )
        await system_settings.seed(seed_from(settings))
        await built.auth.start()
        await built.analytics.prepare()
        admin_password = (
            settings.admin_password.get_secret_value() if settings.admin_password else None
        )
        generated = await built.users.ensure_initial_admin(admin_password)
        if generated:
            # Shown once, on purpose: there is no fixed default password to leak.
            log.warning(
                "initial_admin_created",
                # Deliberately logged in clear, this once: the admin has no other way to it.
                initial_credentials=f"admin / {generated}",
                hint="log in and change it, or set CALLCENTERD_ADMIN_PASSWORD before first start",
            )

        async def reconnect(config: AsteriskConfig) -> None:
            # Leave the old Asterisk clean first: our subscription would keep the app listed.
            await dispatcher.release_ari()
            await ari.configure(system_settings.endpoint(config) if config.enabled else None)

        async def settings_saved(new: SystemSettings, old: SystemSettings) -> None:
            # Saved settings act at once: the engine's timings, recording, the ARI link.
            await dispatcher.apply_settings(new)
            if new.asterisk_config != old.asterisk_config:
                await reconnect(new.asterisk_config)

        system_settings.on_change(settings_saved)
        built.users.on_change(built.operators.sync_user)

        async def user_changed(user_id: str) -> None:
            # Event filters follow group moves; the user's open sockets recheck their token.
            await operator_groups.reload()
            events_stream.revalidate_user(user_id)

        built.users.on_change(user_changed)
        built.auth.on_logout(events_stream.revalidate_user)
        await operator_groups.reload()
        events_stream.start()
        current = await system_settings.current()
        await dispatcher.apply_settings(current)
        # The engine starts from the stored queues and operators, before any call arrives.
        dispatcher.load(await all_queue_configs(db), await all_operator_profiles(db))
        await reconnect(current.asterisk_config)
        await ami.configure(ami_endpoint(settings))
        app[keys.SERVICES] = built
        yield
        await events_stream.stop()
        await dispatcher.release_ari()
        await ari.stop()
        await ami.stop()
        await fallback.drain()
        await dispatcher.stop()

    async def watchdog(app: web.Application) -> AsyncIterator[None]:
        interval = watchdog_interval()
        if interval is None:
            yield
            return
        async with running(_watchdog_loop(app[keys.SERVICES], interval), "systemd-watchdog"):
            yield

    def ws_clients() -> int:
        return len(app[keys.SERVICES].events_stream.clients())

    app.cleanup_ctx.extend(
        [database, http_client, services, metrics_context(metrics, ws_clients), watchdog]
    )
    app.on_shutdown.append(_close_event_sockets)
    return app


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
