"""What reconciliation decides from one snapshot: every case without an Asterisk."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from callcenterd.services.live_calls import LiveCall
from callcenterd.services.reconciliation import (
    AsteriskSnapshot,
    CloseLost,
    EndOrphaned,
    LookAtStray,
    LostWhileAway,
    Requeue,
    ResumeTalk,
    Resync,
    reconcile,
)
from callcenterd.store.calls import OpenCall

STARTED = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def record(
    call_id: str,
    channel_id: str,
    status: str = "incoming",
    operator_id: str | None = None,
    queue_id: str | None = "q1",
) -> OpenCall:
    return OpenCall(
        id=call_id,
        channel_id=channel_id,
        caller_number="5550001",
        called_number="7000",
        status=status,
        queue_id=queue_id,
        operator_id=operator_id,
        start_time=STARTED,
        answer_time=STARTED if status == "answered" else None,
        legs_used=1,
    )


def snapshot(in_app: set[str], **bridges: set[str]) -> AsteriskSnapshot:
    return AsteriskSnapshot(
        frozenset(in_app), {name: frozenset(members) for name, members in bridges.items()}
    )


def test_a_waiting_caller_from_before_the_restart_waits_again_on_hold() -> None:
    waiting = record("c1", "1.1")
    actions = reconcile(snapshot({"1.1"}, **{"hold-c1": {"1.1"}}), [waiting], {}, set())
    assert actions == [Requeue(waiting, holding=True)]


def test_a_talking_call_with_its_operator_leg_is_resumed() -> None:
    talking = record("c1", "1.1", "answered", operator_id="op1")
    state = snapshot({"1.1", "c1-1"}, **{"talk-c1": {"1.1", "c1-1"}})
    assert reconcile(state, [talking], {}, set()) == [ResumeTalk(talking, "c1-1", holding=False)]


def test_an_answered_call_whose_operator_is_gone_is_ended() -> None:
    orphan = record("c1", "1.1", "answered", operator_id="op1")
    state = snapshot({"1.1"}, **{"talk-c1": {"1.1"}})
    assert reconcile(state, [orphan], {}, set()) == [EndOrphaned(orphan, holding=False)]


def test_a_held_call_resumes_held_with_its_operator() -> None:
    held = record("c1", "1.1", "answered", operator_id="op1")
    state = snapshot({"1.1", "c1-1"}, **{"talk-c1": {"c1-1"}, "hold-c1": {"1.1"}})
    assert reconcile(state, [held], {}, set()) == [
        ResumeTalk(held, "c1-1", holding=True, held=True)
    ]


def test_a_hold_the_stop_cut_short_is_finished() -> None:
    # The record says held; the caller left the conversation but never reached the holding
    # bridge (the daemon was killed between the two requests).
    held = replace(record("c1", "1.1", "answered", operator_id="op1"), held_at=STARTED)
    state = snapshot({"1.1", "c1-1"}, **{"talk-c1": {"c1-1"}})
    assert reconcile(state, [held], {}, set()) == [
        ResumeTalk(held, "c1-1", holding=False, held=True, finish_hold=True)
    ]
    # ... or never left it: the hold is finished too, as it was answered.
    state = snapshot({"1.1", "c1-1"}, **{"talk-c1": {"1.1", "c1-1"}})
    assert reconcile(state, [held], {}, set()) == [
        ResumeTalk(held, "c1-1", holding=False, held=True, finish_hold=True)
    ]


def test_a_consultation_cut_by_the_restart_resumes_the_operator_and_drops_the_target() -> None:
    # The operator's leg is c1-1 (the record says so), c1-2 the consulted target's.
    consulting = replace(record("c1", "1.1", "answered", operator_id="op1"), operator_leg="c1-2")
    state = snapshot({"1.1", "c1-1", "c1-2"}, **{"talk-c1": {"c1-1", "c1-2"}, "hold-c1": {"1.1"}})
    assert reconcile(state, [consulting], {}, set()) == [
        ResumeTalk(consulting, "c1-2", holding=True, held=True),
        LookAtStray("c1-1"),
    ]


def test_a_caller_being_transferred_waits_again_instead_of_being_hung_up() -> None:
    # A blind transfer was ringing its target (a leg outside any bridge): the caller holds.
    moving = record("c1", "1.1", "answered", operator_id="op1")
    state = snapshot({"1.1", "c1-2"}, **{"talk-c1": set(), "hold-c1": {"1.1"}})
    assert reconcile(state, [moving], {}, set()) == [
        Requeue(moving, holding=True),
        LookAtStray("c1-2"),
    ]


def test_an_answered_record_without_operator_or_queue_cannot_resume() -> None:
    no_queue = record("c1", "1.1", "answered", operator_id="op1", queue_id=None)
    state = snapshot({"1.1", "c1-1"}, **{"talk-c1": {"1.1", "c1-1"}})
    # The leg it could not resume belongs to nobody now: looked at (and hung up) as a stray.
    assert reconcile(state, [no_queue], {}, set()) == [
        EndOrphaned(no_queue, holding=False),
        LookAtStray("c1-1"),
    ]


def test_a_record_whose_channel_is_gone_is_closed() -> None:
    gone = record("c1", "1.1")
    assert reconcile(snapshot(set()), [gone], {}, set()) == [CloseLost(gone)]


def test_a_known_call_keeps_the_legs_still_there_and_replays_the_rest() -> None:
    live = LiveCall("c1", "1.1", "5550001", "default", legs={"c1-1": "op1", "c1-2": "op2"})
    actions = reconcile(snapshot({"1.1", "c1-2"}), [record("c1", "1.1")], {"c1": live}, set())
    assert actions == [Resync("c1", legs_gone=("c1-1",))]


def test_a_known_call_whose_caller_left_meanwhile_is_lost() -> None:
    live = LiveCall("c1", "1.1", "5550001", "default", legs={"c1-1": "op1"})
    state = snapshot({"c1-1"})
    actions = reconcile(state, [record("c1", "1.1")], {"c1": live}, {"1.1", "c1-1"})
    # Its leg is known, so it is not a stray: the engine ends it with the call.
    assert actions == [LostWhileAway("c1", "1.1")]


def test_channels_nobody_accounts_for_are_strays_in_order_after_the_records() -> None:
    waiting = record("c1", "1.1")
    state = snapshot({"1.1", "9.9", "2.2", "known-leg"})
    actions = reconcile(state, [waiting], {}, {"known-leg"})
    assert actions == [Requeue(waiting, holding=False), LookAtStray("2.2"), LookAtStray("9.9")]
