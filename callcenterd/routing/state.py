"""The engine's bookkeeping: operators, queues, waiting calls, ringing legs, deadlines."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from enum import Enum, auto

from callcenterd.domain.queues import OperatorProfile, Presence, QueueConfig
from callcenterd.domain.users import OperatorStatus


@dataclass(slots=True)
class OperatorState:
    profile: OperatorProfile
    reachable: bool = True
    talking: set[str] = field(default_factory=set)  # call ids
    ringing: set[str] = field(default_factory=set)  # leg ids
    wrapup_until: float = 0.0
    misses: int = 0  # consecutive unanswered rings (autopause)
    available: bool = False  # as last published to the queues' indexes
    shown: OperatorStatus = OperatorStatus.OFFLINE
    logged_out: bool = True  # offline since last seen available: next "online" is a login
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

    def status(self, now: float) -> tuple[OperatorStatus, str | None]:
        if not self.reachable:
            return OperatorStatus.OFFLINE, "unreachable"
        if self.profile.presence is Presence.OFFLINE:
            return OperatorStatus.OFFLINE, None
        if self.profile.presence is Presence.PAUSED:
            return OperatorStatus.BUSY, self.profile.pause_reason or "paused"
        if self.talking:
            return OperatorStatus.BUSY, "on_call"
        if now < self.wrapup_until:
            return OperatorStatus.BUSY, "wrapup"
        return OperatorStatus.ONLINE, None


@dataclass(slots=True)
class MemberStats:
    last_call_end: float = float("-inf")
    calls_completed: int = 0


@dataclass(slots=True)
class QueueState:
    config: QueueConfig
    members: dict[str, int] = field(default_factory=dict)  # operator id -> penalty, in order
    position: dict[str, int] = field(default_factory=dict)  # member order, for rr/linear
    available: dict[str, None] = field(default_factory=dict)  # ordered set of available members
    waiting: dict[str, None] = field(default_factory=dict)  # call ids in arrival order
    ready: list[tuple[float, int, str]] = field(default_factory=list)  # heap (arrived, seq, id)
    stats: dict[str, MemberStats] = field(default_factory=dict)
    rr_last: str | None = None

    def push_ready(self, call: CallState) -> None:
        heapq.heappush(self.ready, (call.arrived_at, call.seq, call.id))

    def head_ready(self, calls: dict[str, CallState]) -> CallState | None:
        """The first waiting call free to ring someone (stale heap entries dropped)."""
        while self.ready:
            call = calls.get(self.ready[0][2])
            if call is not None and call.is_ready(self.config.id):
                return call
            heapq.heappop(self.ready)
        return None

    def member_stats(self, operator_id: str) -> MemberStats:
        stats = self.stats.get(operator_id)
        if stats is None:
            stats = self.stats[operator_id] = MemberStats()
        return stats


class CallPhase(Enum):
    WAITING = auto()
    CONNECTED = auto()


@dataclass(slots=True)
class CallState:
    id: str
    caller_number: str
    queue_id: str
    arrived_at: float
    seq: int
    phase: CallPhase = CallPhase.WAITING
    legs: dict[str, str] = field(default_factory=dict)  # ringing leg id -> operator id
    tried: set[str] = field(default_factory=set)  # operators rung in this round
    retry_at: float = 0.0
    retry_pending: bool = False
    leg_count: int = 0
    answered: bool = False  # the caller's channel (auto-answer)
    connected_leg: str | None = None
    operator_id: str | None = None
    connected_at: float = 0.0

    def is_ready(self, queue_id: str) -> bool:
        return (
            self.phase is CallPhase.WAITING
            and self.queue_id == queue_id
            and not self.legs
            and not self.retry_pending
        )

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


@dataclass(order=True, frozen=True, slots=True)
class Deadline:
    at: float
    seq: int
    due: Due = field(compare=False)
    ref: str = field(compare=False)  # call, leg or operator id
    token: float = field(compare=False, default=0.0)  # what `at` referred to when set


class Deadlines:
    """A heap of timers; stale ones are checked and dropped by the engine when they fire."""

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._seq = 0

    def add(self, at: float, due: Due, ref: str, token: float = 0.0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, Deadline(at, self._seq, due, ref, token))

    def pop_due(self, now: float) -> Deadline | None:
        if self._heap and self._heap[0].at <= now:
            return heapq.heappop(self._heap)
        return None

    def next_at(self) -> float | None:
        return self._heap[0].at if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
