"""Following Asterisk's own Queue() through AMI: recorded frames -> facts -> records and events.

The frames were recorded on the sandbox (Asterisk 22.10, `Queue(support)` with phone 1001
answering after 0.5 s and hanging up 1.5 s later; then `Queue(sales)` ringing 1001 unanswered).
Only the fields the follower reads are kept.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from callcenterd.domain.commands import CallOutcome, EndReason
from callcenterd.events.bus import EventBus
from callcenterd.services.call_records import CallRecorder
from callcenterd.services.fallback import (
    AmiCallTracker,
    AmiFallback,
    Answered,
    Ended,
    LegEnded,
    Ringing,
    Started,
    extension_of,
)
from callcenterd.store.calls import CallEnd

_CALLER = {
    "Channel": "PJSIP/trunk-00000000",
    "CallerIDNum": "5551234",
    "Exten": "7000",
    "Uniqueid": "1795890791.0",
    "Linkedid": "1795890791.0",
}
_LEG = {"DestChannel": "PJSIP/1001-00000001", "DestUniqueid": "1795890791.1"}
_MEMBER = {"Queue": "support", "Interface": "PJSIP/1001", "MemberName": "PJSIP/1001"}
ANSWERED_CALL: list[dict[str, str]] = [
    {"Event": "QueueCallerJoin", **_CALLER, "Queue": "support", "Position": "1", "Count": "1"},
    {"Event": "AgentCalled", **_CALLER, **_LEG, **_MEMBER},
    {"Event": "QueueCallerLeave", **_CALLER, "Queue": "support", "Position": "1", "Count": "0"},
    {"Event": "AgentConnect", **_CALLER, **_LEG, **_MEMBER, "HoldTime": "0", "RingTime": "0"},
    {
        "Event": "AgentComplete",
        **_CALLER,
        **_LEG,
        **_MEMBER,
        "HoldTime": "0",
        "TalkTime": "2",
        "Reason": "agent",
    },
    {
        "Event": "Hangup",
        "Channel": "PJSIP/1001-00000001",
        "Uniqueid": "1795890791.1",
        "Linkedid": "1795890791.0",
        "Cause": "16",
    },
    {"Event": "Hangup", **_CALLER, "Cause": "16"},
]
_CALLER2 = {
    "Channel": "PJSIP/trunk-00000002",
    "CallerIDNum": "5550002",
    "Exten": "7001",
    "Uniqueid": "1795890794.2",
    "Linkedid": "1795890794.2",
}
_LEG2 = {"DestChannel": "PJSIP/1001-00000003", "DestUniqueid": "1795890794.3"}
_MEMBER2 = {"Queue": "sales", "Interface": "PJSIP/1001", "MemberName": "PJSIP/1001"}
UNANSWERED_RING: list[dict[str, str]] = [
    {"Event": "QueueCallerJoin", **_CALLER2, "Queue": "sales", "Position": "1", "Count": "1"},
    {"Event": "AgentCalled", **_CALLER2, **_LEG2, **_MEMBER2},
    {"Event": "AgentRingNoAnswer", **_CALLER2, **_LEG2, **_MEMBER2, "RingTime": "15000"},
    {
        "Event": "Hangup",
        "Channel": "PJSIP/1001-00000003",
        "Uniqueid": "1795890794.3",
        "Linkedid": "1795890794.2",
        "Cause": "0",
    },
]


def _tracker() -> AmiCallTracker:
    ids = (f"call-{n}" for n in itertools.count(1))
    return AmiCallTracker(new_id=lambda: next(ids))


def _replay(
    tracker: AmiCallTracker, frames: list[dict[str, str]], start: float = 100.0
) -> list[Any]:
    facts: list[Any] = []
    for offset, frame in enumerate(frames):
        facts.extend(tracker.handle(frame, start + offset))
    return facts


def test_an_answered_queue_call_becomes_started_ringing_answered_completed() -> None:
    facts = _replay(_tracker(), ANSWERED_CALL)
    assert facts == [
        Started("call-1", "1795890791.0", "5551234", "7000", "support", 1),
        Ringing("call-1", "1001", "1795890791.1"),
        Answered("call-1", "1001", 0.0),
        Ended("call-1", CallOutcome.COMPLETED, EndReason.OPERATOR_HANGUP, 2.0, 0.0, "1001"),
    ]


def test_caller_hanging_up_while_talking_is_a_caller_hangup() -> None:
    frames = [dict(f) for f in ANSWERED_CALL]
    frames[4]["Reason"] = "caller"
    [*_, ended] = _replay(_tracker(), frames)
    assert ended.reason is EndReason.CALLER_HANGUP


def test_a_ring_without_answer_is_a_leg_that_ended_and_the_call_stays_open() -> None:
    tracker = _tracker()
    facts = _replay(tracker, UNANSWERED_RING)
    assert facts[1:] == [
        Ringing("call-1", "1001", "1795890794.3"),
        LegEnded("call-1", "1001", "1795890794.3", "no_answer"),
    ]
    assert "1795890794.2" in tracker.calls  # the operator leg's hangup does not end the call


def test_a_caller_abandoning_the_queue_is_missed_with_the_wait() -> None:
    tracker = _tracker()
    _replay(tracker, UNANSWERED_RING[:2])
    abandon = {
        "Event": "QueueCallerAbandon",
        **_CALLER2,
        "Queue": "sales",
        "Position": "1",
        "OriginalPosition": "1",
        "HoldTime": "7",
    }
    assert tracker.handle(abandon, 200.0) == [
        Ended("call-1", CallOutcome.MISSED, EndReason.ABANDONED, 0.0, 7.0, None)
    ]
    assert tracker.calls == {}
    # The caller's Hangup after that adds nothing.
    assert tracker.handle({"Event": "Hangup", **_CALLER2}, 201.0) == []


def test_leaving_the_queue_without_an_operator_then_hanging_up_is_a_timeout() -> None:
    tracker = _tracker()
    _replay(tracker, UNANSWERED_RING[:1], start=100.0)
    leave = {"Event": "QueueCallerLeave", **_CALLER2, "Queue": "sales"}
    assert tracker.handle(leave, 130.0) == []
    assert tracker.handle({"Event": "Hangup", **_CALLER2}, 131.0) == [
        Ended("call-1", CallOutcome.MISSED, EndReason.TIMEOUT, 0.0, 31.0, None)
    ]


def test_events_of_calls_not_in_a_queue_are_ignored() -> None:
    tracker = _tracker()
    assert tracker.handle(ANSWERED_CALL[1], 1.0) == []
    assert tracker.handle({"Event": "Hangup", **_CALLER}, 2.0) == []
    assert tracker.handle({"Event": "FullyBooted"}, 3.0) == []


def test_joining_a_second_queue_is_the_same_call() -> None:
    tracker = _tracker()
    assert len(tracker.handle(ANSWERED_CALL[0], 1.0)) == 1
    assert tracker.handle({**ANSWERED_CALL[0], "Queue": "sales"}, 2.0) == []


def test_member_interfaces_name_the_extension() -> None:
    assert extension_of("PJSIP/1001") == "1001"
    assert extension_of("SIP/2002") == "2002"
    assert extension_of("PJSIP/1003@pbx") == "1003"


class FakeWriter:
    """The call writer's typed methods, remembered in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, kind: str) -> Any:
        async def write(*args: Any, **fields: Any) -> None:
            self.calls.append((kind, {"args": args, **fields}))

        return write


async def test_records_are_written_with_operator_and_queue_then_published() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    bus = EventBus(lambda: now)
    events = bus.subscribe()
    writer = FakeWriter()

    async def operator_of(extension: str) -> str | None:
        return {"1001": "op-1"}.get(extension)

    async def queue_of(name: str) -> str | None:
        return {"support": "queue-1"}.get(name)

    records = CallRecorder(writer, bus)  # type: ignore[arg-type]
    follower = AmiFallback(records, lambda: now, operator_of, queue_of, _tracker())
    for frame in ANSWERED_CALL:
        follower.on_ami_event(frame)
    await records.drain()

    kinds = [kind for kind, _ in writer.calls]
    assert kinds == ["started", "queued", "ringing", "answered", "ended"]
    started = writer.calls[0][1]
    assert started["routed_by"] == "ami"
    assert started["channel_id"] == "1795890791.0"
    assert started["caller_number"] == "5551234"
    assert writer.calls[1][1]["args"] == ("call-1", now, "queue-1", 1)
    assert writer.calls[1][1]["asterisk_queue"] == "support"
    assert writer.calls[2][1]["args"] == ("call-1", now, "1795890791.1", "op-1")
    assert writer.calls[3][1]["args"][2] == "op-1"  # answered by the operator
    ended: CallEnd = writer.calls[4][1]["args"][2]
    assert ended.status == "completed"
    assert ended.reason == "operator_hangup"
    assert ended.duration == 2
    assert ended.operator_id == "op-1"
    published = []
    while not events.queue.empty():
        published.append(events.queue.get_nowait())
    assert [e.type for e in published] == [
        "call_started",
        "call_queued",
        "call_ringing",
        "call_answered",
        "call_ended",
    ]
    assert {e.data["call_id"] for e in published} == {"call-1"}
    assert published[3].data["operator_id"] == "op-1"
    assert published[4].data["status"] == "completed"
