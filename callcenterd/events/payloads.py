"""The daemon's own live events, typed: what each `call_*` and `operator_*` event carries.

Field names are the API reference's (WebSocket events); `EventBus.emit` turns one into a
bus event. Timestamps are ISO 8601 strings, as they go on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class CallStarted:
    TYPE: ClassVar[str] = "call_started"
    call_id: str
    channel_id: str
    caller_number: str
    called_number: str | None
    timestamp: str


@dataclass(frozen=True, slots=True)
class CallQueued:
    TYPE: ClassVar[str] = "call_queued"
    call_id: str
    queue_id: str | None  # None: an Asterisk queue (AMI fallback) no queue of ours names
    position: int
    timestamp: str


@dataclass(frozen=True, slots=True)
class CallRinging:
    TYPE: ClassVar[str] = "call_ringing"
    call_id: str
    operator_id: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class CallAnswered:
    TYPE: ClassVar[str] = "call_answered"
    call_id: str
    operator_id: str | None  # None: answered by a phone no operator has (AMI fallback)
    answer_time: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    TYPE: ClassVar[str] = "call_ended"
    call_id: str
    end_time: str
    duration: int
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class OperatorStatusChanged:
    TYPE: ClassVar[str] = "operator_status_changed"
    operator_id: str
    status: str
    reason: str | None  # the pause reason; None when the operator is not paused
    status_reason: str | None  # the shown status's detail: on_call, wrapup, unreachable...
    timestamp: str


@dataclass(frozen=True, slots=True)
class OperatorLoggedIn:
    TYPE: ClassVar[str] = "operator_logged_in"
    operator_id: str
    extension: str
    timestamp: str


# A callback's steps, each its own event type: callback_requested, callback_scheduled,
# callback_dialing, callback_completed, callback_failed, callback_cancelled.
CALLBACK_STEPS = ("requested", "scheduled", "dialing", "completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    step: str  # one of CALLBACK_STEPS: the event type is callback_<step>
    callback_id: str
    call_id: str | None  # the callback's own call
    queue_id: str
    number: str
    status: str  # the callback's status after this step
    attempts: int
    operator_id: str | None
    scheduled_at: str | None
    origin_call_id: str | None
    reason: str | None
    timestamp: str

    @property
    def type(self) -> str:
        return f"callback_{self.step}"

    def data(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "step"}


Payload = (
    CallStarted
    | CallQueued
    | CallRinging
    | CallAnswered
    | CallEnded
    | OperatorStatusChanged
    | OperatorLoggedIn
)


def payload_data(payload: Payload) -> dict[str, Any]:
    return {f.name: getattr(payload, f.name) for f in fields(payload)}
