"""After a restart or a lost event stream: what to do with each call, decided from one
snapshot of Asterisk, the open call records and the calls still known. Pure: the
dispatcher fetches the snapshot and carries the plan out.

Calls still in the application are re-adopted (waiting callers keep their place and wait,
talking calls their operator); channels nobody can account for are looked at one by one
(a caller who arrived while we were away is routed, an orphaned operator leg hung up);
every open record whose channel is gone is closed (`completed` if answered, else `missed`
with reason `lost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callcenterd.services.live_calls import LiveCall, hold_bridge_of, talk_bridge_of
from callcenterd.store.calls import OpenCall


@dataclass(frozen=True, slots=True)
class AsteriskSnapshot:
    in_app: frozenset[str]  # channel ids in the application
    bridges: Mapping[str, frozenset[str]]  # bridge id -> its channel ids


# --- what to do ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Resync:
    """A call never forgotten, still there: the legs it lost meanwhile have hung up."""

    call_id: str
    legs_gone: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LostWhileAway:
    """A call never forgotten whose caller is gone."""

    call_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class ResumeTalk:
    """A talking call from before the restart, its operator still on the line."""

    record: OpenCall
    leg_id: str
    holding: bool
    held: bool = False  # the caller is in the holding bridge (on hold, or consulting) ...
    # ... or the record says on hold but the caller is not there yet: the daemon stopped while
    # putting it there (the hold was answered 200), so the hold is finished now.
    finish_hold: bool = False


@dataclass(frozen=True, slots=True)
class EndOrphaned:
    """Answered, but its operator is gone: the conversation cannot go on."""

    record: OpenCall
    holding: bool


@dataclass(frozen=True, slots=True)
class Requeue:
    """A caller who was waiting (or ringing) before the restart: waits again, in place."""

    record: OpenCall
    holding: bool


@dataclass(frozen=True, slots=True)
class CloseLost:
    """An open record whose channel is no longer in the application."""

    record: OpenCall


@dataclass(frozen=True, slots=True)
class LookAtStray:
    """A channel in the application that nothing explains."""

    channel_id: str


Action = Resync | LostWhileAway | ResumeTalk | EndOrphaned | Requeue | CloseLost | LookAtStray


def _adoption(
    record: OpenCall, snapshot: AsteriskSnapshot, holding: bool
) -> ResumeTalk | EndOrphaned | Requeue:
    """A record from before the restart whose caller is still in the application.

    Its operator still in the talk bridge: the talk resumes (held if the caller is in the
    holding bridge, or if the record says held: a hold cut short by the stop is finished; a
    consultation's leg there is a stray, hung up). Answered but no operator
    there while the caller holds: a transfer was under way; the caller waits in its queue
    again, as a transferred caller does. Answered, alone: the conversation is over."""
    talk = snapshot.bridges.get(talk_bridge_of(record.id), frozenset())
    others = sorted(c for c in talk if c != record.channel_id)
    if record.status != "answered":
        return Requeue(record, holding)
    in_hold = record.channel_id in snapshot.bridges.get(hold_bridge_of(record.id), frozenset())
    leg = record.operator_leg if record.operator_leg in others else next(iter(others), None)
    if leg and record.operator_id and record.queue_id:
        unfinished = record.held_at is not None and not in_hold
        return ResumeTalk(record, leg, holding, held=in_hold or unfinished, finish_hold=unfinished)
    if in_hold and record.queue_id:
        return Requeue(record, holding)
    return EndOrphaned(record, holding)


def reconcile(
    snapshot: AsteriskSnapshot,
    records: list[OpenCall],
    live: Mapping[str, LiveCall],
    known_channels: set[str],
) -> list[Action]:
    """The plan, in order: every record's fate first, then the strays.

    Decided from the snapshot alone: carrying the plan out frees operators and rings new
    legs, which the snapshot cannot know and must not judge. `known_channels` are the
    channels (callers and legs) the dispatcher knows, before any of the plan is done.
    """
    in_app = snapshot.in_app
    accounted: set[str] = set()
    actions: list[Action] = []
    for record in records:
        known = live.get(record.id)
        holding = hold_bridge_of(record.id) in snapshot.bridges
        if known is not None:
            if known.channel_id not in in_app:
                actions.append(LostWhileAway(known.call_id, known.channel_id))
                continue
            kept = {leg for leg in known.legs if leg in in_app}
            accounted |= {known.channel_id, *kept}
            actions.append(
                Resync(known.call_id, tuple(leg for leg in known.legs if leg not in kept))
            )
        elif record.channel_id in in_app:
            accounted.add(record.channel_id)
            actions.append(_adoption(record, snapshot, holding))
            if isinstance(actions[-1], ResumeTalk):
                accounted.add(actions[-1].leg_id)
        else:
            actions.append(CloseLost(record))
    strays = sorted(in_app - accounted - known_channels)
    actions += [LookAtStray(channel_id) for channel_id in strays]
    return actions
