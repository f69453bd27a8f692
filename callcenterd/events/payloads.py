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


# --- hold and transfers (issue 11) ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallHeld:
    TYPE: ClassVar[str] = "call_held"
    call_id: str
    operator_id: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class CallUnheld:
    TYPE: ClassVar[str] = "call_unheld"
    call_id: str
    operator_id: str
    hold_seconds: float  # this hold's length
    timestamp: str


@dataclass(frozen=True, slots=True)
class CallTransferStarted:
    """Attended: the target's phone rings for a consultation; blind to an operator: rings for
    the caller."""

    TYPE: ClassVar[str] = "call_transfer_started"
    call_id: str
    operator_id: str  # who transfers
    mode: str
    target_type: str
    target_id: str
    timestamp: str


# --- supervision (issue 11, part 3) ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SupervisionStarted:
    """A supervisor asked to join a call: their phone is rung (state `ringing`)."""

    TYPE: ClassVar[str] = "supervision_started"
    session_id: str
    call_id: str
    supervisor_id: str
    operator_id: str | None
    mode: str
    state: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class CallTransferred:
    TYPE: ClassVar[str] = "call_transferred"
    call_id: str
    operator_id: str  # who transferred (their part of the call is over)
    mode: str
    target_type: str  # operator | queue | external
    target_id: str  # operator or queue id, or the external number
    timestamp: str


@dataclass(frozen=True, slots=True)
class SupervisionChanged:
    """The supervisor's phone answered and was joined (state `active`), or the mode changed."""

    TYPE: ClassVar[str] = "supervision_changed"
    session_id: str
    call_id: str
    supervisor_id: str
    operator_id: str | None
    mode: str
    state: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class CallTransferFailed:
    TYPE: ClassVar[str] = "call_transfer_failed"
    call_id: str
    operator_id: str  # who transferred
    mode: str
    target_id: str
    reason: str  # busy | no_answer | unreachable | cancelled | target_hung_up
    timestamp: str


@dataclass(frozen=True, slots=True)
class SupervisionEnded:
    TYPE: ClassVar[str] = "supervision_ended"
    session_id: str
    call_id: str
    supervisor_id: str
    operator_id: str | None
    mode: str
    reason: str
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
    | CallHeld
    | CallUnheld
    | CallTransferStarted
    | CallTransferred
    | CallTransferFailed
    | SupervisionStarted
    | SupervisionChanged
    | SupervisionEnded
)


def payload_data(payload: Payload) -> dict[str, Any]:
    return {f.name: getattr(payload, f.name) for f in fields(payload)}
