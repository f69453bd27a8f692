"""What the routing engine is told: plain values, times passed beside them, never read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callcenterd.domain.queues import OperatorProfile, Presence, QueueConfig


class LegFailure(StrEnum):
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class CallArrived:
    call_id: str
    caller_number: str
    called_number: str | None = None
    queue_hint: str | None = None  # first Stasis argument: a queue's asterisk_name
    # Set when the call is re-adopted after a restart: its original arrival time, and how
    # many operator legs it already had (new leg ids must not repeat theirs).
    arrived_at: float | None = None
    legs_used: int = 0
    priority: int = 0  # higher is served first; equal priorities in arrival order
    last_operator: str | None = None  # who served this number last (last-operator routing)
    # A re-adopted call that had talked (a transfer under way at the restart): with whom
    # last, since when, and its talk so far; it waits again as a transferred caller does.
    talked: TalkSoFar | None = None


@dataclass(frozen=True, slots=True)
class TalkSoFar:
    operator_id: str
    connected_at: float
    seconds: float


@dataclass(frozen=True, slots=True)
class CallResumed:
    """A call found talking after a restart: caller and operator still bridged."""

    call_id: str
    caller_number: str
    queue_id: str
    arrived_at: float
    operator_id: str
    leg_id: str
    connected_at: float
    held_at: float | None = None  # on hold when the daemon stopped: since then
    finish_hold: bool = False  # ... but the caller is not in the holding bridge yet


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    call_id: str


@dataclass(frozen=True, slots=True)
class CallLost:
    """The caller's channel vanished while events were not seen (Asterisk crash, lost link):
    nobody knows who hung up. The call ends with reason `lost`."""

    call_id: str


@dataclass(frozen=True, slots=True)
class LegRinging:
    leg_id: str


@dataclass(frozen=True, slots=True)
class LegAnswered:
    leg_id: str


@dataclass(frozen=True, slots=True)
class LegFailed:
    leg_id: str
    reason: LegFailure


@dataclass(frozen=True, slots=True)
class LegHungUp:
    leg_id: str


@dataclass(frozen=True, slots=True)
class OperatorUpserted:
    operator: OperatorProfile


@dataclass(frozen=True, slots=True)
class OperatorRemoved:
    operator_id: str


@dataclass(frozen=True, slots=True)
class OperatorPresenceSet:
    operator_id: str
    presence: Presence
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorReachability:
    operator_id: str
    reachable: bool


@dataclass(frozen=True, slots=True)
class QueueUpserted:
    queue: QueueConfig


@dataclass(frozen=True, slots=True)
class QueueRemoved:
    queue_id: str


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    auto_answer_delay: float
    max_call_duration: float  # 0: unlimited
    queue_timeout: float  # the max wait of queues that set none; 0: no limit
    callback_enabled: bool = False  # callbacks offered in queues that do not say


@dataclass(frozen=True, slots=True)
class CallerDigit:
    """The caller pressed a key (DTMF). The ids a callback booked by this key would take
    come with it (the core draws no ids)."""

    call_id: str
    digit: str
    callback_id: str = ""
    callback_call_id: str = ""


@dataclass(frozen=True, slots=True)
class CallbackAdded:
    """A callback the engine must serve: booked through the API, or re-adopted after a
    restart. `place_at` is the arrival that keeps its place in line; it is not dialed
    before `not_before`."""

    call_id: str  # the callback's own call (engine entry and record)
    callback_id: str
    number: str
    queue_id: str
    place_at: float
    priority: int = 0
    not_before: float = 0.0
    attempts: int = 0
    legs_used: int = 0


@dataclass(frozen=True, slots=True)
class CallbackCancelled:
    call_id: str


@dataclass(frozen=True, slots=True)
class CallbackRescheduled:
    call_id: str
    not_before: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: deadlines (ring timeouts, max wait, wrap-up...) up to `now` fire."""


# --- hold and transfers (issue 11, parts 1-2): asked through the API or seen on the phones ---
class TransferMode(StrEnum):
    BLIND = "blind"
    ATTENDED = "attended"


class TargetKind(StrEnum):
    OPERATOR = "operator"
    QUEUE = "queue"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class HoldRequested:
    call_id: str


@dataclass(frozen=True, slots=True)
class UnholdRequested:
    call_id: str


@dataclass(frozen=True, slots=True)
class TransferRequested:
    """`target` is an operator or queue id, or for `external` the number to dial in
    `context` (the configured dialplan context that reaches the trunk)."""

    call_id: str
    mode: TransferMode
    kind: TargetKind
    target: str
    context: str | None = None


@dataclass(frozen=True, slots=True)
class LegReplaced:
    """A transfer made on the operator's phone (SIP REFER): Asterisk put `channel_id` (a
    Local channel) in the operator leg's place beside the caller. Blind, it dials `number`;
    attended (`answered`), it is already joined with `number`'s phone, which the operator had
    consulted. `operator_id`: the operator whose extension `number` is, when it is one."""

    leg_id: str
    channel_id: str
    number: str
    operator_id: str | None
    answered: bool = False


@dataclass(frozen=True, slots=True)
class TransferCompleteRequested:
    call_id: str


@dataclass(frozen=True, slots=True)
class TransferCancelRequested:
    call_id: str


Event = (
    CallArrived
    | CallResumed
    | CallerHungUp
    | CallLost
    | LegRinging
    | LegAnswered
    | LegFailed
    | LegHungUp
    | OperatorUpserted
    | OperatorRemoved
    | OperatorPresenceSet
    | OperatorReachability
    | QueueUpserted
    | QueueRemoved
    | SettingsChanged
    | CallerDigit
    | CallbackAdded
    | CallbackCancelled
    | CallbackRescheduled
    | Tick
    | HoldRequested
    | UnholdRequested
    | TransferRequested
    | LegReplaced
    | TransferCompleteRequested
    | TransferCancelRequested
)
