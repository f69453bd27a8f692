"""Who may see a live event: pure rules, no I/O.

An event's *audience* is fixed once, when it is published (the operators and groups it
concerns, as known then), so a replayed event is filtered exactly as it was live. Viewers
are then matched against it in O(1), whatever the number of connected clients.

The rules follow the REST call scopes (`services/calls.py`, `CallScope`):
- admins and managers see everything;
- a supervisor sees events of operators in their group, of calls rung for or answered by
  those operators or queued in a queue one of them is a member of, and `queue_stats`;
  a supervisor without a group sees only `queue_stats`;
- an operator sees their own status and the calls they were rung for or answered;
- supervision events are seen as their call's events are, except by operators: a supervisor
  listening in is not announced to the operator listened to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from callcenterd.domain.users import Role
from callcenterd.events.payloads import CALLBACK_STEPS

CALL_EVENTS = frozenset(
    {
        "call_started",
        "call_queued",
        "call_ringing",
        "call_answered",
        "call_ended",
        # hold and transfers (issue 11)
        "call_held",
        "call_unheld",
        "call_transfer_started",
        "call_transferred",
        "call_transfer_failed",
    }
)
OPERATOR_EVENTS = frozenset({"operator_status_changed", "operator_logged_in"})
SUPERVISION_EVENTS = frozenset({"supervision_started", "supervision_changed", "supervision_ended"})
# Seen as their call's events are: by its queue's groups and its operator.
CALLBACK_EVENTS = frozenset(f"callback_{step}" for step in CALLBACK_STEPS)
QUEUE_STATS = "queue_stats"
EVENT_TYPES = CALL_EVENTS | OPERATOR_EVENTS | SUPERVISION_EVENTS | CALLBACK_EVENTS | {QUEUE_STATS}
# Calls followed at once; a call whose end was never published is forgotten after this many.
CALLS_TRACKED = 100_000

GroupOf = Callable[[str], str | None]  # operator id -> group id
QueueMembers = Callable[[str], Iterable[str]]  # queue id -> member operator ids
QueueOfCall = Callable[[str], str | None]  # call id -> queue id, when routing knows it


@dataclass(frozen=True, slots=True)
class Audience:
    """Whom an event concerns. Empty: only admins and managers."""

    operator_ids: frozenset[str] = frozenset()
    group_ids: frozenset[str] = frozenset()
    supervisors: bool = False  # every supervisor (queue_stats)


@dataclass(frozen=True, slots=True)
class Viewer:
    """A connected user, as the filter needs them."""

    user_id: str
    role: Role
    group_id: str | None = None
    operator_id: str | None = None  # the operator row of an operator user


def may_see(viewer: Viewer, audience: Audience) -> bool:
    if viewer.role in (Role.ADMIN, Role.MANAGER):
        return True
    if viewer.role is Role.SUPERVISOR:
        return audience.supervisors or (
            viewer.group_id is not None and viewer.group_id in audience.group_ids
        )
    return viewer.operator_id is not None and viewer.operator_id in audience.operator_ids


def wants(types: frozenset[str] | None, event_type: str) -> bool:
    """The client's subscription: None means every event type."""
    return types is None or event_type in types


@dataclass(slots=True)
class _TrackedCall:
    queue_id: str | None = None
    operator_ids: set[str] | None = None


class AudienceTracker:
    """Fixes each event's audience, following calls from event to event.

    `call_ended` carries no operator and `call_started` no queue: the tracker remembers, per
    call, the queue and every operator rung or answering, from the events before. The lookups
    are in-memory (the operator -> group map, the routing engine's queues), never the database.
    """

    def __init__(
        self,
        group_of: GroupOf,
        queue_members: QueueMembers,
        queue_of_call: QueueOfCall,
        max_calls: int = CALLS_TRACKED,
    ) -> None:
        self._group_of = group_of
        self._queue_members = queue_members
        self._queue_of_call = queue_of_call
        self._max_calls = max_calls
        self._calls: dict[str, _TrackedCall] = {}  # insertion order: oldest first

    def calls_tracked(self) -> int:
        return len(self._calls)

    def audience(self, event_type: str, data: dict[str, object]) -> Audience:
        if event_type == QUEUE_STATS:
            return Audience(supervisors=True)
        if event_type in OPERATOR_EVENTS:
            operator_id = _text(data.get("operator_id"))
            return self._of(set() if operator_id is None else {operator_id}, None)
        call_id = _text(data.get("call_id"))
        if event_type in SUPERVISION_EVENTS and call_id is not None:
            return self._supervision(call_id)
        if event_type in CALLBACK_EVENTS and call_id is None:
            operator_id = _text(data.get("operator_id"))
            return self._of(
                set() if operator_id is None else {operator_id}, _text(data.get("queue_id"))
            )
        if event_type not in CALL_EVENTS | CALLBACK_EVENTS or call_id is None:
            return Audience()
        call = self._follow(call_id, data)
        audience = self._of(call.operator_ids or set(), call.queue_id)
        if event_type == "call_ended":
            self._calls.pop(call_id, None)
        return audience

    def _supervision(self, call_id: str) -> Audience:
        """The groups of the call's operators and queue; no operator."""
        call = self._calls.get(call_id) or _TrackedCall(queue_id=self._queue_of_call(call_id))
        return Audience(group_ids=self._of(call.operator_ids or set(), call.queue_id).group_ids)

    def _follow(self, call_id: str, data: dict[str, object]) -> _TrackedCall:
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _TrackedCall(queue_id=self._queue_of_call(call_id))
            if len(self._calls) > self._max_calls:
                del self._calls[next(iter(self._calls))]
        queue_id = _text(data.get("queue_id"))
        if queue_id is not None:
            call.queue_id = queue_id
        operator_id = _text(data.get("operator_id"))
        if operator_id is not None:
            if call.operator_ids is None:
                call.operator_ids = set()
            call.operator_ids.add(operator_id)
        return call

    def _of(self, operator_ids: set[str], queue_id: str | None) -> Audience:
        members = self._queue_members(queue_id) if queue_id is not None else ()
        groups = {
            group
            for operator_id in (*operator_ids, *members)
            if (group := self._group_of(operator_id)) is not None
        }
        return Audience(frozenset(operator_ids), frozenset(groups))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
