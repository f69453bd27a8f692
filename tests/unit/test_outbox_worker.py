"""The outbox worker over a real SQLite file, with transports written for the test: what it
sends and when, retries with backoff, the final `failed` (and what it causes), the limits."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenterd.domain.messages import (
    DeliveryFailed,
    DeliveryReceipt,
    MessageKind,
    OutgoingMessage,
    QueuedMessage,
)
from callcenterd.errors import OutboxStateConflict
from callcenterd.services.outbox import (
    FAILURE_TOPIC,
    OutboxService,
    OutboxWorker,
    backoff_delay,
)
from callcenterd.settings import OutboxSettings
from callcenterd.store.db import Database
from callcenterd.store.outbox import OutboxRepository, enqueue_in
from tests.eventually import eventually


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "outbox.sqlite3")
    await database.open()
    await database.migrate()
    yield database
    await database.close()


def webhook(key: str) -> OutgoingMessage:
    return OutgoingMessage(MessageKind.WEBHOOK, "hook-1", key, {"event": {"type": "t"}})


async def enqueue(db: Database, *keys: str) -> None:
    async with db.transaction() as conn:
        await enqueue_in(conn, [webhook(key) for key in keys], now())


class Recorder:
    """A webhook transport that answers as told and keeps every try (key, time)."""

    kind = MessageKind.WEBHOOK

    def __init__(self, answer: Callable[[QueuedMessage], Any] | None = None) -> None:
        self.tries: list[tuple[str, float]] = []
        self._answer = answer
        self.concurrent = 0
        self.most_concurrent = 0

    async def send(self, message: QueuedMessage) -> DeliveryReceipt:
        self.tries.append((message.idempotency_key, time.monotonic()))
        self.concurrent += 1
        self.most_concurrent = max(self.most_concurrent, self.concurrent)
        try:
            result = self._answer(message) if self._answer else None
            if asyncio.iscoroutine(result):
                result = await result
            if isinstance(result, Exception):
                raise result
            return DeliveryReceipt("ok", 200)
        finally:
            self.concurrent -= 1

    def keys(self) -> list[str]:
        return [key for key, _ in self.tries]


def settings(**changes: Any) -> OutboxSettings:
    base: dict[str, Any] = {
        "poll_seconds": 30.0,  # only wake() and due times move it in these tests
        "base_delay": 0.05,
        "max_delay": 1.0,
        "max_attempts": 4,
        "concurrency": 4,
        "send_timeout": 2.0,
    }
    return OutboxSettings.model_validate({**base, **changes})


@contextlib.asynccontextmanager
async def running(worker: OutboxWorker) -> AsyncIterator[OutboxWorker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_worker(
    db: Database, transport: Recorder | None, **kwargs: Any
) -> tuple[OutboxWorker, list[tuple[MessageKind, str]]]:
    outcomes: list[tuple[MessageKind, str]] = []
    worker = OutboxWorker(
        db,
        OutboxRepository(db),
        kwargs.pop("outbox_settings", settings()),
        now,
        transports={MessageKind.WEBHOOK: transport} if transport else {},
        draw=kwargs.pop("draw", lambda: 1.0),
        on_outcome=lambda kind, outcome: outcomes.append((kind, outcome)),
        **kwargs,
    )
    return worker, outcomes


async def states(db: Database) -> dict[str, tuple[str, int]]:
    rows = await db.fetch_all("SELECT idempotency_key, state, attempts FROM outbox")
    return {row["idempotency_key"]: (row["state"], row["attempts"]) for row in rows}


def test_backoff_is_full_jitter_under_a_growing_capped_ceiling() -> None:
    ceilings = [backoff_delay(n, 2.0, 60.0, lambda: 1.0) for n in range(1, 8)]
    assert ceilings == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff_delay(3, 2.0, 60.0, lambda: 0.25) == 2.0
    assert backoff_delay(3, 2.0, 60.0, lambda: 0.0) == 0.0
    assert backoff_delay(10_000, 2.0, 60.0, lambda: 1.0) == 60.0  # no overflow


async def test_woken_it_sends_at_once_and_marks_sent(db: Database) -> None:
    transport = Recorder()
    worker, outcomes = make_worker(db, transport)
    async with running(worker):
        await asyncio.sleep(0.05)  # asleep for poll_seconds (30 s) with nothing due
        await enqueue(db, "a", "b")
        worker.wake()
        await eventually(lambda: len(transport.tries) == 2, within=2)

        async def all_sent() -> None:
            assert await states(db) == {"a": ("sent", 1), "b": ("sent", 1)}

        await eventually(all_sent, within=2)
    assert outcomes == [(MessageKind.WEBHOOK, "sent")] * 2
    row = await db.fetch_one("SELECT sent_at, last_status_code FROM outbox WHERE id = 1")
    assert row is not None and row["sent_at"] and row["last_status_code"] == 200


async def test_it_also_polls(db: Database) -> None:
    transport = Recorder()
    worker, _ = make_worker(db, transport, outbox_settings=settings(poll_seconds=0.1))
    async with running(worker):
        await asyncio.sleep(0.05)
        await enqueue(db, "polled")  # no wake()
        await eventually(lambda: transport.keys() == ["polled"], within=2)


async def test_failed_tries_are_retried_with_growing_delays_then_failed(db: Database) -> None:
    transport = Recorder(lambda m: DeliveryFailed("HTTP 500: down", status_code=500))
    worker, outcomes = make_worker(db, transport)  # draw() = 1: each delay is its ceiling
    await enqueue(db, "doomed")
    async with running(worker):

        async def failed() -> None:
            assert await states(db) == {"doomed": ("failed", 4)}

        await eventually(failed, within=5)
    times = [at for _, at in transport.tries]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(transport.tries) == 4
    # 0.05, 0.1, 0.2 s (base_delay * 2**(n-1)), each a little later for the poll and write.
    for gap, ceiling in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert ceiling - 0.01 <= gap < ceiling + 0.15, gaps
    assert gaps[0] < gaps[1] < gaps[2]
    assert [o for _, o in outcomes] == ["retry", "retry", "retry", "failed"]
    row = await db.fetch_one("SELECT last_error, last_status_code FROM outbox")
    assert row is not None and (row["last_error"], row["last_status_code"]) == (
        "HTTP 500: down",
        500,
    )


async def test_a_refusal_for_good_fails_at_once(db: Database) -> None:
    transport = Recorder(lambda m: DeliveryFailed("HTTP 410", retryable=False, status_code=410))
    worker, outcomes = make_worker(db, transport)
    await enqueue(db, "gone")
    async with running(worker):

        async def failed() -> None:
            assert await states(db) == {"gone": ("failed", 1)}

        await eventually(failed, within=2)
    assert [o for _, o in outcomes] == ["failed"]


async def test_a_final_failure_enqueues_what_the_failure_sources_return(db: Database) -> None:
    seen: list[tuple[str, str]] = []

    def alert_admins(message: QueuedMessage, error: str) -> Sequence[OutgoingMessage]:
        seen.append((message.idempotency_key, error))
        return [
            OutgoingMessage(
                MessageKind.EMAIL,
                "admin@example.com",
                f"outbox-failed:{message.id}",
                {"subject": "An outbox message failed", "text": error},
            )
        ]

    transport = Recorder(lambda m: DeliveryFailed("refused", retryable=False))
    worker, _ = make_worker(db, transport, failure_sources=[alert_admins])
    await enqueue(db, "gone")
    async with running(worker):

        async def both_written() -> None:
            found = await states(db)
            assert found["gone"] == ("failed", 1) and "outbox-failed:1" in found

        await eventually(both_written, within=2)

        # The email has no transport here: it is retried, then fails in turn, and that
        # failure causes nothing more (no alert about the alert).
        async def alert_failed() -> None:
            found = await states(db)
            assert found == {"gone": ("failed", 1), "outbox-failed:1": ("failed", 4)}

        await eventually(alert_failed, within=5)
        await asyncio.sleep(0.1)
    assert seen == [("gone", "refused")]
    assert len(await states(db)) == 2
    topic = await db.fetch_value("SELECT topic FROM outbox WHERE kind = 'email'")
    assert topic == FAILURE_TOPIC


async def test_a_slow_far_end_is_a_timeout_and_a_retry(db: Database) -> None:
    async def hang(message: QueuedMessage) -> None:
        if message.attempts == 0:
            await asyncio.sleep(10)

    transport = Recorder(hang)
    worker, _ = make_worker(db, transport, outbox_settings=settings(send_timeout=0.1))
    await enqueue(db, "slow")
    async with running(worker):

        async def sent_second_time() -> None:
            assert await states(db) == {"slow": ("sent", 2)}

        await eventually(sent_second_time, within=3)
    assert transport.keys() == ["slow", "slow"]


async def test_no_more_than_the_concurrency_at_once_and_none_twice(db: Database) -> None:
    release = asyncio.Event()

    async def wait_release(message: QueuedMessage) -> None:
        await release.wait()

    transport = Recorder(wait_release)
    worker, _ = make_worker(db, transport, outbox_settings=settings(concurrency=3))
    await enqueue(db, *(f"m{n}" for n in range(10)))
    async with running(worker):
        await eventually(lambda: worker.in_flight() == 3, within=2)
        for _ in range(5):  # wakes while all are in flight start nothing more
            worker.wake()
            await asyncio.sleep(0.01)
        assert len(transport.tries) == 3
        release.set()

        async def all_sent() -> None:
            assert {state for state, _ in (await states(db)).values()} == {"sent"}

        await eventually(all_sent, within=3)
    assert transport.most_concurrent == 3
    assert sorted(transport.keys()) == sorted(f"m{n}" for n in range(10))  # each once


async def test_a_message_in_flight_when_stopped_is_sent_again_by_the_next_worker(
    db: Database,
) -> None:
    async def never(message: QueuedMessage) -> None:
        await asyncio.sleep(60)

    first = Recorder(never)
    worker, _ = make_worker(db, first)
    await enqueue(db, "interrupted")
    async with running(worker):
        await eventually(lambda: first.keys() == ["interrupted"], within=2)
    assert await states(db) == {"interrupted": ("queued", 0)}  # not sent: never confirmed
    second = Recorder()
    worker, _ = make_worker(db, second)
    async with running(worker):

        async def sent() -> None:
            assert await states(db) == {"interrupted": ("sent", 1)}

        await eventually(sent, within=2)
    assert second.keys() == ["interrupted"]


async def test_a_kind_without_transport_waits_as_a_retry(db: Database) -> None:
    worker, outcomes = make_worker(db, None)
    await enqueue(db, "nowhere")
    async with running(worker):
        await eventually(lambda: outcomes[:1] == [(MessageKind.WEBHOOK, "retry")], within=2)
    row = await db.fetch_one("SELECT state, last_error FROM outbox")
    assert row is not None
    assert (row["state"], row["last_error"]) == ("queued", "no webhook transport configured")


async def test_retry_and_cancel_follow_the_state(db: Database) -> None:
    worker, _ = make_worker(db, None)
    service = OutboxService(db, OutboxRepository(db), worker, now)
    await enqueue(db, "x")
    with pytest.raises(OutboxStateConflict):
        await service.retry(1, None)  # queued: nothing to retry
    cancelled = await service.cancel(1, None)
    assert cancelled.state == "cancelled"
    with pytest.raises(OutboxStateConflict):
        await service.cancel(1, None)
    again = await service.retry(1, None)
    assert (again.state, again.attempts) == ("queued", 0)


async def test_stats_count_states_and_the_oldest_message_waiting(db: Database) -> None:
    repository = OutboxRepository(db)
    t0 = now()
    later = OutgoingMessage(
        MessageKind.SMS,
        "+79001234567",
        "reminder",
        {"text": "soon"},
        not_before=t0 + timedelta(hours=1),
    )
    async with db.transaction() as conn:
        await enqueue_in(conn, [webhook("old")], t0 - timedelta(seconds=90))
        await enqueue_in(conn, [webhook("new")], t0 - timedelta(seconds=10))
        await enqueue_in(conn, [later], t0 - timedelta(seconds=500))  # not due: not waiting
    await repository.mark_sent(2, t0, 200)
    stats = await repository.stats(t0)
    assert stats.counts == {("queued", "webhook"): 1, ("sent", "webhook"): 1, ("queued", "sms"): 1}
    assert stats.oldest_waiting is not None
    assert round((t0 - stats.oldest_waiting).total_seconds()) == 90
    rows, total = await repository.page(state="queued", limit=1)
    assert total == 2 and [row.idempotency_key for row in rows] == ["reminder"]
    rows, total = await repository.page(kind="webhook", skip=1, limit=1)
    assert total == 2 and [row.idempotency_key for row in rows] == ["old"]
