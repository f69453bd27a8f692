"""Calls served by Asterisk's own Queue() while ARI is down, followed through AMI queue events.

The dialplan falls back to ``Queue(${QUEUE})`` when no Stasis app is connected; those calls
must still show up in call history, dashboards and the event bus. ``AmiCallTracker`` turns AMI
queue events into facts (pure: frames and times in, facts out); ``AmiFallback`` hands each
fact to the call recorder (``routed_by="ami"``), which the ARI path uses too.

Event fields as Asterisk 22 sends them (checked on the sandbox): every queue event carries the
caller channel's ``Uniqueid``/``Linkedid``; agent events add ``Interface`` (the member,
``PJSIP/<extension>``), ``DestUniqueid`` (the operator leg), ``HoldTime``/``TalkTime`` in seconds
and, on AgentComplete, ``Reason`` (caller|agent|transfer).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from callcenterd.domain.commands import CallOutcome, EndReason
from callcenterd.services.call_records import CallRecorder
from callcenterd.store.calls import CallEnd

log = structlog.get_logger(__name__)

ROUTED_BY = "ami"
# The AMI events AmiCallTracker reads: the AMI link asks Asterisk for these alone.
FOLLOWED_EVENTS = (
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
    "Hangup",
)
_COMPLETE_REASON = {
    "caller": EndReason.CALLER_HANGUP,
    "agent": EndReason.OPERATOR_HANGUP,
    "transfer": EndReason.OPERATOR_HANGUP,
}


# --- facts ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Started:
    call_id: str
    channel_id: str
    caller_number: str
    called_number: str | None
    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class Ringing:
    call_id: str
    extension: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class LegEnded:
    call_id: str
    extension: str
    leg_id: str
    outcome: str  # no_answer


@dataclass(frozen=True, slots=True)
class Answered:
    call_id: str
    extension: str
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class Ended:
    call_id: str
    outcome: CallOutcome
    reason: EndReason
    talk_seconds: float
    wait_seconds: float
    extension: str | None


Fact = Started | Ringing | LegEnded | Answered | Ended


def extension_of(interface: str) -> str:
    """``PJSIP/1001`` -> ``1001`` (also ``SIP/1001``, ``PJSIP/1001@host``)."""
    name = interface.split("/", 1)[-1]
    return name.split("@", 1)[0]


def _seconds(value: Any) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 0.0


def _text(frame: Mapping[str, Any], key: str) -> str:
    value = frame.get(key)
    return str(value) if value not in (None, "") else ""


@dataclass(slots=True)
class _Tracked:
    call_id: str
    channel_id: str
    joined_at: float
    answered_at: float | None = None
    extension: str | None = None
    left: bool = False


@dataclass
class AmiCallTracker:
    """AMI frames -> facts, for calls that entered an Asterisk queue. Pure: no I/O, no clock."""

    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    calls: dict[str, _Tracked] = field(default_factory=dict)  # caller Uniqueid -> call

    def _find(self, frame: Mapping[str, Any]) -> _Tracked | None:
        for key in ("Uniqueid", "Linkedid"):
            found = self.calls.get(_text(frame, key))
            if found is not None:
                return found
        return None

    def handle(self, frame: Mapping[str, Any], now: float) -> list[Fact]:
        kind = _text(frame, "Event")
        if kind == "QueueCallerJoin":
            return self._joined(frame, now)
        tracked = self._find(frame)
        if tracked is None:
            return []
        call_id = tracked.call_id
        match kind:
            case "AgentCalled":
                return [
                    Ringing(
                        call_id,
                        extension_of(_text(frame, "Interface")),
                        _text(frame, "DestUniqueid"),
                    )
                ]
            case "AgentRingNoAnswer":
                return [
                    LegEnded(
                        call_id,
                        extension_of(_text(frame, "Interface")),
                        _text(frame, "DestUniqueid"),
                        "no_answer",
                    )
                ]
            case "AgentConnect":
                tracked.answered_at = now
                tracked.extension = extension_of(_text(frame, "Interface"))
                return [Answered(call_id, tracked.extension, _seconds(frame.get("HoldTime")))]
            case "AgentComplete":
                self._forget(tracked)
                reason = _COMPLETE_REASON.get(_text(frame, "Reason"), EndReason.CALLER_HANGUP)
                return [
                    Ended(
                        call_id,
                        CallOutcome.COMPLETED,
                        reason,
                        _seconds(frame.get("TalkTime")),
                        _seconds(frame.get("HoldTime")),
                        extension_of(_text(frame, "Interface")) or tracked.extension,
                    )
                ]
            case "QueueCallerAbandon":
                self._forget(tracked)
                return [
                    Ended(
                        call_id,
                        CallOutcome.MISSED,
                        EndReason.ABANDONED,
                        0.0,
                        _seconds(frame.get("HoldTime")),
                        None,
                    )
                ]
            case "QueueCallerLeave":
                tracked.left = True
                return []
            case "Hangup" if _text(frame, "Uniqueid") == tracked.channel_id:
                # No AgentComplete/Abandon came (left by timeout or an exit key, or an event
                # was lost): the call still ends, and is never left open.
                self._forget(tracked)
                if tracked.answered_at is not None:
                    talk = now - tracked.answered_at
                    return [
                        Ended(
                            call_id,
                            CallOutcome.COMPLETED,
                            EndReason.CALLER_HANGUP,
                            talk,
                            tracked.answered_at - tracked.joined_at,
                            tracked.extension,
                        )
                    ]
                reason = EndReason.TIMEOUT if tracked.left else EndReason.LOST
                return [
                    Ended(call_id, CallOutcome.MISSED, reason, 0.0, now - tracked.joined_at, None)
                ]
        return []

    def _joined(self, frame: Mapping[str, Any], now: float) -> list[Fact]:
        channel_id = _text(frame, "Uniqueid")
        if not channel_id or channel_id in self.calls:
            # Joining a second queue (after leaving the first): still the same call.
            return []
        tracked = _Tracked(self.new_id(), channel_id, now)
        self.calls[channel_id] = tracked
        position = _text(frame, "Position")
        return [
            Started(
                tracked.call_id,
                channel_id,
                _text(frame, "CallerIDNum") or "unknown",
                _text(frame, "Exten") or None,
                _text(frame, "Queue"),
                int(position) if position.isdigit() else 0,
            )
        ]

    def _forget(self, tracked: _Tracked) -> None:
        self.calls.pop(tracked.channel_id, None)


# --- I/O: the records, then the bus --------------------------------------------------------------
Lookup = Callable[[str], Awaitable[str | None]]


class AmiFallback:
    """Records what the tracker finds through the call recorder, in order per call."""

    def __init__(
        self,
        records: CallRecorder,
        clock: Callable[[], datetime],
        operator_of: Lookup,
        queue_of: Lookup,
        tracker: AmiCallTracker | None = None,
    ) -> None:
        self._records = records
        self._clock = clock
        self._operator_of = operator_of  # extension -> operator id
        self._queue_of = queue_of  # asterisk_name -> queue id
        self.tracker = tracker or AmiCallTracker()

    def on_ami_event(self, frame: Mapping[str, Any]) -> None:
        """panoramisk's reader calls this: never block, only queue work."""
        at = self._clock()
        for fact in self.tracker.handle(frame, at.timestamp()):
            self._records.later(fact.call_id, self._job(fact, at))

    def _job(self, fact: Fact, at: datetime) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            await self.apply(fact, at)

        return job

    async def apply(self, fact: Fact, at: datetime) -> None:
        records = self._records
        match fact:
            case Started():
                log.info(
                    "ami_call_started",
                    call_id=fact.call_id,
                    channel_id=fact.channel_id,
                    queue=fact.queue,
                )
                await records.started(
                    fact.call_id,
                    at,
                    channel_id=fact.channel_id,
                    caller_number=fact.caller_number,
                    called_number=fact.called_number,
                    routed_by=ROUTED_BY,
                )
                queue_id = await self._queue_of(fact.queue)
                await records.queued(
                    fact.call_id, at, queue_id, fact.position, asterisk_queue=fact.queue
                )
            case Ringing():
                operator_id = await self._operator_of(fact.extension)
                await records.ringing(
                    fact.call_id, at, fact.leg_id, operator_id, extension=fact.extension
                )
            case LegEnded():
                operator_id = await self._operator_of(fact.extension)
                await records.leg_ended(fact.call_id, at, fact.leg_id, operator_id, fact.outcome)
            case Answered():
                operator_id = await self._operator_of(fact.extension)
                await records.answered(
                    fact.call_id, at, operator_id, fact.wait_seconds, extension=fact.extension
                )
            case Ended():
                operator_id = (
                    await self._operator_of(fact.extension) if fact.extension is not None else None
                )
                end = CallEnd(
                    fact.outcome.value,
                    fact.reason.value,
                    round(fact.talk_seconds),
                    operator_id=operator_id,
                    wait_seconds=fact.wait_seconds,
                )
                await records.ended(fact.call_id, at, end)
