"""The estimated wait: routing/wait_estimate.py and the engine's view of it."""

from __future__ import annotations

import pytest

from callcenterd.domain.queues import Presence, Strategy
from callcenterd.routing import EngineSettings, RoutingEngine
from callcenterd.routing.wait_estimate import HandleTime, estimate_wait, remaining_handle
from tests.unit.routing_table import answer, arrive, build, leg_hangup, op, presence, queue

LINEAR = Strategy.LINEAR


def test_the_queue_is_played_forward_operator_by_operator() -> None:
    # Two operators free in 10 and 40 s, calls of 100 s: the callers ahead take 10, then 40,
    # then 110 (10 + 100): the fourth in line gets the operator free at 140.
    assert estimate_wait(0, [10, 40], 100) == 10
    assert estimate_wait(1, [10, 40], 100) == 40
    assert estimate_wait(2, [10, 40], 100) == 110
    assert estimate_wait(3, [10, 40], 100) == 140


def test_a_long_line_is_steady_departures_past_the_play_through() -> None:
    # 1,000 ahead of 2 operators with 100 s calls: 500 rounds of 100 s after the first frees.
    assert estimate_wait(1000, [0, 0], 100) == pytest.approx(50_000)
    assert estimate_wait(7, [0, 0], 100) == 300  # within the play-through: exact


def test_nobody_serving_gives_no_estimate() -> None:
    assert estimate_wait(0, [], 100) is None


def test_handle_time_starts_from_the_prior_then_follows_recent_calls() -> None:
    handle = HandleTime(prior=180)
    assert handle.seconds == 180
    handle.add(100)
    assert handle.seconds == 100  # the first measured call replaces the prior
    handle.add(200)
    assert handle.seconds == pytest.approx(110)  # then 10% per call


def test_a_call_past_its_mean_is_still_expected_to_take_a_little() -> None:
    assert remaining_handle(100, 30) == 70
    assert remaining_handle(100, 500) == 10


def _two_talking() -> RoutingEngine:
    """Operators a and b, each talking (answered at t=2 and t=4), prior 100 s, no wrap-up."""
    engine = build(
        [queue("q", "a", "b", strategy=LINEAR)],
        [op("a"), op("b")],
        settings=EngineSettings(queue_timeout=600.0, assumed_handle_seconds=100.0),
    )
    engine.handle(arrive("c1", "q"), 1)
    engine.handle(answer("c1-1"), 2)
    engine.handle(arrive("c2", "q"), 3)
    engine.handle(answer("c2-1"), 4)
    return engine


def test_the_engine_estimates_from_talk_times_and_callers_ahead() -> None:
    engine, now = _two_talking(), 10.0
    engine.handle(arrive("c3", "q"), now)
    engine.handle(arrive("c4", "q"), now)
    engine.handle(arrive("c5", "q"), now)
    # a talked 8 s, b 6 s: free in 92 and 94; c3 gets a, c4 b, c5 a again (92 + 100).
    assert engine.estimated_wait("c3", now) == pytest.approx(92)
    assert engine.estimated_wait("c4", now) == pytest.approx(94)
    assert engine.estimated_wait("c5", now) == pytest.approx(192)


def test_measured_calls_replace_the_prior_and_paused_operators_do_not_serve() -> None:
    engine = _two_talking()
    engine.handle(leg_hangup("c1-1"), 42)  # a's call took 40 s: the measured mean
    engine.handle(arrive("c3", "q"), 43)  # rung to a at once: being rung, estimate 0
    assert engine.estimated_wait("c3", 43) == 0
    engine.handle(answer("c3-1"), 44)
    engine.handle(arrive("c4", "q"), 50)
    # a talked 6 of 40 s (34 left); b talked 46: past the mean, a tenth of it (4 s) left.
    assert engine.estimated_wait("c4", 50) == pytest.approx(4)
    engine.handle(presence("b", Presence.PAUSED, "lunch"), 50)
    assert engine.estimated_wait("c4", 50) == pytest.approx(34)
    engine.handle(presence("a", Presence.OFFLINE), 50)
    assert engine.estimated_wait("c4", 50) is None


def test_no_estimate_for_a_call_not_waiting() -> None:
    engine, now = _two_talking(), 10.0
    assert engine.estimated_wait("c1", now) is None
    assert engine.estimated_wait("nobody", now) is None
