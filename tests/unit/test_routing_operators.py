"""Operators as the engine sees them: presence, reachability, capacity, wrap-up, autopause."""

from __future__ import annotations

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.commands import EndReason
from callcenterd.domain.queues import Presence, Strategy
from callcenterd.routing import EngineSettings
from tests.unit.routing_table import (
    ANY,
    BUSY,
    OFFLINE,
    ONLINE,
    TICK,
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
    ext,
    fail,
    greeted,
    leg_ended,
    leg_hangup,
    op,
    play,
    presence,
    queue,
    queued,
    ring,
    status,
)

LINEAR = Strategy.LINEAR


# --- capacity ---------------------------------------------------------------------------------
def test_max_concurrent_calls_counts_ringing_legs() -> None:
    engine = build([queue("q", "a", "b", strategy=LINEAR)], [op("a", max_calls=2), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (2, arrive("c2", "q"), Rings("a")),  # a has two lines
            (3, arrive("c3", "q"), Rings("b")),  # both of a's lines ring: a is full
            (4, answer("c1-1"), Sub(status("a", BUSY, "on_call"))),
            (5, arrive("c4", "q"), Rings()),  # a talks on one line and rings on the other
            (6, answer("c2-1"), Lacks(cmd.OperatorStatusChanged)),  # a talks on both
            (7, caller_hangup("c1"), Sub(ring("c4", 1, "a"))),  # one line free again
            # only c4 rings on a's lines now: ringing is not busy
            (8, caller_hangup("c2"), (Sub(status("a", ONLINE)), Lacks(cmd.RingOperator))),
        ],
    )


def test_capacity_change_takes_effect_at_once() -> None:
    engine = build([queue("q", "a")], [op("a", max_calls=1)])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (2, arrive("c2", "q"), Rings()),
            (3, ev.OperatorUpserted(op("a", max_calls=2)), Rings("a")),
        ],
    )


# --- wrap-up ----------------------------------------------------------------------------------
def test_wrapup_keeps_the_operator_off_until_it_ends() -> None:
    engine = build([queue("q", "a", wrapup_seconds=30)], [op("a")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (2, answer("c1-1"), ANY),
            (
                50,
                leg_hangup("c1-1"),
                [
                    cmd.HangupCaller("c1", EndReason.OPERATOR_HANGUP),
                    completed("c1", EndReason.OPERATOR_HANGUP, "q", "a", 1, 48),
                    status("a", BUSY, "wrapup"),
                ],
            ),
            (60, arrive("c2", "q"), [queued("c2", "q"), *greeted("c2")]),
            (79, TICK, []),
            (80, TICK, [status("a", ONLINE), ring("c2", 1, "a")]),
        ],
    )


def test_wrapup_from_one_queue_holds_the_operator_in_every_queue() -> None:
    engine = build(
        [queue("slow", "a", wrapup_seconds=20), queue("fast", "a", wrapup_seconds=0)], [op("a")]
    )
    play(
        engine,
        [
            (1, arrive("c1", "slow"), Rings("a")),
            (2, answer("c1-1"), ANY),
            (10, caller_hangup("c1"), ANY),
            (11, arrive("c2", "fast"), Rings()),
            (30, TICK, Rings("a")),
        ],
    )


# --- autopause --------------------------------------------------------------------------------
def test_autopause_after_n_unanswered_rings() -> None:
    engine = build(
        [queue("q", "a", ring_timeout=10, retry_delay=5)],
        [op("a")],
        settings=EngineSettings(autopause_after=2, queue_timeout=600),
    )
    play(
        engine,
        [
            (0, arrive("c1", "q"), Rings("a")),
            (10, TICK, [cancel("c1", 1), leg_ended("c1", 1, "a", "no_answer")]),
            (15, TICK, [ring("c1", 2, "a", timeout=10)]),
            (
                25,
                TICK,
                [
                    cancel("c1", 2),
                    leg_ended("c1", 2, "a", "no_answer"),
                    status("a", BUSY, "no_answer"),
                ],
            ),
            (30, TICK, []),  # the retry finds nobody
            (
                40,
                presence("a", Presence.ONLINE),
                [status("a", ONLINE), ring("c1", 3, "a", timeout=10)],
            ),
            (50, TICK, Lacks(cmd.OperatorStatusChanged)),  # the count started again at 0
        ],
    )


def test_autopause_zero_never_pauses() -> None:
    engine = build(
        [queue("q", "a", ring_timeout=10, retry_delay=0)],
        [op("a")],
        settings=EngineSettings(autopause_after=0, queue_timeout=600),
    )
    rows: list[Row] = [(0.0, arrive("c1", "q"), Rings("a"))]
    for index in range(1, 11):
        # the timeout, and the retry (delay 0) in the same step
        rows.append((index * 10.0, TICK, (Rings("a"), Lacks(cmd.OperatorStatusChanged))))
    play(engine, rows)


def test_an_answer_resets_the_miss_count_and_busy_is_not_a_miss() -> None:
    engine = build(
        [queue("q", "a", ring_timeout=10, retry_delay=1)],
        [op("a")],
        settings=EngineSettings(autopause_after=2, queue_timeout=600),
    )
    play(
        engine,
        [
            (0, arrive("c1", "q"), Rings("a")),
            (10, TICK, ANY),  # miss 1
            (11, TICK, Rings("a")),
            (12, answer("c1-2"), ANY),  # back to 0
            (13, caller_hangup("c1"), ANY),
            (20, arrive("c2", "q"), Rings("a")),
            (30, TICK, Lacks(cmd.OperatorStatusChanged)),  # miss 1
            (31, TICK, Rings("a")),
            (32, fail("c2-2", ev.LegFailure.BUSY), Lacks(cmd.OperatorStatusChanged)),
            (33, TICK, Rings("a")),
            (34, fail("c2-3", ev.LegFailure.UNREACHABLE), Lacks(cmd.OperatorStatusChanged)),
            (35, TICK, Rings("a")),
            (45, TICK, Sub(status("a", BUSY, "no_answer"))),  # miss 2
        ],
    )


def test_autopause_of_an_operator_on_another_call_is_published() -> None:
    engine = build(
        [queue("q", "a", ring_timeout=10)],
        [op("a", max_calls=2)],
        settings=EngineSettings(autopause_after=1, queue_timeout=600),
    )
    play(
        engine,
        [
            (0, arrive("c1", "q"), Rings("a")),
            (1, answer("c1-1"), Sub(status("a", BUSY, "on_call"))),
            (2, arrive("c2", "q"), Rings("a")),
            (12, TICK, Sub(leg_ended("c2", 1, "a", "no_answer"), status("a", BUSY, "no_answer"))),
            (13, caller_hangup("c1"), Lacks(cmd.OperatorStatusChanged, cmd.RingOperator)),
        ],
    )


# --- presence ---------------------------------------------------------------------------------
def test_paused_operators_are_not_rung() -> None:
    engine = build([queue("q", "a", "b")], [op("a"), op("b")])
    play(
        engine,
        [
            (1, presence("a", Presence.PAUSED, "lunch"), [status("a", BUSY, "lunch")]),
            (2, arrive("c1", "q"), Rings("b")),
            (3, caller_hangup("c1"), ANY),
            (4, presence("b", Presence.PAUSED), [status("b", BUSY, "paused")]),
            (5, arrive("c2", "q"), Rings()),
            (6, presence("a", Presence.ONLINE), [status("a", ONLINE), ring("c2", 1, "a")]),
        ],
    )


def test_pausing_lets_a_ringing_leg_ring_on() -> None:
    engine = build([queue("q", "a", "b", strategy=LINEAR)], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (2, presence("a", Presence.PAUSED), [status("a", BUSY, "paused")]),
            (3, answer("c1-1"), Sub(cmd.ConnectCall("c1", "c1-1", "a"))),
        ],
    )


def test_going_offline_cancels_ringing_legs_and_the_call_moves_on() -> None:
    engine = build([queue("q", "a", "b", strategy=LINEAR)], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (
                2,
                presence("a", Presence.OFFLINE),
                [
                    cancel("c1", 1),
                    leg_ended("c1", 1, "a", "cancelled"),
                    status("a", OFFLINE),
                    ring("c1", 2, "b"),
                ],
            ),
            (3, answer("c1-1"), [cancel("c1", 1)]),
        ],
    )


def test_an_offline_profile_update_cancels_ringing_legs_too() -> None:
    engine = build([queue("q", "a", "b", strategy=LINEAR)], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (
                2,
                ev.OperatorUpserted(op("a", presence=Presence.OFFLINE)),
                Sub(cancel("c1", 1), ring("c1", 2, "b")),
            ),
        ],
    )


def test_cancelled_legs_come_out_in_the_order_they_were_rung() -> None:
    engine = build([queue("q", "a")], [op("a", max_calls=3)])
    play(
        engine,
        [
            (1, arrive("c3", "q"), Rings("a")),
            (2, arrive("c1", "q"), Rings("a")),
            (3, arrive("c2", "q"), Rings("a")),
            (
                4,
                presence("a", Presence.OFFLINE),
                Sub(cancel("c3", 1), cancel("c1", 1), cancel("c2", 1)),
            ),
        ],
    )


def test_logged_in_once_per_offline_spell() -> None:
    engine = build([queue("q", "a")], [op("a", presence=Presence.OFFLINE)])
    logged_in = cmd.OperatorLoggedIn("a", ext("a"))
    play(
        engine,
        [
            (1, presence("a", Presence.ONLINE), [status("a", ONLINE), logged_in]),
            (2, presence("a", Presence.PAUSED, "lunch"), [status("a", BUSY, "lunch")]),
            (3, presence("a", Presence.PAUSED), [status("a", BUSY, "paused")]),
            (4, presence("a", Presence.ONLINE), [status("a", ONLINE)]),
            (5, presence("a", Presence.ONLINE), []),
            (6, presence("a", Presence.OFFLINE), [status("a", OFFLINE)]),
            (7, presence("a", Presence.OFFLINE), []),
            # logging in paused is logging in
            (8, presence("a", Presence.PAUSED), [status("a", BUSY, "paused"), logged_in]),
            (9, presence("a", Presence.ONLINE), [status("a", ONLINE)]),
        ],
    )


def test_a_new_operator_online_logs_in_and_takes_a_waiting_call() -> None:
    engine = build([queue("q", "a")], [])
    play(
        engine,
        [
            (1, arrive("c1", "q"), [queued("c1", "q"), *greeted("c1")]),
            (
                2,
                ev.OperatorUpserted(op("a")),
                [status("a", ONLINE), cmd.OperatorLoggedIn("a", ext("a")), ring("c1", 1, "a")],
            ),
            (3, ev.OperatorUpserted(op("a")), []),  # the same profile again
        ],
    )


def test_unreachable_operators_are_offline_and_not_rung() -> None:
    engine = build([queue("q", "a")], [op("a")])
    play(
        engine,
        [
            (
                1,
                ev.OperatorReachability("a", reachable=False),
                [status("a", OFFLINE, "unreachable")],
            ),
            (2, arrive("c1", "q"), Rings()),
            (3, ev.OperatorReachability("a", reachable=False), []),
            (
                4,
                ev.OperatorReachability("a", reachable=True),
                [status("a", ONLINE), cmd.OperatorLoggedIn("a", ext("a")), ring("c1", 1, "a")],
            ),
            (
                5,
                ev.OperatorReachability("a", reachable=False),
                [
                    cancel("c1", 1),
                    leg_ended("c1", 1, "a", "unreachable"),
                    status("a", OFFLINE, "unreachable"),
                ],
            ),
        ],
    )


def test_removing_an_operator() -> None:
    engine = build([queue("q", "a", "b", strategy=LINEAR)], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (2, arrive("c2", "q"), Rings("b")),
            (3, answer("c2-1"), ANY),
            # a goes while ringing: the call waits (b is busy)
            (4, ev.OperatorRemoved("a"), Sub(cancel("c1", 1), status("a", OFFLINE))),
            # b goes while talking: the conversation goes on, and ends normally
            (5, ev.OperatorRemoved("b"), ANY),
            (9, caller_hangup("c2"), Sub(completed("c2", EndReason.CALLER_HANGUP, "q", "b", 1, 6))),
            (10, arrive("c3", "q"), Rings()),
            (11, ev.OperatorUpserted(op("b")), Sub(ring("c1", 2, "b"))),
        ],
    )
