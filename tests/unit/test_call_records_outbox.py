"""The call recorder's hook into the outbox: each published event's messages are enqueued in the
fact's own transaction, sources see the WebSocket event and what is known of the call, and
with no (or only empty) sources nothing extra is done."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenterd.domain import commands as cmd
from callcenterd.domain.messages import CallFacts, MessageKind, OutgoingMessage
from callcenterd.errors import Conflict
from callcenterd.events.bus import EventBus
from callcenterd.notify.webhooks import WebhookSource
from callcenterd.services.call_records import CallRecorder
from callcenterd.store.calls import CallEnd, CallWriter
from callcenterd.store.db import Database

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "calls.sqlite3")
    await database.open()
    await database.migrate()
    yield database
    await database.close()


class Spy:
    """A source that keeps what it was asked and answers one SMS per event."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, Any], CallFacts]] = []

    def messages_for(
        self, event_type: str, event: dict[str, Any], call: CallFacts, at: datetime
    ) -> Sequence[OutgoingMessage]:
        self.asked.append((event_type, event, call))
        key = f"{call.call_id}:{event_type}:{event['timestamp']}"
        return [OutgoingMessage(MessageKind.SMS, call.caller_number, key, {"text": event_type})]


async def start(recorder: CallRecorder, call_id: str = "c1") -> None:
    await recorder.started(
        call_id,
        T0,
        channel_id="ch-1",
        caller_number="+79001234567",
        called_number="100",
        routed_by="ari",
    )


async def outbox_keys(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT idempotency_key FROM outbox ORDER BY id")
    return [row[0] for row in rows]


async def test_each_event_is_asked_for_and_its_messages_enqueued(db: Database) -> None:
    spy, woken = Spy(), []
    bus = EventBus(lambda: T0)
    seen = bus.subscribe()
    recorder = CallRecorder(CallWriter(db), bus, sources=[spy], on_enqueued=lambda: woken.append(1))
    await start(recorder)
    await recorder.queued("c1", T0 + timedelta(seconds=1), None, 1)
    await recorder.transfer_fact(cmd.CallHeld("c1", "op-x"), T0 + timedelta(seconds=2))
    end = CallEnd("missed", "abandoned", 0)
    await recorder.ended("c1", T0 + timedelta(seconds=9), end)
    types = [t for t, _, _ in spy.asked]
    assert types == ["call_started", "call_queued", "call_held", "call_ended"]
    # The event is the WebSocket's (type, timestamp, data), without the bus's id.
    published = [seen.queue.get_nowait() for _ in range(4)]
    for (type_, event, _), bus_event in zip(spy.asked, published, strict=True):
        assert set(event) == {"type", "timestamp", "data"}
        assert (
            (event["type"], event["data"])
            == (bus_event.type, bus_event.data)
            == (
                type_,
                bus_event.data,
            )
        )
    # What the source knows of the call, after each fact.
    facts = [facts for _, _, facts in spy.asked]
    assert [(f.caller_number, f.called_number, f.status) for f in facts] == [
        ("+79001234567", "100", "incoming"),
        ("+79001234567", "100", "queued"),
        ("+79001234567", "100", "queued"),
        ("+79001234567", "100", "missed"),
    ]
    assert facts[-1].reason == "abandoned"
    assert len(await outbox_keys(db)) == 4 and len(woken) == 4


async def test_after_a_restart_the_call_is_read_from_its_record(db: Database) -> None:
    await start(CallRecorder(CallWriter(db), EventBus(lambda: T0)))  # before the restart
    spy = Spy()
    recorder = CallRecorder(CallWriter(db), EventBus(lambda: T0), sources=[spy])
    await recorder.ended("c1", T0 + timedelta(seconds=5), CallEnd("missed", "abandoned", 0))
    ((_, _, facts),) = spy.asked
    assert (facts.caller_number, facts.called_number, facts.status) == (
        "+79001234567",
        "100",
        "missed",
    )


async def test_a_fact_that_is_not_written_enqueues_nothing(db: Database) -> None:
    recorder = CallRecorder(CallWriter(db), EventBus(lambda: T0), sources=[Spy()], retry_delays=())
    await start(recorder)
    # A second call_started for the same id violates the primary key: the fact's transaction
    # rolls back, and its message with it.
    with pytest.raises(Conflict):
        await recorder.started(
            "c1",
            T0 + timedelta(seconds=1),  # another event: another message key
            channel_id="ch-2",
            caller_number="+79001234567",
            called_number="100",
            routed_by="ari",
        )
    assert await outbox_keys(db) == ["c1:call_started:2026-12-07T10:00:00.000000Z"]


class CountingWriter(CallWriter):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.lookups = 0
        self.messages: list[Sequence[OutgoingMessage]] = []

    async def facts_of(self, call_id: str) -> CallFacts | None:
        self.lookups += 1
        return await super().facts_of(call_id)

    async def queued(self, *args: Any, **kwargs: Any) -> None:
        self.messages.append(kwargs.get("messages", ()))
        await super().queued(*args, **kwargs)


@pytest.mark.parametrize("sources", [(), (WebhookSource(),)], ids=["none", "no webhook"])
async def test_without_sources_or_with_empty_ones_no_work_is_done(
    db: Database, sources: tuple[WebhookSource, ...]
) -> None:
    writer = CountingWriter(db)
    woken: list[int] = []
    recorder = CallRecorder(
        writer, EventBus(lambda: T0), sources=sources, on_enqueued=lambda: woken.append(1)
    )
    await start(recorder)
    await recorder.queued("c1", T0, None, 1)
    assert writer.lookups == 0 and writer.messages == [()] and woken == []
    assert await outbox_keys(db) == []
