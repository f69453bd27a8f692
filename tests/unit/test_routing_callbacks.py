"""Callbacks in the engine: the offer, the place kept, the operator first then the caller,
retries, failures, dedupe, cancel and reschedule."""

from __future__ import annotations

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import CallOutcome, EndReason
from callcenterd.routing import EngineSettings, RoutingEngine
from tests.unit.routing_table import (
    ANY,
    CALLER,
    TICK,
    Has,
    Lacks,
    Rings,
    answer,
    arrive,
    build,
    caller_hangup,
    completed,
    fail,
    leg_hangup,
    missed,
    op,
    play,
    queue,
)

SETTINGS = EngineSettings(
    queue_timeout=600.0,
    callback_enabled=True,
    callback_retry_delay=60.0,
    callback_max_attempts=2,
    callback_ring_timeout=20.0,
)


def press_1(call_id: str, callback: str = "cb1") -> ev.CallerDigit:
    return ev.CallerDigit(call_id, "1", callback, f"{callback}-call")


def _busy_queue(**options: object) -> RoutingEngine:
    """Queue q offering callbacks after 30 s; its one operator a talks to c0 from t=1."""
    engine = build(
        [queue("q", "a", callback_offer_after=30, **options)], [op("a")], settings=SETTINGS
    )
    engine.handle(arrive("c0", "q"), 0)
    engine.handle(answer("c0-1"), 1)
    return engine


def _requested(origin: str, place_at: float, existing: bool = False) -> cmd.CallbackChanged:
    return cmd.CallbackChanged(
        "cb1",
        "cb1-call",
        "requested",
        origin_call_id=origin,
        queue_id="q",
        number=CALLER,
        place_at=place_at,
        existing=existing,
    )


def test_the_offer_comes_after_n_seconds_and_1_books_a_callback_that_keeps_the_place() -> None:
    engine = _busy_queue()
    play(
        engine,
        [
            (10, arrive("c1", "q"), Lacks(cmd.OfferCallback)),
            (20, arrive("c2", "q"), Lacks(cmd.OfferCallback)),
            (39, TICK, []),
            (40, TICK, [cmd.OfferCallback("c1")]),
            (45, press_1("c1"), ANY),
        ],
    )
    out = engine.handle(TICK, 46)
    assert out == []  # nothing more to say
    # c1's call ended (reason callback) and its callback's entry is first in line, before c2
    assert "c1" not in engine.calls
    assert engine.queue_position("cb1-call") == 1
    assert engine.queue_position("c2") == 2
    # the operator frees up: the callback is served first, the operator rung first
    out = engine.handle(leg_hangup("c0-1"), 50)
    assert [c.operator_id for c in out if isinstance(c, cmd.RingOperator)] == ["a"]
    assert any(isinstance(c, cmd.RingOperator) and c.call_id == "cb1-call" for c in out)


def test_pressing_1_confirms_ends_the_call_and_is_told() -> None:
    engine = _busy_queue()
    engine.handle(arrive("c1", "q"), 10)
    assert engine.handle(TICK, 40) == [cmd.OfferCallback("c1")]
    out = engine.handle(press_1("c1"), 45)
    assert out == [
        cmd.ConfirmCallback("c1"),
        _requested("c1", 10.0),
        cmd.CallQueued("cb1-call", "q", 1),
        cmd.CallEnded("c1", CallOutcome.MISSED, EndReason.CALLBACK, "q", None, 35.0, 0.0),
    ]
    # the booked entry has no channel: a stray hang-up for it changes nothing
    assert engine.handle(caller_hangup("cb1-call"), 46) == []
    assert "cb1-call" in engine.calls


def test_no_offer_when_the_queue_turns_callbacks_off_and_1_before_the_offer_does_nothing() -> None:
    engine = _busy_queue(callback_enabled=False)
    engine.handle(arrive("c1", "q"), 10)
    assert engine.handle(TICK, 40) == []
    assert engine.handle(press_1("c1"), 41) == []
    assert "c1" in engine.calls


def test_a_queue_can_offer_callbacks_when_the_system_does_not() -> None:
    settings = EngineSettings(queue_timeout=600.0, callback_enabled=False)
    engine = build(
        [queue("q", "a", callback_offer_after=30, callback_enabled=True)],
        [op("a")],
        settings=settings,
    )
    engine.handle(arrive("c0", "q"), 0)
    engine.handle(answer("c0-1"), 1)
    engine.handle(arrive("c1", "q"), 10)
    assert engine.handle(TICK, 40) == [cmd.OfferCallback("c1")]


def _callback_rung() -> RoutingEngine:
    """c1 booked a callback at 45; the operator is free at 50 and rung for it (leg -1)."""
    engine = _busy_queue()
    engine.handle(arrive("c1", "q"), 10)
    engine.handle(TICK, 40)
    engine.handle(press_1("c1"), 45)
    engine.handle(leg_hangup("c0-1"), 50)
    return engine


def test_the_operator_answers_first_then_the_caller_is_dialed_and_bridged() -> None:
    engine = _callback_rung()
    play(
        engine,
        [
            (
                55,
                answer("cb1-call-1"),
                (
                    Has(
                        cmd.DialCallback(
                            "cb1-call", "cb1-call-1", "a", "cb1-call-2", CALLER, "q", None, 20.0
                        ),
                        cmd.CallbackChanged("cb1", "cb1-call", "dialing", 1, operator_id="a"),
                    ),
                    Lacks(cmd.ConnectCall, cmd.CallAnswered),
                ),
            ),
            (
                60,
                answer("cb1-call-2"),
                Has(
                    cmd.ConnectCall("cb1-call", "cb1-call-1", "a"),
                    cmd.CallAnswered("cb1-call", "cb1-call-1", "a", 50.0),
                    cmd.CallbackChanged("cb1", "cb1-call", "completed", 1, operator_id="a"),
                ),
            ),
            # the caller hangs up: an ordinary end of a conversation
            (
                90,
                leg_hangup("cb1-call-2"),
                Has(
                    cmd.CancelLeg("cb1-call", "cb1-call-1"),
                    completed("cb1-call", EndReason.CALLER_HANGUP, "q", "a", 50.0, 30.0),
                ),
            ),
        ],
    )
    assert engine.calls == {}


def test_the_operator_hanging_up_ends_a_bridged_callback() -> None:
    engine = _callback_rung()
    engine.handle(answer("cb1-call-1"), 55)
    engine.handle(answer("cb1-call-2"), 60)
    out = engine.handle(leg_hangup("cb1-call-1"), 70)
    assert cmd.HangupCaller("cb1-call", EndReason.OPERATOR_HANGUP) in out
    assert completed("cb1-call", EndReason.OPERATOR_HANGUP, "q", "a", 50.0, 10.0) in out


def test_a_caller_not_answering_is_dialed_again_later_in_their_place_then_failed() -> None:
    engine = _callback_rung()
    engine.handle(arrive("c2", "q"), 51)  # a later caller
    engine.handle(answer("cb1-call-1"), 55)
    out = engine.handle(fail("cb1-call-2", ev.LegFailure.BUSY), 58)
    assert cmd.CancelLeg("cb1-call", "cb1-call-1") in out  # the operator's phone is freed
    assert cmd.CallbackChanged("cb1", "cb1-call", "scheduled", 1, at=118.0) in out
    # the operator is free, and serves c2 meanwhile: the callback waits its retry
    assert [c.call_id for c in out if isinstance(c, cmd.RingOperator)] == ["c2"]
    assert engine.queue_position("cb1-call") == 1  # still first in line
    # the later duplicate events of the failed dial change nothing
    assert engine.handle(leg_hangup("cb1-call-2"), 58.5) == []
    engine.handle(caller_hangup("c2"), 59)  # c2 gives up; the operator is free again
    out = engine.handle(TICK, 118)
    assert [c.call_id for c in out if isinstance(c, cmd.RingOperator)] == ["cb1-call"]
    ring = next(c for c in out if isinstance(c, cmd.RingOperator))
    engine.handle(answer(ring.leg_id), 120)
    out = engine.handle(fail("cb1-call-4", ev.LegFailure.NO_ANSWER), 140)
    assert (
        cmd.CallbackChanged("cb1", "cb1-call", "failed", 2, reason=ev.LegFailure.NO_ANSWER.value)
        in out
    )
    assert missed("cb1-call", EndReason.CALLBACK_FAILED, "q", 130.0) in out
    assert "cb1-call" not in engine.calls


def test_an_operator_hanging_up_before_the_caller_answers_costs_the_caller_nothing() -> None:
    engine = _callback_rung()
    engine.handle(answer("cb1-call-1"), 55)
    out = engine.handle(leg_hangup("cb1-call-1"), 57)
    assert cmd.CancelLeg("cb1-call", "cb1-call-2") in out  # the dial of the caller stops
    # back in line at once, the attempt not counted: the operator (free again) is rung again
    assert [c.call_id for c in out if isinstance(c, cmd.RingOperator)] == ["cb1-call"]
    assert engine.calls["cb1-call"].callback is not None
    assert engine.calls["cb1-call"].callback.attempts == 0


def test_a_second_request_for_the_same_number_and_queue_confirms_the_pending_one() -> None:
    engine = _busy_queue()
    engine.handle(arrive("c1", "q"), 10)
    engine.handle(TICK, 40)
    engine.handle(press_1("c1"), 45)
    engine.handle(arrive("c2", "q"), 50)  # the same number calls again
    engine.handle(TICK, 80)
    out = engine.handle(press_1("c2", "cb2"), 85)
    assert out[0] == cmd.ConfirmCallback("c2")
    assert _requested("c2", 10.0, existing=True) in out
    assert not any(isinstance(c, cmd.CallQueued) for c in out)
    assert "cb2-call" not in engine.calls and "c2" not in engine.calls
    # and an API-booked duplicate is not taken either
    engine.handle(ev.CallbackAdded("cb3-call", "cb3", CALLER, "q", 60.0), 86)
    assert "cb3-call" not in engine.calls


def test_callbacks_added_at_start_up_keep_their_place_and_time() -> None:
    engine = _busy_queue()
    engine.handle(arrive("c2", "q"), 20)
    out = engine.handle(
        ev.CallbackAdded("cb-call", "cb", "5550111", "q", 5.0, not_before=100.0, legs_used=4), 30
    )
    assert cmd.CallQueued("cb-call", "q", 1) in out
    assert cmd.CallbackChanged("cb", "cb-call", "scheduled", 0, at=100.0) in out
    # the operator frees up before the callback's time: c2 is served meanwhile
    play(engine, [(40, leg_hangup("c0-1"), Rings("a"))])
    assert engine.calls["c2"].legs  # a rings for c2
    engine.handle(caller_hangup("c2"), 41)
    play(engine, [(99, TICK, Rings()), (100, TICK, Rings("a"))])
    assert "cb-call-5" in engine.calls["cb-call"].legs  # leg numbers go on from 4


def test_cancel_and_reschedule_a_waiting_callback() -> None:
    engine = _callback_rung()  # the operator rings for cb1-call
    out = engine.handle(ev.CallbackRescheduled("cb1-call", 300.0), 52)
    assert cmd.CancelLeg("cb1-call", "cb1-call-1") in out
    assert cmd.CallbackChanged("cb1", "cb1-call", "scheduled", 0, at=300.0) in out
    assert engine.queue_position("cb1-call") == 1
    out = engine.handle(ev.CallbackCancelled("cb1-call"), 60)
    assert out == [missed("cb1-call", EndReason.CALLBACK_CANCELLED, "q", 50.0)]
    # cancelled: the number may book again
    engine.handle(ev.CallbackAdded("cb2-call", "cb2", CALLER, "q", 61.0), 61)
    assert "cb2-call" in engine.calls
