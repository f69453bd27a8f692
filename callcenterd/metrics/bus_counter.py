"""Counts what is published on the event bus, by type (callcenterd_events_total)."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from callcenterd.events.bus import EventBus

log = structlog.get_logger(__name__)

# Far more than a burst of calls publishes between two turns of this task.
PENDING_EVENTS = 10_000


async def count_bus_events(bus: EventBus, count: Callable[[str], None]) -> None:
    """Forever: `count(type)` for every event published on `bus`."""
    while True:
        subscription = bus.subscribe(PENDING_EVENTS)
        try:
            async for event in subscription:
                count(event.type)
        finally:
            subscription.close()
        # Only a loop starved for a long time gets here: the bus dropped us as too slow.
        log.warning("metrics_bus_counter_resubscribed", reason=subscription.closed_reason)
