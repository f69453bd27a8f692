"""The outbox's gauges, read from the store at scrape time (cached for a few seconds).

Messages by state and kind, and the age of the oldest message waiting to be sent (queued and
due, or already tried): the figure to alert on when a gateway or receiver is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric

from callcenterd.errors import DatabaseUnavailable
from callcenterd.store.outbox import STATES, OutboxStats

log = structlog.get_logger(__name__)

OUTBOX_STATS_TTL = 5.0  # seconds
KINDS = ("sms", "email", "webhook")


class CachedOutboxStats:
    def __init__(
        self,
        fetch: Callable[[], Awaitable[OutboxStats]],
        ttl: float = OUTBOX_STATS_TTL,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._now = now
        self.current = OutboxStats({}, None)
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if self._fetched_at is not None and self._now() - self._fetched_at < self._ttl:
                return
            try:
                self.current = await self._fetch()
            except DatabaseUnavailable as err:
                log.warning("metrics_outbox_unavailable", error=err.detail)
                return
            self._fetched_at = self._now()


class OutboxCollector:
    def __init__(self, stats: CachedOutboxStats, clock: Callable[[], datetime]) -> None:
        self._stats = stats
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        stats = self._stats.current
        family = GaugeMetricFamily(
            "callcenterd_outbox_messages",
            "Outbox messages by state and kind (the store's count, at most a few seconds old)",
            labels=["state", "kind"],
        )
        for state in STATES:
            for kind in KINDS:
                family.add_metric([state, kind], stats.counts.get((state, kind), 0))
        yield family
        oldest = stats.oldest_waiting
        age = 0.0 if oldest is None else max(0.0, (self._clock() - oldest).total_seconds())
        yield GaugeMetricFamily(
            "callcenterd_outbox_oldest_queued_age_seconds",
            "Age of the oldest outbox message waiting to be sent (0: none waits)",
            value=age,
        )
