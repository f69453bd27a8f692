"""What the routing engine decides: telephony actions, and facts to store and publish.

The dispatcher executes actions through the call-control port (ARI, else AMI) and writes
facts to the store before publishing them; the engine does neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callcenterd.domain.users import OperatorStatus


class EndReason(StrEnum):
    # completed
    CALLER_HANGUP = "caller_hangup"
    OPERATOR_HANGUP = "operator_hangup"
    MAX_DURATION = "max_duration"
    # missed
    ABANDONED = "abandoned"
    TIMEOUT = "timeout"
    NO_OPERATOR = "no_operator"
    REJECTED = "rejected"
    LOST = "lost"


class CallOutcome(StrEnum):
    COMPLETED = "completed"
    MISSED = "missed"


# --- telephony actions ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AnswerCaller:
    call_id: str


@dataclass(frozen=True, slots=True)
class HoldCaller:
    call_id: str
    music_class: str


@dataclass(frozen=True, slots=True)
class RingOperator:
    call_id: str
    leg_id: str  # chosen by the engine; the adapter uses it as the channel id
    operator_id: str
    extension: str
    caller_number: str
    timeout: float


@dataclass(frozen=True, slots=True)
class CancelLeg:
    """Hang up an operator leg: ringing (cancel) or talking.

    May come twice for one leg (an answer that crossed the first cancel is hung up again):
    the adapter treats an already-gone channel as done.
    """

    call_id: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class ConnectCall:
    call_id: str
    leg_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class HangupCaller:
    call_id: str
    reason: EndReason


@dataclass(frozen=True, slots=True)
class ContinueInDialplan:
    call_id: str


# --- facts ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallQueued:
    call_id: str
    queue_id: str
    position: int  # 1 = first in line
    moved_from: str | None = None  # overflow from another queue


@dataclass(frozen=True, slots=True)
class LegEnded:
    call_id: str
    leg_id: str
    operator_id: str
    outcome: str  # busy | no_answer | unreachable | cancelled


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    leg_id: str
    operator_id: str
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    outcome: CallOutcome
    reason: EndReason
    queue_id: str | None
    operator_id: str | None
    wait_seconds: float
    talk_seconds: float


@dataclass(frozen=True, slots=True)
class OperatorStatusChanged:
    """Published when the status or its reason changes (busy on_call -> busy wrapup too).

    `reason` is the shown status's detail (on_call, wrapup, unreachable, or the pause
    reason); `pause_reason` is set only while the operator is paused, whatever is shown.
    """

    operator_id: str
    status: OperatorStatus
    reason: str | None
    pause_reason: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorLoggedIn:
    """The operator left offline (presence set, phone reachable again): once per offline spell."""

    operator_id: str
    extension: str


Action = (
    AnswerCaller
    | HoldCaller
    | RingOperator
    | CancelLeg
    | ConnectCall
    | HangupCaller
    | ContinueInDialplan
)
Fact = CallQueued | LegEnded | CallAnswered | CallEnded | OperatorStatusChanged | OperatorLoggedIn
Command = Action | Fact
