"""The event bus: the only way live events leave the daemon (WebSocket clients, metrics, tests).

Publishing never waits: each subscriber has a bounded queue, and a subscriber that falls
behind is closed with a reason instead of slowing routing or anyone else.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callcenterd.domain.clock import to_iso
from callcenterd.events.payloads import Payload, payload_data


@dataclass(frozen=True, slots=True)
class BusEvent:
    id: int
    type: str
    timestamp: str
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "timestamp": self.timestamp, "data": self.data}


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[BusEvent]
    closed_reason: str | None = None
    _bus: EventBus | None = field(default=None, repr=False)

    def close(self, reason: str = "closed") -> None:
        if self._bus is not None:
            self._bus.unsubscribe(self, reason)

    async def __aiter__(self) -> AsyncIterator[BusEvent]:
        while self.closed_reason is None or not self.queue.empty():
            event = await self.queue.get()
            yield event

    async def next(self, within: float) -> BusEvent:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancel that arrives
        # as the event does (the fan-out then never stopped at shutdown), and it makes a
        # task per event.
        async with asyncio.timeout(within):
            return await self.queue.get()


class EventBus:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self._subscribers: set[Subscription] = set()

    def subscribe(self, max_pending: int = 1000) -> Subscription:
        subscription = Subscription(asyncio.Queue(max_pending), _bus=self)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription, reason: str) -> None:
        if subscription in self._subscribers:
            self._subscribers.discard(subscription)
            subscription.closed_reason = reason

    def emit(self, payload: Payload) -> BusEvent:
        """One of the daemon's own typed events."""
        return self.publish(payload.TYPE, payload_data(payload))

    def publish(self, type_: str, data: dict[str, Any]) -> BusEvent:
        """Any event: the typed ones through `emit`, figures such as queue_stats here."""
        event = BusEvent(next(self._ids), type_, to_iso(self._clock()), data)
        for subscription in list(self._subscribers):
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.unsubscribe(subscription, "too slow: send queue full")
        return event
