"""The outbox worker, and what admins do with the outbox.

Messages are written by the facts' own transactions (`store.outbox.enqueue_in`); this worker
sends them. It runs as its own task and never holds anything the call path waits for: the
call path only calls `wake()` after its commit, which sets an event.

Delivery is at least once. A message becomes `sent` only after its transport returned a
receipt (the far end accepted it); a message being sent when the daemon dies is still
`queued` in the store and is sent again after the restart, with the same idempotency key,
so the far end can tell the resend. A failed try is retried after an exponential backoff
with full jitter (a random time up to min(max_delay, base_delay * 2**(tries-1))); after
`max_attempts` tries, or at once when the transport says trying again cannot help
(`DeliveryFailed(retryable=False)`), the message is `failed`. In that same transaction the
`failure_sources` may enqueue messages about it (an alert to admins, say); those carry the
topic FAILURE_TOPIC, and one of them failing causes nothing more.

Transports are registered by `MessageKind` (`register`): a message of a kind with no
transport is a retryable failure, so it waits (and finally fails) like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

import structlog

from callcenterd.domain.messages import (
    DeliveryFailed,
    DeliveryReceipt,
    MessageKind,
    OutgoingMessage,
    QueuedMessage,
    Transport,
)
from callcenterd.errors import CallcenterError, NotFound, OutboxStateConflict
from callcenterd.security import Clock, Principal
from callcenterd.services.context import audit
from callcenterd.settings import OutboxSettings
from callcenterd.store.db import Database
from callcenterd.store.outbox import OutboxRepository, OutboxStats, enqueue_in
from callcenterd.store.outbox import OutboxRow as OutboxRow

log = structlog.get_logger(__name__)

# What a message that finally failed causes: more messages, enqueued as it is marked failed.
FailureSource = Callable[[QueuedMessage, str], Sequence[OutgoingMessage]]
# The topic those messages are given: one of them failing in turn causes nothing more (an
# alert about an alert that could not go would never end). Throttle on it if need be.
FAILURE_TOPIC = "outbox_failure"
# Told of each try's outcome, for the metrics: (kind, "sent" | "retry" | "failed").
OutcomeListener = Callable[[MessageKind, str], None]
ERROR_CHARS = 500  # of a far end's answer kept as last_error


def backoff_delay(tries: int, base: float, cap: float, draw: Callable[[], float]) -> float:
    """Full jitter: uniformly up to min(cap, base * 2**(tries-1)) seconds (`draw` in [0, 1))."""
    ceiling = min(cap, base * 2.0 ** min(tries - 1, 62))
    return draw() * ceiling


@dataclass(frozen=True, slots=True)
class _Outcome:
    receipt: DeliveryReceipt | None
    failure: DeliveryFailed | None


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        repository: OutboxRepository,
        settings: OutboxSettings,
        clock: Clock,
        *,
        transports: Mapping[MessageKind, Transport] | None = None,
        failure_sources: Sequence[FailureSource] = (),
        draw: Callable[[], float] = random.random,
        on_outcome: OutcomeListener | None = None,
    ) -> None:
        self._db = db
        self._repository = repository
        self._settings = settings
        self._clock = clock
        self._transports: dict[MessageKind, Transport] = dict(transports or {})
        self._failure_sources = list(failure_sources)
        self._draw = draw
        self._on_outcome = on_outcome
        self._wakeup = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}

    # --- wiring -------------------------------------------------------------------------------
    def register(self, transport: Transport) -> None:
        """The transport for its `kind` (one per kind; a later one replaces it)."""
        self._transports[transport.kind] = transport

    def add_failure_source(self, source: FailureSource) -> None:
        self._failure_sources.append(source)

    def wake(self) -> None:
        """Something was enqueued (call after the commit): look for due messages now."""
        self._wakeup.set()

    def in_flight(self) -> int:
        return len(self._in_flight)

    # --- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Until cancelled; messages being sent then stay queued (sent again after restart)."""
        try:
            while True:
                self._wakeup.clear()
                wait = self._settings.poll_seconds
                try:
                    await self._start_due()
                    wait = await self._seconds_to_next(wait)
                except CallcenterError as err:  # the database in trouble: look again later
                    log.warning("outbox_poll_failed", error=err.detail)
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that comes as the event is set, and the worker would not stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wakeup.wait()
        finally:
            tasks = list(self._in_flight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_due(self) -> None:
        room = self._settings.concurrency - len(self._in_flight)
        if room <= 0:
            return
        for message in await self._repository.due(self._clock(), room, self._in_flight.keys()):
            task = asyncio.create_task(self._deliver(message), name=f"outbox-{message.id}")
            self._in_flight[message.id] = task
            task.add_done_callback(partial(self._done, message.id))

    def _done(self, message_id: int, _: asyncio.Task[None]) -> None:
        self._in_flight.pop(message_id, None)
        self._wakeup.set()  # room for another, and maybe more are due

    async def _seconds_to_next(self, poll: float) -> float:
        if len(self._in_flight) >= self._settings.concurrency:
            return poll  # a finished send wakes the loop
        next_due = await self._repository.next_due_at(self._in_flight.keys())
        if next_due is None:
            return poll
        return max(0.0, min(poll, (next_due - self._clock()).total_seconds()))

    # --- one message --------------------------------------------------------------------------
    async def _deliver(self, message: QueuedMessage) -> None:
        outcome = await self._try(message)
        try:
            if outcome.receipt is not None:
                await self._sent(message, outcome.receipt)
            elif outcome.failure is not None:
                await self._failed_try(message, outcome.failure)
        except CallcenterError as err:
            # Not recorded: it is still queued and goes again (at least once).
            log.error("outbox_outcome_not_recorded", message_id=message.id, error=err.detail)

    async def _try(self, message: QueuedMessage) -> _Outcome:
        transport = self._transports.get(message.kind)
        if transport is None:
            return _Outcome(None, DeliveryFailed(f"no {message.kind.value} transport configured"))
        timeout = self._settings.send_timeout
        try:
            async with asyncio.timeout(timeout):
                receipt = await transport.send(message)
        except DeliveryFailed as failure:
            return _Outcome(None, failure)
        except TimeoutError:
            return _Outcome(None, DeliveryFailed(f"no answer within {timeout:g} s"))
        except Exception as err:  # a transport's bug must not stop the worker
            log.exception("outbox_transport_crashed", message_id=message.id)
            return _Outcome(None, DeliveryFailed(f"transport error: {err!r}"))
        return _Outcome(receipt, None)

    async def _sent(self, message: QueuedMessage, receipt: DeliveryReceipt) -> None:
        await self._repository.mark_sent(message.id, self._clock(), receipt.status_code)
        log.info(
            "outbox_sent",
            message_id=message.id,
            kind=message.kind.value,
            attempt=message.attempts + 1,
            status_code=receipt.status_code,
        )
        self._tell(message.kind, "sent")

    async def _failed_try(self, message: QueuedMessage, failure: DeliveryFailed) -> None:
        tries = message.attempts + 1
        error = failure.detail[:ERROR_CHARS]
        now = self._clock()
        if failure.retryable and tries < self._settings.max_attempts:
            delay = backoff_delay(
                tries, self._settings.base_delay, self._settings.max_delay, self._draw
            )
            next_at = now + timedelta(seconds=delay)
            await self._repository.schedule_retry(
                message.id, now, next_at, error, failure.status_code
            )
            log.warning(
                "outbox_retry_scheduled",
                message_id=message.id,
                kind=message.kind.value,
                attempt=tries,
                delay=round(delay, 3),
                error=error,
            )
            self._tell(message.kind, "retry")
            return
        await self._finally_failed(message, error, failure.status_code, now)

    async def _finally_failed(
        self, message: QueuedMessage, error: str, status_code: int | None, now: datetime
    ) -> None:
        caused = (
            []
            if message.topic == FAILURE_TOPIC
            else [
                replace(alert, topic=FAILURE_TOPIC)
                for source in self._failure_sources
                for alert in source(message, error)
            ]
        )
        async with self._db.transaction() as conn:
            marked = await self._repository.mark_failed_in(
                conn, message.id, now, error, status_code
            )
            if marked and caused:
                await enqueue_in(conn, caused, now)
        log.error(
            "outbox_failed",
            message_id=message.id,
            kind=message.kind.value,
            attempts=message.attempts + 1,
            error=error,
        )
        self._tell(message.kind, "failed")
        if caused:
            self.wake()

    def _tell(self, kind: MessageKind, outcome: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(kind, outcome)


class OutboxService:
    """What admins see and do: GET /api/admin/outbox, retry, cancel."""

    def __init__(
        self, db: Database, repository: OutboxRepository, worker: OutboxWorker, clock: Clock
    ) -> None:
        self._db = db
        self._repository = repository
        self.worker = worker
        self._clock = clock

    async def page(
        self, state: str | None, kind: str | None, skip: int, limit: int
    ) -> tuple[list[OutboxRow], int]:
        return await self._repository.page(state=state, kind=kind, skip=skip, limit=limit)

    async def get(self, message_id: int) -> OutboxRow:
        found = await self._repository.get(message_id)
        if found is None:
            raise NotFound("No outbox message with this id")
        return found

    async def stats(self) -> OutboxStats:
        return await self._repository.stats(self._clock())

    async def retry(self, message_id: int, actor: Principal | None) -> OutboxRow:
        """A failed or cancelled message queued again, due now, with a fresh count of tries."""
        await self.requeue(message_id, ("failed", "cancelled"), actor, "retry")
        return await self.get(message_id)

    async def requeue(
        self, message_id: int, from_states: Sequence[str], actor: Principal | None, action: str
    ) -> None:
        current = await self.get(message_id)
        now = self._clock()
        async with self._db.transaction() as conn:
            if not await self._repository.requeue_in(conn, message_id, now, from_states):
                raise OutboxStateConflict(
                    f"A {current.state} message cannot be queued again"
                    f" (only {' or '.join(from_states)})"
                )
            await audit(conn, now, actor, "outbox", action, str(message_id), {})
        self.worker.wake()

    async def cancel(self, message_id: int, actor: Principal | None) -> OutboxRow:
        current = await self.get(message_id)
        now = self._clock()
        async with self._db.transaction() as conn:
            if not await self._repository.cancel_in(conn, message_id, now):
                raise OutboxStateConflict(f"A {current.state} message cannot be cancelled")
            await audit(conn, now, actor, "outbox", "cancel", str(message_id), {})
        return await self.get(message_id)
