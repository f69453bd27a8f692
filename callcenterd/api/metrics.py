"""GET /metrics: the Prometheus exposition.

Not under /api and not role-checked: Prometheus scrapes without a JWT. It is guarded by the
`metrics` settings instead: the scraper's address must be in `metrics.allow` (the TCP peer;
X-Forwarded-For is never believed here), and when `metrics.token` is set it must also send
`Authorization: Bearer <token>`. With `metrics.enabled = false` the route does not exist.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from aiohttp import web

from callcenterd import keys
from callcenterd.errors import NotAuthenticated, PermissionDenied
from callcenterd.metrics.bus_counter import count_bus_events
from callcenterd.metrics.call_counts import CachedCallCounts
from callcenterd.metrics.live import (
    LiveCollector,
    LiveSources,
    operators_by_status,
    waiting_callers,
)
from callcenterd.metrics.outbox import CachedOutboxStats, OutboxCollector
from callcenterd.metrics.registry import Metrics
from callcenterd.services.loop_lag import watch_loop_lag
from callcenterd.settings import MetricsSettings
from callcenterd.tasks import running


@dataclass(frozen=True, slots=True)
class Scrape:
    metrics: Metrics
    call_counts: CachedCallCounts
    outbox: CachedOutboxStats


SCRAPE = web.AppKey("metrics_scrape", Scrape)


def _peer(request: web.Request) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(request.remote or "")
    except ValueError:
        return None  # e.g. a Unix socket
    # A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_access(request: web.Request, settings: MetricsSettings) -> None:
    peer = _peer(request)
    if peer is None or not any(peer in network for network in settings.allow):
        raise PermissionDenied("This address may not read /metrics (see metrics.allow)")
    if settings.token is not None:
        expected = f"Bearer {settings.token.get_secret_value()}".encode()
        sent = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(sent, expected):
            raise NotAuthenticated("/metrics needs 'Authorization: Bearer <metrics.token>'")


def add_metrics_routes(app: web.Application, settings: MetricsSettings) -> None:
    if not settings.enabled:
        return

    async def metrics(request: web.Request) -> web.Response:
        check_access(request, settings)
        scrape = request.app[SCRAPE]
        await scrape.call_counts.refresh()
        await scrape.outbox.refresh()
        body, media_type = scrape.metrics.render(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": media_type})

    app.router.add_get("/metrics", metrics)


def metrics_context(
    metrics: Metrics, ws_clients: Callable[[], int]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup_ctx step (after `services`) that feeds `metrics` from the running daemon."""

    async def feed(app: web.Application) -> AsyncIterator[None]:
        services = app[keys.SERVICES]
        call_counts = CachedCallCounts(services.calls.counts_by_status)
        engine = services.dispatcher.engine
        collector = LiveCollector(
            LiveSources(
                waiting=waiting_callers(engine),
                operators_by_status=operators_by_status(engine),
                links=services.system.link_states,
                ws_clients=ws_clients,
                calls_by_status=call_counts.current,
            )
        )
        metrics.watch(collector)
        outbox = CachedOutboxStats(services.outbox.stats)
        outbox_collector = OutboxCollector(outbox, services.clock)
        metrics.watch(outbox_collector)
        app[SCRAPE] = Scrape(metrics, call_counts, outbox)
        async with (
            running(watch_loop_lag(metrics.observe_loop_lag), "loop-lag"),
            running(count_bus_events(services.bus, metrics.count_event), "metrics-bus-counter"),
        ):
            yield
        metrics.unwatch(outbox_collector)
        metrics.unwatch(collector)

    return feed
