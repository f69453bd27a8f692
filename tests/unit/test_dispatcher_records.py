"""Call records survive a database that is briefly unavailable (full disk, lock), in order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from callcenterd.errors import DatabaseUnavailable
from callcenterd.events.bus import EventBus
from callcenterd.services.call_records import CallRecorder
from callcenterd.store.calls import CallEnd

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class FlakyWriter:
    """Fails the first `failures` writes of each kind, then takes them; remembers the order."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[str, int] = {}
        self.written: list[str] = []

    def __getattr__(self, kind: str) -> Any:
        async def write(*_: Any, **__: Any) -> None:
            self.attempts[kind] = self.attempts.get(kind, 0) + 1
            if self.attempts[kind] <= self.failures:
                raise DatabaseUnavailable("database or disk is full")
            self.written.append(kind)

        return write


def recorder(writer: FlakyWriter, bus: EventBus, retries: int) -> CallRecorder:
    return CallRecorder(writer, bus, retry_delays=(0.0,) * retries)  # type: ignore[arg-type]


async def test_a_record_write_is_retried_until_the_database_takes_it_and_then_published() -> None:
    bus = EventBus(lambda: NOW)
    events = bus.subscribe()
    writer = FlakyWriter(failures=2)
    records = recorder(writer, bus, retries=3)
    records.later("call-1", lambda: records.answered("call-1", NOW, "op-1", 4.2))
    end = CallEnd("completed", "caller_hangup", 30, operator_id="op-1")
    records.later("call-1", lambda: records.ended("call-1", NOW, end))
    await records.drain()
    assert writer.attempts == {"answered": 3, "ended": 3}
    assert writer.written == ["answered", "ended"]  # the later fact waited for the first
    published = [events.queue.get_nowait().type for _ in range(events.queue.qsize())]
    assert published == ["call_answered", "call_ended"]


async def test_a_record_write_gives_up_loudly_and_publishes_nothing() -> None:
    bus = EventBus(lambda: NOW)
    events = bus.subscribe()
    writer = FlakyWriter(failures=10)
    records = recorder(writer, bus, retries=2)
    with pytest.raises(DatabaseUnavailable):
        await records.answered("call-1", NOW, "op-1", 4.2)
    assert writer.attempts == {"answered": 3}
    assert writer.written == []
    assert events.queue.empty()
