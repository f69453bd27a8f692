"""Call records: every fact about a call is stored, then published, in order per call.

One recorder for both ways a call is routed: by this daemon over ARI (the dispatcher) and
by Asterisk's own Queue() while ARI is down, followed over AMI (the fallback). A call's
facts run on its own lane, so they reach the store and the bus in the order they happened
and never wait for another call's. The store comes first: a client that sees an event and
asks the API for the call finds it written.

A write that fails because the database is locked or the disk is full is retried, in order,
for about half a minute (the call's later facts wait behind it), then given up loudly.

Message sources (webhooks, SMS, email: `domain.messages.MessageSource`) are asked, for each
event a fact publishes, which messages it causes; those are enqueued in the fact's own
transaction (`store.outbox.enqueue_in`), so a fact is never stored without its messages nor
the other way round, and the outbox worker is woken after the commit. The event they see is
the WebSocket's (`type`, `timestamp`, `data`; no bus `id`), its timestamp the fact's time.
With no source, or only empty ones (no webhook configured), none of this work is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog

from callcenterd.domain import commands as cmd
from callcenterd.domain.clock import to_iso
from callcenterd.domain.messages import CallFacts, MessageSource
from callcenterd.errors import CallcenterError, DatabaseUnavailable
from callcenterd.events import payloads as out
from callcenterd.events.bus import EventBus
from callcenterd.store.calls import NO_MESSAGES, CallEnd, CallWriter, Messages, OpenCall
from callcenterd.tasks import Job, SerialLanes, retrying

log = structlog.get_logger(__name__)

# The engine's facts about a call (a ring is one: the operator is tried).
CallFact = (
    cmd.RingOperator
    | cmd.CallQueued
    | cmd.LegEnded
    | cmd.CallAnswered
    | cmd.CallEnded
    | cmd.TransferFact
)
RECORD_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


class CallRecorder:
    def __init__(
        self,
        writer: CallWriter,
        bus: EventBus,
        *,
        retry_delays: tuple[float, ...] = RECORD_RETRY_DELAYS,
        sources: Sequence[MessageSource] = (),
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        """`sources`: asked for each published event's messages (a falsy one, by len() or
        bool(), is skipped); `on_enqueued`: called after a commit that enqueued any (the outbox
        worker's wake)."""
        self._writer = writer
        self._bus = bus
        self._retry_delays = retry_delays
        self._lanes = SerialLanes(expected=(CallcenterError,))
        self._sources: tuple[MessageSource, ...] = tuple(sources)
        self._on_enqueued = on_enqueued
        # What the sources are told about each live call, learned from its facts (started,
        # queued, answered, ended); read from its record when missing (after a restart).
        self._facts: dict[str, CallFacts] = {}

    # --- messages the facts cause -------------------------------------------------------------
    def add_source(self, source: MessageSource) -> None:
        """One more source of messages (wired at start, before the first call)."""
        self._sources = (*self._sources, source)

    def _sourcing(self) -> bool:
        # any(): a source that is falsy (no webhook; SMS or email switched off) is not asked.
        return bool(self._sources) and any(self._sources)

    async def _messages(self, payload: out.Payload, at: datetime, **learned: Any) -> Messages:
        """The messages `payload`'s event causes, with what the call's facts taught."""
        call_id: str = getattr(payload, "call_id")  # noqa: B009 - every call payload has it
        facts = self._facts.get(call_id) or await self._writer.facts_of(call_id)
        if facts is None:  # no record (written by hand, or a fact out of order)
            facts = CallFacts(call_id, "", None, None)
        if learned:
            facts = replace(facts, **learned)
        self._facts[call_id] = facts
        event = {"type": payload.TYPE, "timestamp": to_iso(at), "data": out.payload_data(payload)}
        found = [
            message
            for source in self._sources
            if source  # falsy: nothing to say now
            for message in source.messages_for(payload.TYPE, event, facts, at)
        ]
        return found

    def _enqueued(self, messages: Messages) -> None:
        if messages and self._on_enqueued is not None:
            self._on_enqueued()

    async def open_calls(self, routed_by: str = "ari") -> list[OpenCall]:
        """Records still open (live, or left open by a crash): what reconciliation closes."""
        return await self._writer.open_calls(routed_by)

    # --- ordering -----------------------------------------------------------------------------
    def later(self, call_id: str, job: Job) -> asyncio.Task[None]:
        """Run `job` (which calls the methods below) after the call's earlier facts."""
        return self._lanes.run(call_id, job)

    def pending(self) -> int:
        return self._lanes.pending()

    async def drain(self) -> None:
        """Until every queued fact is written (or given up)."""
        await self._lanes.drain()

    async def _store(self, call_id: str, write: Callable[[], Awaitable[None]]) -> None:
        try:
            await retrying(write, self._retry_delays, DatabaseUnavailable, f"call {call_id}")
        except DatabaseUnavailable as err:
            log.error("call_record_not_written", call_id=call_id, error=err.detail)
            raise

    def record(self, fact: CallFact, at: datetime, node: str | None = None) -> asyncio.Task[None]:
        """One of the engine's call facts, after the call's earlier ones (`node`: the
        Asterisk node of the call's channels, kept with the legs)."""
        call_id = fact.call_id
        match fact:
            case cmd.RingOperator():
                return self.later(
                    call_id,
                    lambda: self.ringing(call_id, at, fact.leg_id, fact.operator_id, node=node),
                )
            case cmd.CallQueued():
                return self.later(
                    call_id,
                    lambda: self.queued(
                        call_id, at, fact.queue_id, fact.position, moved_from=fact.moved_from
                    ),
                )
            case cmd.LegEnded():
                return self.later(
                    call_id,
                    lambda: self.leg_ended(
                        call_id, at, fact.leg_id, fact.operator_id, fact.outcome
                    ),
                )
            case cmd.CallAnswered():
                return self.later(
                    call_id,
                    lambda: self.answered(
                        call_id,
                        at,
                        fact.operator_id,
                        fact.wait_seconds,
                        leg_id=fact.leg_id,
                        transferred=fact.transferred,
                    ),
                )
            case cmd.TransferRinging():
                return self.later(
                    call_id,
                    lambda: self.ringing(call_id, at, fact.leg_id, fact.operator_id, node=node),
                )
            case cmd.CallEnded():
                end = CallEnd(
                    fact.outcome.value,
                    fact.reason.value,
                    round(fact.talk_seconds),
                    operator_id=fact.operator_id,
                    wait_seconds=fact.wait_seconds,
                    queue_id=fact.queue_id,
                    held_seconds=fact.held_seconds,
                )
                return self.later(call_id, lambda: self.ended(call_id, at, end))
            case _:
                return self.later(call_id, lambda: self.transfer_fact(fact, at))

    # --- facts --------------------------------------------------------------------------------
    async def started(
        self,
        call_id: str,
        at: datetime,
        *,
        channel_id: str,
        caller_number: str,
        called_number: str | None,
        routed_by: str,
        priority: int = 0,
    ) -> None:
        payload = out.CallStarted(call_id, channel_id, caller_number, called_number, to_iso(at))
        messages = NO_MESSAGES
        if self._sourcing():
            self._facts[call_id] = CallFacts(
                call_id, caller_number, called_number, None, status="incoming"
            )
            messages = await self._messages(payload, at)
        await self._store(
            call_id,
            lambda: self._writer.started(
                call_id=call_id,
                channel_id=channel_id,
                caller_number=caller_number,
                called_number=called_number,
                at=at,
                routed_by=routed_by,
                priority=priority,
                messages=messages,
            ),
        )
        self._bus.emit(payload)
        self._enqueued(messages)

    async def queued(
        self,
        call_id: str,
        at: datetime,
        queue_id: str | None,
        position: int,
        *,
        moved_from: str | None = None,
        asterisk_queue: str | None = None,
    ) -> None:
        """`moved_from`: another of our queues; `asterisk_queue`: app_queue's (AMI path)."""
        payload = out.CallQueued(call_id, queue_id, position, to_iso(at))
        messages = NO_MESSAGES
        if self._sourcing():
            messages = await self._messages(payload, at, queue_id=queue_id, status="queued")
        await self._store(
            call_id,
            lambda: self._writer.queued(
                call_id,
                at,
                queue_id,
                position,
                moved_from=moved_from,
                asterisk_queue=asterisk_queue,
                messages=messages,
            ),
        )
        self._bus.emit(payload)
        self._enqueued(messages)

    async def ringing(
        self,
        call_id: str,
        at: datetime,
        leg_id: str,
        operator_id: str | None,
        *,
        extension: str | None = None,
        node: str | None = None,
    ) -> None:
        payload = None if operator_id is None else out.CallRinging(call_id, operator_id, to_iso(at))
        messages = NO_MESSAGES
        if payload is not None and self._sourcing():
            messages = await self._messages(payload, at)
        await self._store(
            call_id,
            lambda: self._writer.ringing(
                call_id, at, leg_id, operator_id, extension=extension, node=node, messages=messages
            ),
        )
        if payload is not None:
            self._bus.emit(payload)
            self._enqueued(messages)

    async def leg_ended(
        self, call_id: str, at: datetime, leg_id: str, operator_id: str | None, outcome: str
    ) -> None:
        await self._store(
            call_id, lambda: self._writer.leg_ended(call_id, at, leg_id, operator_id, outcome)
        )

    async def answered(
        self,
        call_id: str,
        at: datetime,
        operator_id: str | None,
        wait_seconds: float,
        *,
        extension: str | None = None,
        leg_id: str | None = None,
        transferred: bool = False,
    ) -> None:
        payload = out.CallAnswered(call_id, operator_id, to_iso(at))
        messages = NO_MESSAGES
        if self._sourcing():
            messages = await self._messages(payload, at, status="answered")
        await self._store(
            call_id,
            lambda: self._writer.answered(
                call_id,
                at,
                operator_id,
                wait_seconds,
                extension=extension,
                leg_id=leg_id,
                transferred=transferred,
                messages=messages,
            ),
        )
        self._bus.emit(payload)
        self._enqueued(messages)

    async def ended(self, call_id: str, at: datetime, end: CallEnd) -> None:
        payload = out.CallEnded(call_id, to_iso(at), end.duration, end.status, end.reason)
        messages = NO_MESSAGES
        if self._sourcing():
            learned: dict[str, Any] = {"status": end.status, "reason": end.reason}
            if end.queue_id is not None:
                learned["queue_id"] = end.queue_id
            if end.wait_seconds is not None:
                learned["extra"] = {"wait_seconds": end.wait_seconds}
            messages = await self._messages(payload, at, **learned)
        self._facts.pop(call_id, None)  # the call is over
        await self._store(call_id, lambda: self._writer.ended(call_id, at, end, messages))
        self._bus.emit(payload)
        self._enqueued(messages)

    async def recording_started(self, call_id: str, at: datetime, name: str) -> None:
        await self._store(call_id, lambda: self._writer.recording_started(call_id, at, name))

    async def noted(self, call_id: str, at: datetime, kind: str, data: dict[str, Any]) -> None:
        """A timeline entry that changes nothing else (a callback's steps)."""
        await self._store(call_id, lambda: self._writer.note(call_id, at, kind, data))

    async def reconciled(self, call_id: str, at: datetime, data: dict[str, Any]) -> None:
        """What reconciliation did with a call it did not end (adopted, found lost)."""
        await self._store(call_id, lambda: self._writer.note(call_id, at, "reconciled", data))

    # --- hold and transfers (issue 11) ------------------------------------------------------
    async def transfer_fact(self, fact: cmd.TransferFact, at: datetime) -> None:
        """Hold, unhold and the steps of a transfer: the timeline and the legs, then the
        event (`call_held`, `call_unheld`, `call_transfer_started`, `call_transferred`,
        `call_transfer_failed`)."""
        payload = _transfer_payload(fact, to_iso(at))
        messages = NO_MESSAGES
        if payload is not None and self._sourcing():
            messages = await self._messages(payload, at)
        call_id = fact.call_id
        writer = self._writer
        match fact:
            case cmd.CallHeld(operator_id=operator_id):
                await self._store(call_id, lambda: writer.held(call_id, at, operator_id, messages))
            case cmd.CallUnheld(operator_id=operator_id, held_seconds=held):
                await self._store(
                    call_id, lambda: writer.unheld(call_id, at, operator_id, held, messages)
                )
            case cmd.TransferStarted():
                data = {
                    "mode": fact.mode,
                    "target_type": fact.target_kind,
                    "target_id": fact.target,
                    "leg_id": fact.leg_id,
                }
                await self._store(
                    call_id,
                    lambda: writer.transfer_started(
                        call_id, at, fact.from_operator_id, data, messages
                    ),
                )
            case cmd.ConsultAnswered(leg_id=leg_id, operator_id=operator_id):
                await self._store(
                    call_id, lambda: writer.consult_answered(call_id, at, leg_id, operator_id)
                )
            case cmd.CallTransferred():
                await self._store(call_id, lambda: self._transferred(fact, at, messages))
            case cmd.TransferFailed():
                await self._store(
                    call_id,
                    lambda: writer.transfer_failed(
                        call_id,
                        at,
                        fact.from_operator_id,
                        fact.leg_id,
                        fact.reason,
                        fact.held_seconds,
                        answered=fact.answered,
                        messages=messages,
                    ),
                )
        if payload is not None:
            self._bus.emit(payload)
            self._enqueued(messages)

    async def _transferred(
        self, fact: cmd.CallTransferred, at: datetime, messages: Messages
    ) -> None:
        data = {
            "mode": fact.mode,
            "target_type": fact.target_kind,
            "target_id": fact.target,
            "from_leg_id": fact.from_leg_id,
            "to_leg_id": fact.to_leg_id,
        }
        # An attended transfer's target has the call from now; others once they answer.
        to_operator = fact.target if fact.to_leg_id is not None else None
        await self._writer.transferred(
            fact.call_id,
            at,
            fact.from_operator_id,
            fact.from_leg_id,
            fact.held_seconds,
            data,
            to_operator_id=to_operator,
            messages=messages,
        )


def _transfer_payload(fact: cmd.TransferFact, stamp: str) -> out.Payload | None:
    """The event a hold or transfer step publishes (a consultation answered publishes none)."""
    match fact:
        case cmd.CallHeld():
            return out.CallHeld(fact.call_id, fact.operator_id, stamp)
        case cmd.CallUnheld():
            return out.CallUnheld(
                fact.call_id, fact.operator_id, round(fact.held_seconds, 3), stamp
            )
        case cmd.TransferStarted():
            return out.CallTransferStarted(
                fact.call_id, fact.from_operator_id, fact.mode, fact.target_kind, fact.target, stamp
            )
        case cmd.CallTransferred():
            return out.CallTransferred(
                fact.call_id, fact.from_operator_id, fact.mode, fact.target_kind, fact.target, stamp
            )
        case cmd.TransferFailed():
            return out.CallTransferFailed(
                fact.call_id, fact.from_operator_id, fact.mode, fact.target, fact.reason, stamp
            )
    return None
