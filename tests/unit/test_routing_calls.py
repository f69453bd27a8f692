"""A call's life in the engine: arrival, ringing, answer, hang-up, timers, overflow."""

from __future__ import annotations

import pytest

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import EndReason
from callcenterd.domain.queues import OverflowAction, Presence, Strategy
from callcenterd.routing import EngineSettings
from tests.unit.routing_table import (
    ANY,
    BUSY,
    ONLINE,
    TICK,
    Has,
    Lacks,
    Rings,
    Row,
    Sub,
    answer,
    arrive,
    build,
    caller_hangup,
    cancel,
    completed,
    connected,
    fail,
    greeted,
    leg_ended,
    leg_hangup,
    missed,
    op,
    play,
    presence,
    queue,
    queued,
    ring,
    status,
)

LINEAR = Strategy.LINEAR
OFF = Presence.OFFLINE


def test_no_answer_then_busy_then_retry_then_answer_then_caller_hangs_up() -> None:
    engine = build([queue("q", "a", "b", strategy=LINEAR, retry_delay=5)], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), [queued("c1", "q"), *greeted("c1"), ring("c1", 1, "a")]),
            (10, TICK, []),  # nothing due yet
            # ring timeout: cancel, next operator at once
            (16, TICK, [cancel("c1", 1), leg_ended("c1", 1, "a", "no_answer"), ring("c1", 2, "b")]),
            # busy: everyone was tried, so wait retry_delay
            (17, fail("c1-2", ev.LegFailure.BUSY), [leg_ended("c1", 2, "b", "busy")]),
            (21, TICK, []),
            (22, TICK, [ring("c1", 3, "a")]),
            (25, answer("c1-3"), [*connected("c1", 3, "a", 24), status("a", BUSY, "on_call")]),
            (
                85,
                caller_hangup("c1"),
                [
                    cmd.CancelLeg("c1", "c1-3"),
                    completed("c1", EndReason.CALLER_HANGUP, "q", "a", 24, 60),
                    status("a", ONLINE),
                ],
            ),
            # the operator leg's own hang-up, reported afterwards, changes nothing
            (85.5, leg_hangup("c1-3"), []),
            (86, caller_hangup("c1"), []),
        ],
    )


def test_operator_hangs_up_first() -> None:
    engine = build([queue("q", "a")], [op("a")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (3, answer("c1-1"), ANY),
            (
                33,
                leg_hangup("c1-1"),
                [
                    cmd.HangupCaller("c1", EndReason.OPERATOR_HANGUP),
                    completed("c1", EndReason.OPERATOR_HANGUP, "q", "a", 2, 30),
                    status("a", ONLINE),
                ],
            ),
            (34, caller_hangup("c1"), []),
            (35, leg_hangup("c1-1"), []),
        ],
    )


def test_unreachable_leg_moves_on_at_once() -> None:
    engine = build([queue("q", "a", "b", "c", strategy=LINEAR)], [op("a"), op("b"), op("c")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (
                2,
                fail("c1-1", ev.LegFailure.UNREACHABLE),
                [leg_ended("c1", 1, "a", "unreachable"), ring("c1", 2, "b")],
            ),
            (
                3,
                fail("c1-2", ev.LegFailure.BUSY),
                [leg_ended("c1", 2, "b", "busy"), ring("c1", 3, "c")],
            ),
            # an operator rejecting a ringing call (the leg hangs up unanswered) is a no-answer
            (4, leg_hangup("c1-3"), [leg_ended("c1", 3, "c", "no_answer")]),
            (9, TICK, Rings("a")),  # retry_delay (5 s) after everyone was tried
        ],
    )


def test_two_answers_in_ringall_connect_exactly_one() -> None:
    engine = build([queue("q", "a", "b")], [op("a"), op("b")])
    play(
        engine,
        [
            (
                1,
                arrive("c1", "q"),
                [queued("c1", "q"), *greeted("c1"), ring("c1", 1, "a"), ring("c1", 2, "b")],
            ),
            (
                5,
                answer("c1-2"),
                [
                    cancel("c1", 1),
                    leg_ended("c1", 1, "a", "cancelled"),
                    *connected("c1", 2, "b", 4),
                    status("b", BUSY, "on_call"),
                ],
            ),
            # a's answer crossed the cancel: hang it up again, connect nothing
            (5.1, answer("c1-1"), [cancel("c1", 1)]),
            (5.2, fail("c1-1"), []),
            (6, arrive("c2", "q"), Rings("a")),
        ],
    )


def test_late_answer_after_the_caller_hung_up_is_cancelled() -> None:
    engine = build([queue("q", "a")], [op("a")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (
                4,
                caller_hangup("c1"),
                [
                    cancel("c1", 1),
                    leg_ended("c1", 1, "a", "cancelled"),
                    missed("c1", EndReason.ABANDONED, "q", 3),
                ],
            ),
            (4.1, answer("c1-1"), [cancel("c1", 1)]),
            (5, arrive("c2", "q"), Rings("a")),  # a was never counted as talking
        ],
    )


def test_late_answer_after_the_ring_timeout_is_cancelled() -> None:
    engine = build([queue("q", "a", "b", strategy=LINEAR)], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (16, TICK, Rings("b")),
            (16.2, answer("c1-1"), [cancel("c1", 1)]),
            (17, answer("c1-2"), Has(cmd.ConnectCall("c1", "c1-2", "b"))),
        ],
    )


def test_caller_abandons_while_waiting_or_ringing() -> None:
    engine = build([queue("q", "a", "b")], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a", "b")),
            (2, arrive("c2", "q"), Rings()),
            (
                7,
                caller_hangup("c1"),
                [
                    cancel("c1", 1),
                    leg_ended("c1", 1, "a", "cancelled"),
                    cancel("c1", 2),
                    leg_ended("c1", 2, "b", "cancelled"),
                    missed("c1", EndReason.ABANDONED, "q", 6),
                    ring("c2", 1, "a"),  # the freed operators take the next caller
                    ring("c2", 2, "b"),
                ],
            ),
            (8, arrive("c3", "q"), Rings()),
            (9, caller_hangup("c3"), [missed("c3", EndReason.ABANDONED, "q", 1)]),
        ],
    )


def test_max_call_duration_hangs_up_both_sides() -> None:
    settings = EngineSettings(max_call_duration=120, queue_timeout=600)
    engine = build([queue("q", "a")], [op("a")], settings=settings)
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (5, answer("c1-1"), ANY),
            (124, TICK, []),
            (
                125,
                TICK,
                [
                    cmd.CancelLeg("c1", "c1-1"),
                    cmd.HangupCaller("c1", EndReason.MAX_DURATION),
                    completed("c1", EndReason.MAX_DURATION, "q", "a", 4, 120),
                    status("a", ONLINE),
                ],
            ),
            (126, caller_hangup("c1"), []),
            (126, leg_hangup("c1-1"), []),
        ],
    )
    assert engine.next_deadline() is None


# --- max wait and overflow --------------------------------------------------------------------
def test_max_wait_hangup_as_missed_cancelling_ringing_legs() -> None:
    engine = build([queue("q", "a", max_wait_time=30, ring_timeout=60)], [op("a")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (
                31,
                TICK,
                [
                    cancel("c1", 1),
                    leg_ended("c1", 1, "a", "cancelled"),
                    cmd.HangupCaller("c1", EndReason.TIMEOUT),
                    missed("c1", EndReason.TIMEOUT, "q", 30),
                ],
            ),
            (32, answer("c1-1"), [cancel("c1", 1)]),
        ],
    )


def test_overflow_moves_the_caller_to_another_queue_where_it_is_answered() -> None:
    engine = build(
        [
            queue(
                "first",
                "a",
                max_wait_time=30,
                overflow_action=OverflowAction.QUEUE,
                overflow_queue_id="second",
            ),
            queue("second", "b", max_wait_time=40),
        ],
        [op("a", presence=OFF), op("b", presence=Presence.PAUSED)],
    )
    play(
        engine,
        [
            (1, arrive("c1", "first"), [queued("c1", "first"), *greeted("c1")]),
            (31, TICK, [queued("c1", "second", moved_from="first")]),
            (40, presence("b", Presence.ONLINE), [status("b", ONLINE), ring("c1", 1, "b")]),
            # the wait counts from the first arrival
            (45, answer("c1-1"), [*connected("c1", 1, "b", 44), status("b", BUSY, "on_call")]),
            (71, TICK, []),  # the second queue's own max wait (31 + 40) no longer applies
            (
                80,
                caller_hangup("c1"),
                Sub(completed("c1", EndReason.CALLER_HANGUP, "second", "b", 44, 35)),
            ),
        ],
    )


def test_overflow_to_the_dialplan() -> None:
    engine = build(
        [queue("q", "a", max_wait_time=30, overflow_action=OverflowAction.DIALPLAN)],
        [op("a", presence=OFF)],
    )
    play(
        engine,
        [
            (1, arrive("c1", "q"), ANY),
            (31, TICK, [cmd.ContinueInDialplan("c1"), missed("c1", EndReason.TIMEOUT, "q", 30)]),
        ],
    )


def test_an_overflowed_caller_keeps_their_place_by_arrival() -> None:
    engine = build(
        [
            queue(
                "first",
                "a",
                max_wait_time=30,
                overflow_action=OverflowAction.QUEUE,
                overflow_queue_id="second",
            ),
            queue("second", "b"),
        ],
        [op("a", presence=OFF), op("b", presence=Presence.PAUSED)],
    )
    play(
        engine,
        [
            (1, arrive("c1", "first"), ANY),
            (5, arrive("c2", "second"), Has(queued("c2", "second", 1))),
            (31, TICK, [queued("c1", "second", 1, moved_from="first")]),
            (32, presence("b", Presence.ONLINE), Sub(ring("c1", 1, "b"))),
        ],
    )
    assert engine.queue_position("c2") == 2


@pytest.mark.parametrize("target", ["gone", "closed"])
def test_overflow_to_a_missing_or_inactive_queue_hangs_up(target: str) -> None:
    engine = build(
        [
            queue(
                "q",
                "a",
                max_wait_time=30,
                overflow_action=OverflowAction.QUEUE,
                overflow_queue_id=target,
            ),
            queue("closed", "a", is_active=False),
        ],
        [op("a", presence=OFF)],
    )
    play(
        engine,
        [
            (1, arrive("c1", "q"), ANY),
            (
                31,
                TICK,
                [
                    cmd.HangupCaller("c1", EndReason.TIMEOUT),
                    missed("c1", EndReason.TIMEOUT, "q", 30),
                ],
            ),
        ],
    )


def test_an_overflow_cycle_does_not_spin() -> None:
    engine = build(
        [
            queue(
                "a", max_wait_time=10, overflow_action=OverflowAction.QUEUE, overflow_queue_id="b"
            ),
            queue(
                "b", max_wait_time=10, overflow_action=OverflowAction.QUEUE, overflow_queue_id="a"
            ),
        ],
        [],
    )
    play(
        engine,
        [
            (0, arrive("c1", "a"), ANY),
            (10, TICK, [queued("c1", "b", moved_from="a")]),
            (20, TICK, [queued("c1", "a", moved_from="b")]),
            (21, caller_hangup("c1"), [missed("c1", EndReason.ABANDONED, "a", 21)]),
        ],
    )


def test_zero_wait_limits_mean_no_limit() -> None:
    # queue_timeout 0 (system) or max_wait_time 0 (queue) must not time callers out at once,
    # nor bounce them between overflow queues forever.
    engine = build(
        [
            queue(
                "a", max_wait_time=None, overflow_action=OverflowAction.QUEUE, overflow_queue_id="b"
            ),
            queue(
                "b", max_wait_time=0, overflow_action=OverflowAction.QUEUE, overflow_queue_id="a"
            ),
        ],
        [],
        settings=EngineSettings(queue_timeout=0),
    )
    play(
        engine,
        [
            (0, arrive("c1", "a"), [queued("c1", "a"), *greeted("c1")]),
            (1e6, TICK, []),
        ],
    )
    assert engine.next_deadline() is None


def test_ring_timeout_zero_rings_until_answered_and_never_spins() -> None:
    engine = build([queue("q", "a", ring_timeout=0, retry_delay=0, max_wait_time=50)], [op("a")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), [queued("c1", "q"), *greeted("c1"), ring("c1", 1, "a", 0)]),
            (40, TICK, []),
            (41, fail("c1-1", ev.LegFailure.BUSY), Rings("a")),  # retry_delay 0: at once
            (45, answer("c1-2"), Has(cmd.ConnectCall("c1", "c1-2", "a"))),
        ],
    )
    assert engine.next_deadline() is None


def test_timers_below_the_clock_resolution_do_not_spin() -> None:
    now = 1.8e9  # epoch seconds: a float step here is about 2.4e-7 s
    engine = build(
        [queue("q", "a", ring_timeout=1e-9, retry_delay=0)],
        [op("a")],
        settings=EngineSettings(autopause_after=0, queue_timeout=600),
    )
    out = engine.handle(arrive("c1", "q"), now)
    assert 1 <= len([c for c in out if isinstance(c, cmd.RingOperator)]) <= 4  # bounded passes
    # each Tick makes the same bounded progress, and returns
    out = engine.handle(TICK, now)
    assert 1 <= len([c for c in out if isinstance(c, cmd.RingOperator)]) <= 4


# --- joining ----------------------------------------------------------------------------------
def test_join_empty_false_rejects_at_once_when_nobody_is_logged_in() -> None:
    engine = build(
        [queue("strict", "a", join_empty=False), queue("lenient", "a", join_empty=True)],
        [op("a", presence=OFF)],
    )
    play(
        engine,
        [
            (
                1,
                arrive("c1", "strict"),
                [
                    cmd.HangupCaller("c1", EndReason.NO_OPERATOR),
                    missed("c1", EndReason.NO_OPERATOR, "strict", 0),
                ],
            ),
            (2, arrive("c2", "lenient"), [queued("c2", "lenient"), *greeted("c2")]),
            # paused counts as logged in: the caller may wait
            (3, presence("a", Presence.PAUSED), ANY),
            (4, arrive("c3", "strict"), [queued("c3", "strict"), *greeted("c3")]),
            (5, ev.OperatorReachability("a", reachable=False), ANY),
            (6, arrive("c4", "strict"), Has(cmd.HangupCaller("c4", EndReason.NO_OPERATOR))),
        ],
    )


def test_join_empty_counts_only_members_who_have_the_skills() -> None:
    engine = build(
        [queue("q", "a", "b", join_empty=False, required_skills=frozenset({"fr"}))],
        [op("a", "fr", presence=OFF), op("b")],
    )
    play(engine, [(1, arrive("c1", "q"), Has(cmd.HangupCaller("c1", EndReason.NO_OPERATOR)))])


def test_unknown_queue_without_default_is_rejected() -> None:
    engine = build([queue("q", "a")], [op("a")])
    play(
        engine,
        [
            (
                1,
                arrive("c1", "nope", called="999"),
                [
                    cmd.HangupCaller("c1", EndReason.REJECTED),
                    missed("c1", EndReason.REJECTED, None, 0),
                ],
            ),
            (2, arrive("c2"), Has(cmd.HangupCaller("c2", EndReason.REJECTED))),
        ],
    )


def test_inactive_queue_is_rejected() -> None:
    engine = build([queue("q", "a", is_active=False)], [op("a")])
    play(
        engine,
        [
            (
                1,
                arrive("c1", "q"),
                [
                    cmd.HangupCaller("c1", EndReason.REJECTED),
                    missed("c1", EndReason.REJECTED, "q", 0),
                ],
            )
        ],
    )


def test_queue_resolution_order_name_then_number_then_default() -> None:
    engine = build(
        [
            queue("by-name", asterisk_name="sales"),
            queue("by-number", numbers=("100", "101")),
            queue("fallback", is_default=True),
        ],
        [],
    )
    play(
        engine,
        [
            (1, arrive("c1", "sales", called="100"), Has(queued("c1", "by-name"))),
            (2, arrive("c2", None, called="101"), Has(queued("c2", "by-number"))),
            (3, arrive("c3", "unknown", called="100"), Has(queued("c3", "by-number", position=2))),
            (4, arrive("c4", "unknown", called="999"), Has(queued("c4", "fallback"))),
            (5, arrive("c5"), Has(queued("c5", "fallback", position=2))),
            # routes follow queue changes
            (
                6,
                ev.QueueRemoved("fallback"),
                Has(
                    cmd.HangupCaller("c4", EndReason.REJECTED),
                    cmd.HangupCaller("c5", EndReason.REJECTED),
                ),
            ),
            (7, ev.QueueUpserted(queue("by-number", numbers=("999",))), []),
            (8, arrive("c6", None, called="999"), Has(queued("c6", "by-number", position=3))),
            (9, arrive("c7", None, called="100"), Has(cmd.HangupCaller("c7", EndReason.REJECTED))),
        ],
    )


def test_removing_a_queue_rejects_its_waiting_callers() -> None:
    engine = build([queue("q", "a")], [op("a")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (2, arrive("c2", "q"), Rings()),
            (
                3,
                ev.QueueRemoved("q"),
                [
                    cancel("c1", 1),
                    leg_ended("c1", 1, "a", "cancelled"),
                    cmd.HangupCaller("c1", EndReason.REJECTED),
                    missed("c1", EndReason.REJECTED, "q", 2),
                    cmd.HangupCaller("c2", EndReason.REJECTED),
                    missed("c2", EndReason.REJECTED, "q", 1),
                ],
            ),
        ],
    )


# --- auto answer ------------------------------------------------------------------------------
def test_auto_answer_delay_answers_on_tick() -> None:
    engine = build(
        [queue("q", "a", music_class="jazz")],
        [op("a", presence=OFF)],
        settings=EngineSettings(auto_answer_delay=2, queue_timeout=600),
    )
    play(
        engine,
        [
            (1, arrive("c1", "q"), [queued("c1", "q")]),
            (2, TICK, []),
            (3, TICK, [cmd.AnswerCaller("c1"), cmd.HoldCaller("c1", "jazz")]),
            (4, TICK, []),
        ],
    )


def test_an_operator_answering_before_the_auto_answer_delay_answers_the_caller() -> None:
    engine = build(
        [queue("q", "a")],
        [op("a")],
        settings=EngineSettings(auto_answer_delay=3, queue_timeout=600),
    )
    play(
        engine,
        [
            (1, arrive("c1", "q"), [queued("c1", "q"), ring("c1", 1, "a")]),
            (
                2,
                answer("c1-1"),
                [cmd.AnswerCaller("c1"), *connected("c1", 1, "a", 1), status("a", BUSY, "on_call")],
            ),
            (4, TICK, []),  # no second answer, no music on hold over the conversation
        ],
    )


def test_a_readopted_call_keeps_its_wait() -> None:
    engine = build([queue("q", "a", max_wait_time=30)], [op("a", presence=OFF)])
    play(
        engine,
        [
            (100, ev.CallArrived("c1", "555", queue_hint="q", arrived_at=80), ANY),
            (110, TICK, Has(missed("c1", EndReason.TIMEOUT, "q", 30))),
        ],
    )


# --- priority and order -----------------------------------------------------------------------
def test_fifo_within_a_queue() -> None:
    engine = build([queue("q", "a")], [op("a", presence=Presence.PAUSED)])
    play(
        engine,
        [
            (1, arrive("c1", "q"), [queued("c1", "q", 1), *greeted("c1")]),
            (2, arrive("c2", "q"), [queued("c2", "q", 2), *greeted("c2")]),
            (3, arrive("c3", "q"), [queued("c3", "q", 3), *greeted("c3")]),
            (4, presence("a", Presence.ONLINE), Sub(ring("c1", 1, "a"))),
            (5, answer("c1-1"), Lacks(cmd.RingOperator)),
            (6, caller_hangup("c1"), Sub(ring("c2", 1, "a"))),
            (7, caller_hangup("c2"), Sub(ring("c3", 1, "a"))),
        ],
    )
    assert engine.waiting_calls("q") == 1
    assert engine.queue_position("c3") == 1


def test_a_shared_operator_takes_the_higher_priority_queue_first() -> None:
    engine = build(
        [queue("low", "a", priority=1), queue("high", "a", priority=5)],
        [op("a", presence=Presence.PAUSED)],
    )
    play(
        engine,
        [
            (1, arrive("c1", "low"), Rings()),
            (2, arrive("c2", "high"), Rings()),
            (3, presence("a", Presence.ONLINE), Sub(ring("c2", 1, "a"))),
            (4, caller_hangup("c2"), Sub(ring("c1", 1, "a"))),
        ],
    )


def test_equal_priority_queues_serve_the_earliest_arrival() -> None:
    engine = build(
        [queue("one", "a"), queue("two", "a")],
        [op("a", presence=Presence.PAUSED)],
    )
    play(
        engine,
        [
            (1, arrive("c1", "two"), Rings()),
            (2, arrive("c2", "one"), Rings()),
            (3, arrive("c3", "two"), Rings()),
            (4, presence("a", Presence.ONLINE), Sub(ring("c1", 1, "a"))),
            (5, caller_hangup("c1"), Sub(ring("c2", 1, "a"))),
            (6, caller_hangup("c2"), Sub(ring("c3", 1, "a"))),
        ],
    )


def test_priority_does_not_let_a_low_queue_steal_a_retrying_callers_operator_forever() -> None:
    # high's caller tried a (no answer) and waits retry_delay; meanwhile a may serve low.
    engine = build(
        [
            queue("low", "a", priority=1),
            queue("high", "a", priority=5, ring_timeout=10, retry_delay=20),
        ],
        [op("a")],
    )
    play(
        engine,
        [
            (1, arrive("h1", "high"), Rings("a")),
            (2, arrive("l1", "low"), Rings()),
            # a doesn't answer: h1 has tried everyone, so l1 gets a while h1 waits
            (11, TICK, Sub(cancel("h1", 1), ring("l1", 1, "a"))),
            (12, caller_hangup("l1"), Rings()),  # a is free; h1 still waits its retry
            (31, TICK, Rings("a")),
        ],
    )


# --- idempotence and timers -------------------------------------------------------------------
def test_events_about_unknown_things_change_nothing() -> None:
    engine = build([queue("q", "a")], [op("a")])
    play(
        engine,
        [
            (1, answer("nope"), []),
            (1, fail("nope"), []),
            (1, leg_hangup("nope"), []),
            (1, ev.LegRinging("nope"), []),
            (1, caller_hangup("nope"), []),
            (1, presence("ghost", Presence.ONLINE), []),
            (1, ev.OperatorReachability("ghost", reachable=False), []),
            (1, ev.OperatorRemoved("ghost"), []),
            (1, ev.QueueRemoved("ghost"), []),
            (2, arrive("c1", "q"), Rings("a")),
            (3, arrive("c1", "q"), []),  # the same call twice
            (4, ev.LegRinging("c1-1"), []),
            (5, answer("c1-1"), ANY),
            (6, answer("c1-1"), []),  # the same answer twice
        ],
    )


def test_next_deadline_reports_the_earliest_live_timer() -> None:
    engine = build(
        [queue("q", "a", ring_timeout=15, max_wait_time=100, wrapup_seconds=7)],
        [op("a")],
        settings=EngineSettings(auto_answer_delay=2, queue_timeout=600),
    )
    assert engine.next_deadline() is None
    engine.handle(arrive("c1", "q"), 10)
    assert engine.next_deadline() == 12  # the auto answer
    engine.handle(TICK, 12)
    assert engine.next_deadline() == 25  # the ring timeout
    engine.handle(answer("c1-1"), 20)
    assert engine.next_deadline() is None  # ring timeout and max wait no longer matter
    engine.handle(caller_hangup("c1"), 30)
    assert engine.next_deadline() == 37  # the wrap-up
    engine.handle(TICK, 37)
    assert engine.next_deadline() is None


def test_a_late_tick_fires_everything_due_in_order() -> None:
    engine = build(
        [queue("q", "a", "b", strategy=LINEAR, ring_timeout=10, retry_delay=3)], [op("a"), op("b")]
    )
    play(
        engine,
        [
            (0, arrive("c1", "q"), Rings("a")),
            # one tick long after: a's timeout fires (b rings), and only then b's own timeout
            (100, TICK, Sub(cancel("c1", 1), ring("c1", 2, "b", timeout=10))),
        ],
    )
    assert engine.next_deadline() == 110


def test_same_inputs_same_outputs() -> None:
    def run(seed: int) -> list[list[cmd.Command]]:
        engine = build(
            [queue("q", "a", "b", "c", strategy=Strategy.RANDOM)],
            [op("a"), op("b"), op("c")],
            seed=seed,
        )
        rows: list[Row] = []
        for index in range(30):
            rows.append((float(index), arrive(f"c{index}", "q"), ANY))
        rows.append((100.0, TICK, ANY))
        return play(engine, rows)

    assert run(3) == run(3)
