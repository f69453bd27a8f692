"""The outbox under a receiver outage, and what enqueueing costs the call-write path.

Part 1, outage: a real SQLite file, the real OutboxWorker and WebhookTransport, and a webhook
receiver on 127.0.0.1 (tests/webhook_receiver.py, checking every signature). The receiver is
down (port closed: connections refused) while N call facts are written through the real
CallRecorder with one webhook, spread over the first part of T seconds; then it comes back.
Printed: the queued peak, the oldest queued message's age at recovery, the time to drain
after recovery, attempts per message (mean/max), duplicates (deliveries accepted more than
once), lost (enqueued, never accepted: must be 0).

Part 2, cost: the CallRecorder writing call facts (started, queued, ringing, answered,
ended) with no webhook and with one (the worker not running, so only the write path is
measured): wall-clock and CPU microseconds per call fact.

    python bench/outbox_outage.py [--messages 1000] [--outage 10] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenterd.events.bus import EventBus
from callcenterd.notify.webhooks import (
    TargetPolicy,
    WebhookSource,
    WebhookTarget,
    WebhookTransport,
    rule_of,
)
from callcenterd.services.call_records import CallRecorder
from callcenterd.services.outbox import OutboxWorker
from callcenterd.settings import OutboxSettings
from callcenterd.store.calls import CallEnd, CallWriter
from callcenterd.store.db import Database
from callcenterd.store.outbox import OutboxRepository
from tests.webhook_receiver import WebhookReceiver

SECRET = "bench-secret-0123456789"
HOOK = "bench-hook"
OPERATOR = "bench-operator"


def now() -> datetime:
    return datetime.now(UTC)


async def open_db(folder: Path) -> Database:
    db = Database(folder / "bench.sqlite3")
    await db.open()
    await db.migrate()
    # Ringing and answering name an operator (foreign keys): one user and operator row.
    stamp = "2026-01-01T00:00:00.000000Z"
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO users (id, username, email, name, password_hash, role,"
            " password_changed_at, created_at, updated_at)"
            " VALUES ('u1', 'bench', 'b@example.com', 'B', 'x', 'operator', ?, ?, ?)",
            (stamp, stamp, stamp),
        )
        await conn.execute(
            "INSERT INTO operators (id, user_id, extension, last_activity, created_at,"
            " updated_at) VALUES (?, 'u1', '1001', ?, ?, ?)",
            (OPERATOR, stamp, stamp, stamp),
        )
    return db


async def one_call(recorder: CallRecorder, at: datetime) -> None:
    call_id = str(uuid.uuid4())
    await recorder.started(
        call_id,
        at,
        channel_id=f"ch-{call_id[:8]}",
        caller_number="+79001234567",
        called_number="100",
        routed_by="ari",
    )
    await recorder.queued(call_id, at, None, 1)
    await recorder.ringing(call_id, at, f"leg-{call_id[:8]}", OPERATOR)
    await recorder.answered(call_id, at, OPERATOR, 2.0)
    await recorder.ended(call_id, at, CallEnd("completed", "caller_hangup", 30, OPERATOR))


FACTS_PER_CALL = 5


async def outage(messages: int, outage_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = await open_db(Path(folder))
        receiver = WebhookReceiver(secret=SECRET)
        settings = OutboxSettings(
            poll_seconds=1.0,
            base_delay=0.5,
            max_delay=5.0,
            max_attempts=100,
            concurrency=16,
            send_timeout=5.0,
        )
        transport = WebhookTransport(
            lambda _: WebhookTarget(receiver.url, SECRET, True), TargetPolicy(allow_private=True)
        )
        repository = OutboxRepository(db)
        worker = OutboxWorker(db, repository, settings, now)
        worker.register(transport)
        recorder = CallRecorder(
            CallWriter(db),
            EventBus(now),
            sources=[WebhookSource([rule_of(HOOK, "*", True)])],
            on_enqueued=worker.wake,
        )
        task = asyncio.create_task(worker.run())
        began = time.monotonic()
        peak = 0

        async def sample() -> int:
            nonlocal peak
            stats = await repository.stats(now())
            queued = sum(n for (state, _), n in stats.counts.items() if state == "queued")
            peak = max(peak, queued)
            return queued

        calls = max(1, messages // FACTS_PER_CALL)
        write_for = outage_seconds * 0.8
        for n in range(calls):  # spread over most of the outage
            await one_call(recorder, now())
            target = began + write_for * (n + 1) / calls
            await asyncio.sleep(max(0.0, target - time.monotonic()))
            if n % 20 == 0:
                await sample()
        while time.monotonic() - began < outage_seconds:
            await sample()
            await asyncio.sleep(0.25)
        stats = await repository.stats(now())
        oldest_age = (now() - stats.oldest_waiting).total_seconds() if stats.oldest_waiting else 0
        await receiver.start()
        recovered = time.monotonic()
        total = calls * FACTS_PER_CALL
        while await sample():  # noqa: ASYNC110 - the store's count is what is watched
            await asyncio.sleep(0.05)
        drained = time.monotonic() - recovered
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await transport.close()
        await receiver.stop()
        rows = await db.fetch_all("SELECT idempotency_key, attempts, state FROM outbox")
        await db.close()
    attempts = [row["attempts"] for row in rows]
    accepted = receiver.accepted_ids()
    lost = len({row["idempotency_key"] for row in rows} - set(accepted))
    print(f"outage: receiver down {outage_seconds:g} s (connections refused), then up")
    print(f"  call facts written during the outage   {total} ({calls} calls x 5)")
    print(f"  queued peak                            {peak}")
    print(f"  oldest queued message at recovery      {oldest_age:.1f} s")
    print(f"  drain time after recovery              {drained:.2f} s")
    print(
        f"  attempts per message                   mean {statistics.mean(attempts):.2f},"
        f" max {max(attempts)}"
    )
    print(f"  states                                 {sorted({row['state'] for row in rows})}")
    print(f"  duplicates                             {receiver.duplicates()}")
    print(f"  lost                                   {lost}")
    print(f"  signatures checked                     {all(r.signed for r in receiver.accepted)}")


async def cost(calls: int) -> None:
    print(f"cost on the call-write path ({calls} calls x 5 facts, worker not running)")
    for webhooks in (0, 1):
        with tempfile.TemporaryDirectory() as folder:
            db = await open_db(Path(folder))
            rules = [rule_of(f"hook-{n}", "*", True) for n in range(webhooks)]
            recorder = CallRecorder(
                CallWriter(db), EventBus(now), sources=[WebhookSource(rules)], on_enqueued=None
            )
            at = now() - timedelta(hours=1)
            for _ in range(20):  # warm up
                await one_call(recorder, at)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                await one_call(recorder, at)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            facts = calls * FACTS_PER_CALL
            queued = await db.fetch_value("SELECT COUNT(*) FROM outbox")
            await db.close()
        print(
            f"  {webhooks} webhook(s): {wall / facts * 1e6:7.1f} us wall, {cpu / facts * 1e6:7.1f}"
            f" us CPU per call fact ({queued} outbox rows)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(outage(args.messages, args.outage))
    asyncio.run(cost(args.calls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
