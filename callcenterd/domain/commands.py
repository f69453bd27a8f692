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
    TRANSFERRED = "transferred"  # blind transfer out to an external number
    # missed
    ABANDONED = "abandoned"
    TIMEOUT = "timeout"
    NO_OPERATOR = "no_operator"
    REJECTED = "rejected"
    LOST = "lost"
    CALLBACK = "callback"  # the caller chose to be called back (they keep their place)
    CALLBACK_FAILED = "callback_failed"  # a callback's caller was never reached
    CALLBACK_CANCELLED = "callback_cancelled"


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
class GreetCaller:
    """Play the queue's greeting to a caller who just joined it (over the music)."""

    call_id: str
    sound: str


@dataclass(frozen=True, slots=True)
class AnnounceWait:
    """Tell a waiting caller their place in line (1 = next) and, when the queue says so and
    an estimate exists, the seconds still to wait."""

    call_id: str
    position: int
    wait_seconds: float | None


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


@dataclass(frozen=True, slots=True)
class OfferCallback:
    """Tell a waiting caller they may press 1 to be called back instead of waiting."""

    call_id: str


@dataclass(frozen=True, slots=True)
class ConfirmCallback:
    """Tell the caller their callback is booked, then hang their channel up."""

    call_id: str


@dataclass(frozen=True, slots=True)
class DialCallback:
    """The operator took a callback: dial the caller back on `dial_leg_id` (the channel id)
    with the queue's caller id; the dial's answer bridges them with `operator_leg_id`."""

    call_id: str
    operator_leg_id: str
    operator_id: str
    dial_leg_id: str
    number: str
    queue_id: str
    caller_id: str | None  # the queue's first number; None: the configured default
    timeout: float


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
    transferred: bool = False  # a later operator after a transfer: not the call's first answer


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    outcome: CallOutcome
    reason: EndReason
    queue_id: str | None
    operator_id: str | None
    wait_seconds: float
    talk_seconds: float
    held_seconds: float = 0.0  # a hold still running when the call ended


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


# --- hold and transfers (issue 11, parts 1-2) ------------------------------------------------
class Refusal(StrEnum):
    """Why the engine refused a hold or transfer request (the service makes it an error)."""

    NOT_ANSWERED = "not_answered"
    ALREADY_HELD = "already_held"
    NOT_HELD = "not_held"
    TRANSFER_IN_PROGRESS = "transfer_in_progress"
    NO_TRANSFER = "no_transfer"
    CONSULT_NOT_ANSWERED = "consult_not_answered"
    TARGET_UNKNOWN = "target_unknown"
    TARGET_SELF = "target_self"
    TARGET_OFFLINE = "target_offline"
    TARGET_BUSY = "target_busy"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class Refused:
    """Not an action: the answer to a request the call's state does not allow."""

    call_id: str
    refusal: Refusal
    detail: str


@dataclass(frozen=True, slots=True)
class ParkCaller:
    """Take the caller out of the conversation into music on hold. `keep_talk`: the operator
    stays in the talk bridge (hold, consultation); else the talk bridge is torn down (blind
    transfer: a new conversation will be bridged)."""

    call_id: str
    music_class: str
    keep_talk: bool


@dataclass(frozen=True, slots=True)
class ResumeCaller:
    """Music off, the caller back into the talk bridge (with whoever is in it now)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class JoinLeg:
    """Bridge a consulted operator's leg with the operator (the caller stays on hold)."""

    call_id: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class SendToDialplan:
    """The caller leaves the application for `extension@context` (an external number)."""

    call_id: str
    context: str
    extension: str


@dataclass(frozen=True, slots=True)
class CallHeld:
    call_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class CallUnheld:
    call_id: str
    operator_id: str
    held_seconds: float


@dataclass(frozen=True, slots=True)
class TransferStarted:
    """A consultation (attended) or a ring to the target (blind to an operator) began."""

    call_id: str
    mode: str
    from_operator_id: str
    target_kind: str
    target: str
    leg_id: str | None


@dataclass(frozen=True, slots=True)
class ConsultAnswered:
    call_id: str
    leg_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """The operator's part of the call is over: `from_leg_id` ends as transferred.

    `held_seconds`: the hold still running at that moment (counted to the leaving operator);
    `to_leg_id`: the target's leg when it is already talking (attended)."""

    call_id: str
    mode: str
    from_operator_id: str
    from_leg_id: str
    target_kind: str
    target: str
    to_leg_id: str | None
    held_seconds: float


@dataclass(frozen=True, slots=True)
class TransferFailed:
    """The target did not take the call (busy, no answer, declined, cancelled, hung up): the
    caller is back with the operator (attended) or in their queue (blind to an operator).
    `leg_id` was talking (an answered consultation) when `answered`."""

    call_id: str
    mode: str
    from_operator_id: str
    target: str
    leg_id: str
    reason: str
    answered: bool
    held_seconds: float


@dataclass(frozen=True, slots=True)
class TransferRinging:
    """A phone transfer's target rings (Asterisk dials it, not the daemon)."""

    call_id: str
    leg_id: str
    operator_id: str


TransferFact = (
    CallHeld
    | CallUnheld
    | TransferStarted
    | ConsultAnswered
    | CallTransferred
    | TransferFailed
    | TransferRinging
)


class CallbackStatus(StrEnum):
    PENDING = "pending"  # waiting its turn (or its scheduled time) in the queue
    DIALING = "dialing"  # an operator took it; the caller is being dialed
    COMPLETED = "completed"  # the caller answered and was bridged to the operator
    FAILED = "failed"  # the caller was not reached in the allowed attempts
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class CallbackChanged:
    """A callback's step: `requested` (a caller pressed 1; `existing` when one was already
    pending for their number and queue), `scheduled` (waits until `at`), `dialing`,
    `completed`, `failed`. `call_id` is the callback's own call (its engine entry and
    record); `origin_call_id` the call it came from."""

    callback_id: str
    call_id: str
    event: str  # requested | scheduled | dialing | completed | failed
    attempts: int = 0
    operator_id: str | None = None
    at: float | None = None  # scheduled: not before this time
    origin_call_id: str | None = None
    queue_id: str | None = None
    number: str | None = None
    place_at: float | None = None  # requested: the arrival that keeps the caller's place
    priority: int = 0
    existing: bool = False
    reason: str | None = None  # failed: how the last dial ended (busy, no_answer...)


Action = (
    AnswerCaller
    | HoldCaller
    | GreetCaller
    | AnnounceWait
    | RingOperator
    | CancelLeg
    | ConnectCall
    | HangupCaller
    | ContinueInDialplan
    | ParkCaller
    | ResumeCaller
    | JoinLeg
    | SendToDialplan
    | OfferCallback
    | ConfirmCallback
    | DialCallback
)
Fact = (
    CallbackChanged
    | CallQueued
    | LegEnded
    | CallAnswered
    | CallEnded
    | OperatorStatusChanged
    | OperatorLoggedIn
    | TransferFact
)
Command = Action | Fact | Refused
