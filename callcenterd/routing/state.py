"""The engine's bookkeeping: operators, queues, waiting calls, ringing legs, deadlines."""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import NamedTuple

from callcenterd.domain.pauses import UNSPECIFIED_PAUSE_REASON
from callcenterd.domain.queues import OperatorProfile, Presence, QueueConfig
from callcenterd.domain.users import OperatorStatus
from callcenterd.routing.wait_estimate import HandleTime

# How a queue's strategy orders its available members: (penalty, metric, order, operator id).
# Penalty first, so each penalty tier is one contiguous run; the operator id makes keys unique.
SortKey = tuple[int, float, int, str]


def tier_start(penalty: int) -> SortKey:
    """A key sorting before every real key of this penalty tier (and after lower tiers)."""
    return (penalty, float("-inf"), -1, "")


@dataclass(slots=True)
class OperatorState:
    profile: OperatorProfile
    reachable: bool = True
    talking: set[str] = field(default_factory=set)  # call ids
    ringing: dict[str, None] = field(default_factory=dict)  # leg ids, in the order rung
    wrapup_until: float = 0.0
    misses: int = 0  # consecutive unanswered rings (autopause)
    available: bool = False  # as last published to the queues' indexes
    logged_in: bool = False  # as last published to the queues' indexes
    # (status, its detail, the pause reason) as last published
    shown: tuple[OperatorStatus, str | None, str | None] = (OperatorStatus.OFFLINE, None, None)
    queues: dict[str, int] = field(default_factory=dict)  # queue id -> penalty

    @property
    def id(self) -> str:
        return self.profile.id

    def is_available(self, now: float) -> bool:
        return (
            self.profile.presence is Presence.ONLINE
            and self.reachable
            and now >= self.wrapup_until
            and len(self.talking) + len(self.ringing) < self.profile.max_concurrent_calls
        )

    def is_logged_in(self) -> bool:
        return self.profile.presence is not Presence.OFFLINE and self.reachable

    def pause_reason(self) -> str | None:
        """Why the operator is paused (None when not paused)."""
        if self.profile.presence is not Presence.PAUSED:
            return None
        return self.profile.pause_reason or UNSPECIFIED_PAUSE_REASON

    def status(self, now: float) -> tuple[OperatorStatus, str | None]:
        if not self.reachable:
            return OperatorStatus.OFFLINE, "unreachable"
        if self.profile.presence is Presence.OFFLINE:
            return OperatorStatus.OFFLINE, None
        if self.profile.presence is Presence.PAUSED:
            return OperatorStatus.BUSY, self.pause_reason()
        if self.talking:
            return OperatorStatus.BUSY, "on_call"
        if now < self.wrapup_until:
            return OperatorStatus.BUSY, "wrapup"
        return OperatorStatus.ONLINE, None


@dataclass(slots=True)
class MemberStats:
    last_call_end: float = float("-inf")
    calls_completed: int = 0


class AvailableIndex:
    """A queue's available members, kept sorted by the queue strategy's key.

    Lookups are binary searches (O(log n)); adding or removing a member shifts a list of
    pointers (a memmove: well under a microsecond for the thousands of members a queue has),
    so a pick never scans the queue's members.
    """

    __slots__ = ("_by_op", "_key", "keys")

    def __init__(self, key: Callable[[str], SortKey]) -> None:
        self._key = key
        self._by_op: dict[str, SortKey] = {}
        self.keys: list[SortKey] = []  # sorted; read it, never write it

    def add(self, operator_id: str) -> None:
        if operator_id in self._by_op:
            return
        key = self._key(operator_id)
        self._by_op[operator_id] = key
        insort(self.keys, key)

    def discard(self, operator_id: str) -> None:
        key = self._by_op.pop(operator_id, None)
        if key is not None:
            del self.keys[bisect_left(self.keys, key)]

    def rekey(self, operator_id: str) -> None:
        """The member's key changed (stats, penalty, order): move them."""
        if operator_id in self._by_op:
            self.discard(operator_id)
            self.add(operator_id)

    def clear(self) -> None:
        self._by_op.clear()
        self.keys.clear()

    def key_of(self, operator_id: str) -> SortKey | None:
        return self._by_op.get(operator_id)

    def tier_end(self, penalty: int, lo: int = 0) -> int:
        """The index just past the last member of this penalty tier."""
        return bisect_left(self.keys, tier_start(penalty + 1), lo)

    def __contains__(self, operator_id: object) -> bool:
        return operator_id in self._by_op

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[str]:
        return (key[3] for key in self.keys)


class QueueState:
    __slots__ = (
        "available",
        "config",
        "declared",
        "handle",
        "logged_in",
        "members",
        "position",
        "ready",
        "rr_last",
        "stats",
        "waiting",
    )

    def __init__(
        self,
        config: QueueConfig,
        sort_key: Callable[[QueueState, str], SortKey],
        handle_prior: float,
    ) -> None:
        self.config = config
        self.declared: dict[str, int] = {}  # config.members: operator id -> penalty
        self.members: dict[str, int] = {}  # eligible members (skills checked) -> penalty
        self.position: dict[str, int] = {}  # member order, for rr/linear and tie-breaks
        self.available = AvailableIndex(lambda operator_id: sort_key(self, operator_id))
        self.logged_in: set[str] = set()  # members not offline (join_empty)
        self.waiting: dict[str, None] = {}  # call ids
        # heap of (-priority, arrived, seq, id): the call's sort key, then id; lazy deletion
        self.ready: list[tuple[int, float, int, str]] = []
        self.stats: dict[str, MemberStats] = {}
        self.rr_last: str | None = None
        self.handle = HandleTime(handle_prior)  # recent talk + wrap-up (wait estimates)

    def push_ready(self, call: CallState) -> None:
        heapq.heappush(self.ready, (*call.sort_key(), call.id))

    def head_ready(self, calls: dict[str, CallState]) -> CallState | None:
        """The first waiting call free to ring someone (stale heap entries dropped)."""
        while self.ready:
            call = calls.get(self.ready[0][3])
            if call is not None and call.is_ready(self.config.id):
                return call
            heapq.heappop(self.ready)
        return None

    def member_stats(self, operator_id: str) -> MemberStats:
        stats = self.stats.get(operator_id)
        if stats is None:
            stats = self.stats[operator_id] = MemberStats()
        return stats


@dataclass(slots=True)
class CallbackEntry:
    """What makes a waiting entry a callback: it has no channel until the caller is dialed."""

    id: str  # the callback's
    attempts: int = 0  # dials of the caller so far
    dial_leg: str | None = None  # the channel dialing the caller, while it rings
    bridged: bool = False  # the caller answered and talks to the operator


class CallPhase(Enum):
    WAITING = auto()
    CONNECTED = auto()


@dataclass(slots=True)
class TransferState:
    """A transfer under way: the target's leg rings (blind to an operator, attended) or
    talks with the operator (attended, answered)."""

    mode: str  # blind | attended
    from_operator: str
    target: str  # the target operator's id
    leg_id: str
    held_before: bool = False  # attended: the caller was already on hold when it began
    answered: bool = False


@dataclass(slots=True)
class CallState:
    id: str
    caller_number: str
    queue_id: str
    arrived_at: float
    seq: int  # renewed when the call moves queue: stale max-wait timers know themselves
    phase: CallPhase = CallPhase.WAITING
    legs: dict[str, str] = field(default_factory=dict)  # ringing leg id -> operator id
    tried: set[str] = field(default_factory=set)  # operators rung in this round
    retry_at: float = 0.0
    retry_pending: bool = False
    leg_count: int = 0
    answered: bool = False  # the caller's channel (auto-answer)
    connected_leg: str | None = None
    operator_id: str | None = None
    connected_at: float = 0.0  # the first answer: the call's wait ends, its duration starts
    # Transfers and hold: the current operator's part began at `segment_at`; `talked` is the
    # talk of earlier parts; `last_operator` answered last (a transferred caller waiting again).
    segment_at: float = 0.0
    talked: float = 0.0
    last_operator: str | None = None
    held_since: float | None = None
    transfer: TransferState | None = None
    priority: int = 0  # the caller's: higher first within the queue
    greeting_due: bool = False  # a fresh caller hears the queue's greeting once answered
    announced_position: int | None = None  # the place in line the caller was last told
    reserved_for: str | None = None  # waits for this operator (last-operator routing)
    callback_offered: bool = False  # the caller was told they may press 1
    callback: CallbackEntry | None = None  # set on a callback's entry (no caller channel)

    def is_ready(self, queue_id: str) -> bool:
        return (
            self.phase is CallPhase.WAITING
            and self.queue_id == queue_id
            and not self.legs
            and not self.retry_pending
            and self.reserved_for is None
        )

    def sort_key(self) -> tuple[int, float, int]:
        """Order within a queue: higher priority, then arrival (kept across overflow), then
        engine sequence."""
        return (-self.priority, self.arrived_at, self.seq)

    def next_leg_id(self) -> str:
        self.leg_count += 1
        return f"{self.id}-{self.leg_count}"


class Due(Enum):
    ANSWER = auto()  # auto-answer delay elapsed
    MAX_WAIT = auto()
    RING_TIMEOUT = auto()
    RETRY = auto()
    WRAPUP_END = auto()
    MAX_DURATION = auto()
    ANNOUNCE = auto()  # time to tell a waiting caller their place in line
    RESERVATION_END = auto()  # a caller stops waiting for their last operator
    CALLBACK_OFFER = auto()  # time to offer a waiting caller a callback


class Deadline(NamedTuple):
    """A timer. A tuple so the heap compares in C: (at, seq) decide, seq being unique."""

    at: float
    seq: int
    due: Due
    ref: str  # call, leg or operator id
    token: float = 0.0  # what the timer was set for


class Deadlines:
    """A heap of timers; the engine tells stale ones from live ones when they surface."""

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._seq = 0

    def add(self, at: float, due: Due, ref: str, token: float = 0.0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, Deadline(at, self._seq, due, ref, token))

    def peek(self) -> Deadline | None:
        return self._heap[0] if self._heap else None

    def pop(self) -> Deadline:
        return heapq.heappop(self._heap)

    def due(self, now: float) -> bool:
        return bool(self._heap) and self._heap[0].at <= now

    def __len__(self) -> int:
        return len(self._heap)
