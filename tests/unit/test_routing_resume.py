"""Calls taken back after a restart: talking calls keep their operator, waiting ones their
place and their wait."""

from __future__ import annotations

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import CallOutcome, EndReason
from callcenterd.domain.queues import Member, OperatorProfile, Presence, QueueConfig
from callcenterd.domain.users import OperatorStatus
from callcenterd.routing import RoutingEngine


def engine_with(operators: list[str]) -> RoutingEngine:
    engine = RoutingEngine()
    for op_id in operators:
        engine.handle(
            ev.OperatorUpserted(OperatorProfile(op_id, f"ext-{op_id}", presence=Presence.ONLINE)),
            0.0,
        )
    engine.handle(
        ev.QueueUpserted(
            QueueConfig(
                "q", "Q", "q", members=tuple(Member(o) for o in operators), max_wait_time=600
            )
        ),
        0.0,
    )
    return engine


def test_a_resumed_call_keeps_its_operator_busy_and_ends_completed() -> None:
    engine = engine_with(["a"])
    out = engine.handle(ev.CallResumed("c1", "555", "q", 100.0, "a", "c1-1", 110.0), 200.0)
    assert out == [cmd.OperatorStatusChanged("a", OperatorStatus.BUSY, "on_call")]
    # A new caller cannot take the busy operator.
    assert not any(
        isinstance(c, cmd.RingOperator)
        for c in engine.handle(ev.CallArrived("c2", "556", queue_hint="q"), 201.0)
    )
    out = engine.handle(ev.LegHungUp("c1-1"), 250.0)
    assert cmd.HangupCaller("c1", EndReason.OPERATOR_HANGUP) in out
    assert (
        cmd.CallEnded("c1", CallOutcome.COMPLETED, EndReason.OPERATOR_HANGUP, "q", "a", 10.0, 140.0)
        in out
    )
    # The operator is free again: the waiting caller rings them now.
    assert any(isinstance(c, cmd.RingOperator) and c.call_id == "c2" for c in out)


def test_a_readopted_waiting_call_keeps_its_place_and_fresh_leg_ids() -> None:
    engine = engine_with(["a"])
    engine.handle(ev.OperatorPresenceSet("a", Presence.PAUSED), 0.0)
    engine.handle(ev.CallArrived("late", "557", queue_hint="q"), 300.0)
    # Re-adopted after a restart: it arrived at 100, before `late`, and already had 2 legs.
    engine.handle(ev.CallArrived("early", "555", None, "q", arrived_at=100.0, legs_used=2), 301.0)
    assert engine.queue_position("early") == 1
    assert engine.queue_position("late") == 2
    out = engine.handle(ev.OperatorPresenceSet("a", Presence.ONLINE), 302.0)
    rings = [c for c in out if isinstance(c, cmd.RingOperator)]
    assert [(r.call_id, r.leg_id) for r in rings] == [("early", "early-3")]


def test_a_readopted_call_overflows_on_its_original_wait() -> None:
    engine = engine_with(["a"])
    engine.handle(ev.OperatorPresenceSet("a", Presence.PAUSED), 0.0)
    engine.handle(ev.CallArrived("c", "555", None, "q", arrived_at=100.0), 650.0)
    out = engine.handle(ev.Tick(), 700.0)  # 600 s of wait were up at 700
    assert any(isinstance(c, cmd.CallEnded) and c.reason is EndReason.TIMEOUT for c in out)


def test_a_call_lost_while_unobserved_ends_with_reason_lost() -> None:
    engine = engine_with(["a"])
    engine.handle(ev.CallResumed("talking", "555", "q", 100.0, "a", "talking-1", 110.0), 200.0)
    engine.handle(ev.CallArrived("waiting", "556", queue_hint="q"), 201.0)
    out = engine.handle(ev.CallLost("talking"), 210.0)
    assert (
        cmd.CallEnded("talking", CallOutcome.COMPLETED, EndReason.LOST, "q", "a", 10.0, 100.0)
        in out
    )
    out = engine.handle(ev.CallLost("waiting"), 211.0)
    ended = [c for c in out if isinstance(c, cmd.CallEnded) and c.call_id == "waiting"]
    assert [(e.outcome, e.reason) for e in ended] == [(CallOutcome.MISSED, EndReason.LOST)]


def test_a_call_resumed_on_hold_can_be_unheld_and_counts_its_hold() -> None:
    engine = engine_with(["a"])
    engine.handle(ev.CallResumed("c1", "555", "q", 100.0, "a", "c1-1", 110.0, held_at=150.0), 200.0)
    out = engine.handle(ev.HoldRequested("c1"), 201.0)
    assert [c.refusal for c in out if isinstance(c, cmd.Refused)] == [cmd.Refusal.ALREADY_HELD]
    out = engine.handle(ev.UnholdRequested("c1"), 210.0)
    assert cmd.ResumeCaller("c1") in out
    assert cmd.CallUnheld("c1", "a", 60.0) in out  # held since 150, before the restart


def test_a_hold_cut_short_by_the_restart_is_finished_and_counted_from_its_request() -> None:
    engine = engine_with(["a"])
    resumed = ev.CallResumed(
        "c1", "555", "q", 100.0, "a", "c1-1", 110.0, held_at=150.0, finish_hold=True
    )
    out = engine.handle(resumed, 200.0)
    assert cmd.ParkCaller("c1", "default", keep_talk=True) in out
    out = engine.handle(ev.UnholdRequested("c1"), 210.0)
    assert cmd.CallUnheld("c1", "a", 60.0) in out


def test_a_call_resumed_on_hold_in_its_holding_bridge_is_not_parked_again() -> None:
    engine = engine_with(["a"])
    out = engine.handle(
        ev.CallResumed("c1", "555", "q", 100.0, "a", "c1-1", 110.0, held_at=150.0), 200.0
    )
    assert not [c for c in out if isinstance(c, cmd.ParkCaller)]


def test_a_caller_readopted_mid_transfer_waits_and_ends_completed_if_it_hangs_up() -> None:
    engine = engine_with(["a"])
    engine.handle(ev.OperatorPresenceSet("a", Presence.PAUSED), 0.0)
    talked = ev.TalkSoFar("b", connected_at=110.0, seconds=40.0)
    out = engine.handle(
        ev.CallArrived("c1", "555", None, "q", arrived_at=100.0, legs_used=2, talked=talked),
        300.0,
    )
    assert not [c for c in out if isinstance(c, cmd.AnswerCaller)]  # answered long ago
    assert cmd.HoldCaller("c1", "default") in out
    assert engine.queue_position("c1") == 1
    out = engine.handle(ev.CallerHungUp("c1"), 320.0)
    assert (
        cmd.CallEnded("c1", CallOutcome.COMPLETED, EndReason.CALLER_HANGUP, "q", "b", 10.0, 40.0)
        in out
    )


def test_a_caller_readopted_mid_transfer_is_answered_as_a_transferred_call() -> None:
    engine = engine_with(["a"])
    talked = ev.TalkSoFar("b", connected_at=110.0, seconds=40.0)
    out = engine.handle(
        ev.CallArrived("c1", "555", None, "q", arrived_at=100.0, legs_used=2, talked=talked),
        300.0,
    )
    [ring] = [c for c in out if isinstance(c, cmd.RingOperator)]
    assert ring.leg_id == "c1-3"
    out = engine.handle(ev.LegAnswered("c1-3"), 305.0)
    assert cmd.CallAnswered("c1", "c1-3", "a", 205.0, transferred=True) in out
