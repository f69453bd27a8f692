"""A subscriber waiting for the next event stops when cancelled, even when the event arrives
in the same turn of the loop (the event fan-out's shutdown relies on it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from callcenterd.events.bus import EventBus


async def test_a_cancel_that_arrives_with_the_event_is_not_lost() -> None:
    bus = EventBus(lambda: datetime(2026, 1, 1, tzinfo=UTC))
    subscription = bus.subscribe()
    waiting = asyncio.create_task(subscription.next(10))
    await asyncio.sleep(0)  # the task waits on the queue
    bus.publish("call_started", {"call_id": "c1"})  # wakes the waiter...
    waiting.cancel()  # ...in the same turn as the cancel
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # The event is not lost either: the next wait gets it.
    assert (await subscription.next(1)).type == "call_started"


async def test_no_event_within_the_wait_is_a_timeout() -> None:
    subscription = EventBus(lambda: datetime(2026, 1, 1, tzinfo=UTC)).subscribe()
    with pytest.raises(TimeoutError):
        await subscription.next(0.01)
