"""The store's call counts for /metrics, refreshed at most every few seconds.

Counted in the store rather than kept from bus events: hand-made records and corrections
(POST/PUT /api/calls) publish no events, and a count read from the records cannot drift.
The count walks an index (about 0.1 s per million calls, measured; in SQLite's thread, so the
event loop keeps running); the cache keeps several scrapers, or a short scrape interval,
from repeating it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

import structlog

from callcenterd.errors import DatabaseUnavailable

log = structlog.get_logger(__name__)

CALL_COUNTS_TTL = 5.0  # seconds


class CachedCallCounts:
    def __init__(
        self,
        fetch: Callable[[], Awaitable[Mapping[str, int]]],
        ttl: float = CALL_COUNTS_TTL,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._now = now
        self._counts: Mapping[str, int] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()  # concurrent scrapes share one query

    def current(self) -> Mapping[str, int]:
        return self._counts

    async def refresh(self) -> None:
        async with self._lock:
            if self._fetched_at is not None and self._now() - self._fetched_at < self._ttl:
                return
            try:
                self._counts = await self._fetch()
            except DatabaseUnavailable as err:
                # The other metrics still matter most when the database is in trouble.
                log.warning("metrics_call_counts_unavailable", error=err.detail)
                return
            self._fetched_at = self._now()
