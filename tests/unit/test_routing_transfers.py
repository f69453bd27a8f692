"""Hold and transfers in the engine: who talks, who is free, who gets which seconds."""

from __future__ import annotations

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import CallOutcome, EndReason, Refusal
from callcenterd.domain.events import TargetKind, TransferMode
from callcenterd.domain.queues import Presence
from callcenterd.routing import RoutingEngine
from tests.unit.routing_table import (
    ANY,
    BUSY,
    CALLER,
    ONLINE,
    TICK,
    Has,
    Lacks,
    Rings,
    Sub,
    answer,
    arrive,
    build,
    caller_hangup,
    completed,
    ext,
    fail,
    greeted,
    leg_hangup,
    op,
    play,
    presence,
    queue,
    queued,
    ring,
    status,
)

BLIND, ATTENDED = TransferMode.BLIND, TransferMode.ATTENDED


def transfer(
    call_id: str, kind: TargetKind, target: str, mode: TransferMode = BLIND, context: str = ""
) -> ev.TransferRequested:
    return ev.TransferRequested(call_id, mode, kind, target, context or None)


def refused(call_id: str, refusal: Refusal) -> Has:
    """Only the refusal: nothing else changes."""
    return Has(cmd.Refused(call_id, refusal, ANY_DETAIL))


class _AnyDetail(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


ANY_DETAIL = _AnyDetail("")


def talking(engine: RoutingEngine, call_id: str = "c1", operator: str = "a") -> None:
    """c1 arrives at t=1 in q and `operator` answers it at t=2."""
    play(
        engine,
        [
            (1, arrive(call_id, "q"), ANY),
            (2, answer(f"{call_id}-1"), Has(cmd.ConnectCall(call_id, f"{call_id}-1", operator))),
        ],
    )


def refusal_of(engine: RoutingEngine, event: ev.Event, now: float) -> Refusal | None:
    out = engine.handle(event, now)
    found = [c for c in out if isinstance(c, cmd.Refused)]
    if found:
        assert out == found, f"a refused request changed something: {out}"
        return found[0].refusal
    return None


# --- hold ---------------------------------------------------------------------------------------
def test_hold_and_unhold_count_hold_time_apart() -> None:
    engine = build([queue("q", "a")], [op("a")])
    talking(engine)
    play(
        engine,
        [
            (
                10,
                ev.HoldRequested("c1"),
                [cmd.ParkCaller("c1", "default", keep_talk=True), cmd.CallHeld("c1", "a")],
            ),
            (25, ev.UnholdRequested("c1"), [cmd.ResumeCaller("c1"), cmd.CallUnheld("c1", "a", 15)]),
            (30, ev.HoldRequested("c1"), ANY),
            # Hung up while held: the running hold is in the end (5 s), talk is the whole 40 s.
            (
                42,
                caller_hangup("c1"),
                Has(
                    cmd.CallEnded(
                        "c1", CallOutcome.COMPLETED, EndReason.CALLER_HANGUP, "q", "a", 1, 40, 12
                    )
                ),
            ),
        ],
    )


def test_hold_refusals() -> None:
    engine = build([queue("q", "a")], [op("a")])
    engine.handle(arrive("c1", "q"), 1)
    assert refusal_of(engine, ev.HoldRequested("c1"), 1.5) is Refusal.NOT_ANSWERED
    assert refusal_of(engine, ev.HoldRequested("nope"), 1.5) is Refusal.NOT_ANSWERED
    engine.handle(answer("c1-1"), 2)
    assert refusal_of(engine, ev.UnholdRequested("c1"), 3) is Refusal.NOT_HELD
    assert refusal_of(engine, ev.HoldRequested("c1"), 4) is None
    assert refusal_of(engine, ev.HoldRequested("c1"), 5) is Refusal.ALREADY_HELD


# --- blind --------------------------------------------------------------------------------------
def test_blind_to_a_queue_keeps_the_original_arrival_for_priority() -> None:
    engine = build(
        [queue("q", "a"), queue("q2", "b")], [op("a"), op("b", presence=Presence.PAUSED)]
    )
    talking(engine)  # c1 arrived at t=1
    play(
        engine,
        [
            # c2 arrives later straight into q2, where nobody is free.
            (5, arrive("c2", "q2"), Sub(queued("c2", "q2", 1))),
            (
                20,
                transfer("c1", TargetKind.QUEUE, "q2"),
                [
                    cmd.CancelLeg("c1", "c1-1"),
                    cmd.CallTransferred("c1", "blind", "a", "c1-1", "queue", "q2", None, 0.0),
                    status("a", ONLINE),
                    cmd.ParkCaller("c1", "default", keep_talk=False),
                    # Ahead of c2, who arrived after c1 first did.
                    queued("c1", "q2", 1, moved_from="q"),
                ],
            ),
            # The operator's leg hanging up afterwards is not the call ending.
            (20.2, leg_hangup("c1-1"), []),
            # b becomes free: c1 rings first, then is answered as a second part of the call.
            (30, presence("b", Presence.ONLINE), Rings("b")),
            (
                31,
                answer("c1-2"),
                Has(
                    cmd.ConnectCall("c1", "c1-2", "b"),
                    cmd.CallAnswered("c1", "c1-2", "b", 30, transferred=True),
                ),
            ),
            # Talk: 18 s with a, 9 s with b (the 11 s back in line are not talk); wait 1 s.
            (
                40,
                caller_hangup("c1"),
                Has(completed("c1", EndReason.CALLER_HANGUP, "q2", "b", 1, 27)),
            ),
        ],
    )
    assert engine.queue_position("c2") == 1


def test_requeued_position_is_by_first_arrival_among_later_callers() -> None:
    engine = build([queue("q", "a"), queue("q2")], [op("a")])
    engine.handle(arrive("c0", "q2"), 0.5)  # before c1
    talking(engine)
    engine.handle(arrive("c2", "q2"), 5)  # after c1
    out = engine.handle(transfer("c1", TargetKind.QUEUE, "q2"), 20)
    assert queued("c1", "q2", 2, moved_from="q") in out
    assert engine.queue_position("c0") == 1
    assert engine.queue_position("c1") == 2
    assert engine.queue_position("c2") == 3


def test_blind_to_an_operator_rings_only_them_and_splits_the_talk() -> None:
    engine = build([queue("q", "a", "b")], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), ANY),  # ringall: a and b
            (2, answer("c1-1"), ANY),
            (
                12,
                transfer("c1", TargetKind.OPERATOR, "b"),
                Sub(
                    cmd.CancelLeg("c1", "c1-1"),
                    cmd.CallTransferred("c1", "blind", "a", "c1-1", "operator", "b", None, 0.0),
                    cmd.ParkCaller("c1", "default", keep_talk=False),
                    ring("c1", 3, "b"),
                    cmd.TransferStarted("c1", "blind", "a", "operator", "b", "c1-3"),
                ),
            ),
            (13, answer("c1-3"), Has(cmd.CallAnswered("c1", "c1-3", "b", 12, transferred=True))),
            (
                23,
                leg_hangup("c1-3"),
                Has(completed("c1", EndReason.OPERATOR_HANGUP, "q", "b", 1, 20)),
            ),
        ],
    )


def test_blind_to_an_operator_who_does_not_answer_goes_back_to_the_queue() -> None:
    engine = build([queue("q", "a", ring_timeout=5), queue("other", "b")], [op("a"), op("b")])
    talking(engine)
    play(
        engine,
        [
            (10, transfer("c1", TargetKind.OPERATOR, "b"), Rings("b")),
            (
                12,
                fail("c1-2", ev.LegFailure.BUSY),
                Sub(
                    cmd.LegEnded("c1", "c1-2", "b", "busy"),
                    cmd.TransferFailed("c1", "blind", "a", "b", "c1-2", "busy", False, 0.0),
                    queued("c1", "q", 1),
                    ring("c1", 3, "a", 5),  # a is free again (no wrap-up)
                ),
            ),
        ],
    )
    # A refused transfer is not an unanswered ring of b's: no autopause counting.
    assert engine.operators["b"].misses == 0


def test_caller_hanging_up_while_waiting_after_a_transfer_is_completed_not_abandoned() -> None:
    engine = build([queue("q", "a"), queue("q2")], [op("a")])
    talking(engine)
    engine.handle(transfer("c1", TargetKind.QUEUE, "q2"), 12)
    out = engine.handle(caller_hangup("c1"), 20)
    assert completed("c1", EndReason.CALLER_HANGUP, "q2", "a", 1, 10) in out


def test_blind_to_an_external_number_leaves_through_the_dialplan() -> None:
    engine = build([queue("q", "a")], [op("a")])
    talking(engine)
    out = engine.handle(transfer("c1", TargetKind.EXTERNAL, "5559", context="out"), 32)
    assert out == [
        cmd.CancelLeg("c1", "c1-1"),
        cmd.CallTransferred("c1", "blind", "a", "c1-1", "external", "5559", None, 0.0),
        status("a", ONLINE),
        cmd.SendToDialplan("c1", "out", "5559"),
        cmd.CallEnded("c1", CallOutcome.COMPLETED, EndReason.TRANSFERRED, "q", "a", 1, 30),
    ]
    assert engine.handle(caller_hangup("c1"), 33) == []  # it left the application
    assert refusal_of(engine, transfer("c1", TargetKind.QUEUE, "q"), 34) is Refusal.NOT_ANSWERED


def test_transfer_refusals() -> None:
    engine = build(
        [queue("q", "a", "b"), queue("off", is_active=False)],
        [op("a"), op("b"), op("gone", presence=Presence.OFFLINE), op("lunch")],
    )
    engine.handle(presence("lunch", Presence.PAUSED, "lunch"), 0)
    engine.handle(arrive("c1", "q"), 1)
    waiting = transfer("c1", TargetKind.OPERATOR, "b")
    assert refusal_of(engine, waiting, 1.5) is Refusal.NOT_ANSWERED
    engine.handle(answer("c1-1"), 2)  # a has it
    cases = {
        Refusal.TARGET_SELF: transfer("c1", TargetKind.OPERATOR, "a"),
        Refusal.TARGET_OFFLINE: transfer("c1", TargetKind.OPERATOR, "gone"),
        Refusal.TARGET_BUSY: transfer("c1", TargetKind.OPERATOR, "lunch"),
        Refusal.TARGET_UNKNOWN: transfer("c1", TargetKind.QUEUE, "nowhere"),
        Refusal.UNSUPPORTED: transfer("c1", TargetKind.EXTERNAL, "5559"),  # no context
    }
    for refusal, event in cases.items():
        assert refusal_of(engine, event, 3) is refusal, event
    assert refusal_of(engine, transfer("c1", TargetKind.QUEUE, "off"), 3) is Refusal.TARGET_UNKNOWN
    assert refusal_of(engine, transfer("c1", TargetKind.OPERATOR, "x"), 3) is Refusal.TARGET_UNKNOWN
    assert refusal_of(engine, ev.TransferCompleteRequested("c1"), 3) is Refusal.NO_TRANSFER
    assert refusal_of(engine, ev.TransferCancelRequested("c1"), 3) is Refusal.NO_TRANSFER
    engine.handle(transfer("c1", TargetKind.OPERATOR, "b", ATTENDED), 4)
    assert refusal_of(engine, ev.TransferCompleteRequested("c1"), 5) is Refusal.CONSULT_NOT_ANSWERED
    again = transfer("c1", TargetKind.QUEUE, "q")
    assert refusal_of(engine, again, 5) is Refusal.TRANSFER_IN_PROGRESS
    assert refusal_of(engine, ev.HoldRequested("c1"), 5) is Refusal.TRANSFER_IN_PROGRESS


# --- attended -----------------------------------------------------------------------------------
def consulting(engine: RoutingEngine) -> None:
    """c1 talks with a from t=2; at t=10 a consults b, who answers at t=12."""
    talking(engine)
    play(
        engine,
        [
            (
                10,
                transfer("c1", TargetKind.OPERATOR, "b", ATTENDED),
                [
                    cmd.ParkCaller("c1", "default", keep_talk=True),
                    ring("c1", 2, "b", 15),
                    cmd.TransferStarted("c1", "attended", "a", "operator", "b", "c1-2"),
                ],
            ),
            (
                12,
                answer("c1-2"),
                [
                    cmd.JoinLeg("c1", "c1-2"),
                    cmd.ConsultAnswered("c1", "c1-2", "b"),
                    status("b", BUSY, "on_call"),
                ],
            ),
        ],
    )


def test_attended_completed_hands_the_call_over() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    consulting(engine)
    play(
        engine,
        [
            (
                20,
                ev.TransferCompleteRequested("c1"),
                [
                    cmd.CancelLeg("c1", "c1-1"),
                    # a talked 8 s, then the caller was held 10 s during the consultation.
                    cmd.CallTransferred("c1", "attended", "a", "c1-1", "operator", "b", "c1-2", 10),
                    status("a", ONLINE),
                    cmd.ResumeCaller("c1"),
                ],
            ),
            (20.1, leg_hangup("c1-1"), []),
            (
                50,
                caller_hangup("c1"),
                Has(completed("c1", EndReason.CALLER_HANGUP, "q", "b", 1, 48)),
            ),
        ],
    )
    assert engine.operators["a"].talking == set()


def test_attended_cancelled_returns_the_caller_to_the_operator() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    consulting(engine)
    play(
        engine,
        [
            (
                15,
                ev.TransferCancelRequested("c1"),
                [
                    cmd.CancelLeg("c1", "c1-2"),
                    status("b", ONLINE),
                    cmd.ResumeCaller("c1"),
                    cmd.TransferFailed("c1", "attended", "a", "b", "c1-2", "cancelled", True, 5),
                ],
            ),
            (15.2, leg_hangup("c1-2"), []),
            (
                30,
                leg_hangup("c1-1"),
                Has(completed("c1", EndReason.OPERATOR_HANGUP, "q", "a", 1, 28)),
            ),
        ],
    )


def test_attended_refused_or_unanswered_returns_the_caller() -> None:
    engine = build([queue("q", "a", ring_timeout=5)], [op("a"), op("b"), op("c")])
    talking(engine)
    play(
        engine,
        [
            (10, transfer("c1", TargetKind.OPERATOR, "b", ATTENDED), Rings("b")),
            (
                11,
                fail("c1-2", ev.LegFailure.BUSY),
                Sub(
                    cmd.LegEnded("c1", "c1-2", "b", "busy"),
                    cmd.ResumeCaller("c1"),
                    cmd.TransferFailed("c1", "attended", "a", "b", "c1-2", "busy", False, 1),
                ),
            ),
            (12, transfer("c1", TargetKind.OPERATOR, "c", ATTENDED), Rings("c")),
            # c's ring times out after the queue's ring timeout.
            (
                17,
                TICK,
                Sub(
                    cmd.CancelLeg("c1", "c1-3"),
                    cmd.ResumeCaller("c1"),
                    cmd.TransferFailed("c1", "attended", "a", "c", "c1-3", "no_answer", False, 5),
                ),
            ),
        ],
    )
    assert engine.calls["c1"].operator_id == "a"
    assert engine.operators["c"].misses == 0


def test_attended_target_hanging_up_during_the_consultation() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    consulting(engine)
    out = engine.handle(leg_hangup("c1-2"), 14)
    assert cmd.TransferFailed("c1", "attended", "a", "b", "c1-2", "target_hung_up", True, 4) in out
    assert cmd.ResumeCaller("c1") in out
    assert engine.calls["c1"].operator_id == "a"


def test_operator_hanging_up_after_the_target_answered_completes_the_transfer() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    consulting(engine)
    out = engine.handle(leg_hangup("c1-1"), 16)
    assert cmd.CallTransferred("c1", "attended", "a", "c1-1", "operator", "b", "c1-2", 6) in out
    assert [c for c in out if isinstance(c, cmd.CallEnded | cmd.HangupCaller)] == []
    assert engine.calls["c1"].operator_id == "b"


def test_operator_hanging_up_before_the_target_answered_goes_on_as_blind() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    talking(engine)
    engine.handle(transfer("c1", TargetKind.OPERATOR, "b", ATTENDED), 10)
    out = engine.handle(leg_hangup("c1-1"), 11)
    assert cmd.CallTransferred("c1", "blind", "a", "c1-1", "operator", "b", None, 1) in out
    assert Lacks(cmd.CallEnded).what[0] not in {type(c) for c in out}
    out = engine.handle(answer("c1-2"), 13)
    assert cmd.ConnectCall("c1", "c1-2", "b") in out


def test_caller_hanging_up_during_a_consultation_ends_both_legs() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    consulting(engine)
    out = engine.handle(caller_hangup("c1"), 18)
    assert cmd.CancelLeg("c1", "c1-1") in out and cmd.CancelLeg("c1", "c1-2") in out
    ended = next(c for c in out if isinstance(c, cmd.CallEnded))
    assert (ended.operator_id, ended.talk_seconds, ended.held_seconds) == ("a", 16, 8)
    assert engine.operators["b"].talking == set() and engine.operators["a"].talking == set()


def test_caller_number_rides_with_the_transfer_ring() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    talking(engine)
    out = engine.handle(transfer("c1", TargetKind.OPERATOR, "b"), 5)
    [rung] = [c for c in out if isinstance(c, cmd.RingOperator)]
    assert (rung.caller_number, rung.extension) == (CALLER, ext("b"))
    assert greeted("c1")[0] not in out  # the caller is not answered again


# --- from the phone (SIP REFER) -----------------------------------------------------------------
def test_a_transfer_from_the_phone_to_an_operator_is_followed() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    talking(engine)
    out = engine.handle(ev.LegReplaced("c1-1", "local-1", "ext-b", "b"), 10)
    assert out == [
        cmd.CancelLeg("c1", "c1-1"),  # the transferer's leg stays in the app: hang it up
        cmd.CallTransferred("c1", "phone", "a", "c1-1", "operator", "b", None, 0.0),
        status("a", ONLINE),
        cmd.TransferRinging("c1", "local-1", "b"),
    ]
    out = engine.handle(answer("local-1"), 14)
    assert cmd.CallAnswered("c1", "local-1", "b", 13, transferred=True) in out
    assert not [c for c in out if isinstance(c, cmd.ConnectCall)]  # Asterisk bridged it
    out = engine.handle(caller_hangup("c1"), 30)
    assert completed("c1", EndReason.CALLER_HANGUP, "q", "b", 1, 24) in out


def test_an_attended_transfer_from_the_phone_hands_the_call_over_at_once() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    talking(engine)
    out = engine.handle(ev.LegReplaced("c1-1", "local-1", "ext-b", "b", answered=True), 10)
    assert cmd.CallTransferred("c1", "phone", "a", "c1-1", "operator", "b", None, 0.0) in out
    assert cmd.TransferRinging("c1", "local-1", "b") in out
    assert cmd.CallAnswered("c1", "local-1", "b", 9, transferred=True) in out
    assert not [c for c in out if isinstance(c, cmd.ConnectCall)]  # Asterisk linked them
    assert engine.operators["b"].talking == {"c1"} and engine.operators["a"].talking == set()
    out = engine.handle(caller_hangup("c1"), 30)
    # The call talked from 2 to 30: a until the transfer at 10, b from then on.
    assert completed("c1", EndReason.CALLER_HANGUP, "q", "b", 1, 28) in out


def test_a_phone_transfer_nobody_answers_goes_back_to_the_queue() -> None:
    engine = build([queue("q", "a")], [op("a"), op("b")])
    talking(engine)
    engine.handle(ev.LegReplaced("c1-1", "local-1", "ext-b", "b"), 10)
    out = engine.handle(fail("local-1", ev.LegFailure.NO_ANSWER), 40)
    assert Sub(
        cmd.ParkCaller("c1", "default", keep_talk=False),
        cmd.TransferFailed("c1", "phone", "a", "b", "local-1", "no_answer", False, 0.0),
        queued("c1", "q", 1),
        ring("c1", 2, "a"),
    ).commands == tuple(
        c for c in out if not isinstance(c, cmd.LegEnded | cmd.OperatorStatusChanged)
    )


def test_a_phone_transfer_to_another_number_talks_on_without_an_operator() -> None:
    engine = build([queue("q", "a")], [op("a")])
    talking(engine)
    engine.handle(ev.LegReplaced("c1-1", "local-1", "5559", None), 10)
    assert engine.operators["a"].talking == set()
    out = engine.handle(leg_hangup("local-1"), 20)
    assert completed("c1", EndReason.OPERATOR_HANGUP, "q", "a", 1, 18) in out
