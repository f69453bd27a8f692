"""Last-operator routing: a returning caller waits a while for the operator who served them."""

from __future__ import annotations

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.queues import Presence, Strategy
from callcenterd.routing import RoutingEngine
from tests.unit.routing_table import (
    CALLER,
    TICK,
    answer,
    build,
    leg_hangup,
    op,
    presence,
    queue,
)


def _returning(call_id: str, last: str | None = "a") -> ev.CallArrived:
    return ev.CallArrived(call_id, CALLER, queue_hint="q", last_operator=last)


def _rung(out: list[cmd.Command]) -> list[tuple[str, str]]:
    return [(c.call_id, c.operator_id) for c in out if isinstance(c, cmd.RingOperator)]


def _a_talking(wait: float = 20.0) -> RoutingEngine:
    """a and b serve q (linear: a first); a talks to c0 from t=2; b is free."""
    engine = build(
        [queue("q", "a", "b", strategy=Strategy.LINEAR, last_operator_wait=wait)],
        [op("a"), op("b")],
    )
    engine.handle(ev.CallArrived("c0", CALLER, queue_hint="q"), 1)
    engine.handle(answer("c0-1"), 2)
    return engine


def test_the_caller_waits_for_their_operator_while_others_are_served() -> None:
    engine = _a_talking()
    assert _rung(engine.handle(_returning("back"), 5)) == []  # b is free, but not theirs
    # A new caller behind them is not held up: b takes them.
    assert _rung(engine.handle(ev.CallArrived("new", CALLER, queue_hint="q"), 6)) == [("new", "b")]
    assert engine.queue_position("back") == 1  # still first in line
    assert _rung(engine.handle(leg_hangup("c0-1"), 10)) == [("back", "a")]


def test_after_the_wait_anyone_may_take_the_caller() -> None:
    engine = _a_talking(wait=20.0)
    engine.handle(_returning("back"), 5)
    assert _rung(engine.handle(TICK, 24.9)) == []
    assert _rung(engine.handle(TICK, 25)) == [("back", "b")]


def test_their_operator_pausing_ends_the_wait_at_once() -> None:
    engine = _a_talking()
    engine.handle(_returning("back"), 5)
    assert _rung(engine.handle(presence("a", Presence.PAUSED, "lunch"), 7)) == [("back", "b")]


def test_no_wait_for_an_operator_not_online_or_not_a_member_or_when_the_queue_says_no() -> None:
    engine = _a_talking()
    engine.handle(presence("a", Presence.PAUSED, "lunch"), 3)
    assert _rung(engine.handle(_returning("back"), 5)) == [("back", "b")]
    engine = _a_talking()
    assert _rung(engine.handle(_returning("back", last="stranger"), 5)) == [("back", "b")]
    engine = _a_talking(wait=0)
    assert _rung(engine.handle(_returning("back"), 5)) == [("back", "b")]


def test_one_ring_for_the_last_operator_then_everyone() -> None:
    engine = _a_talking()
    engine.handle(_returning("back"), 5)
    engine.handle(leg_hangup("c0-1"), 10)  # rings a for them
    out = engine.handle(ev.LegFailed("back-1", ev.LegFailure.BUSY), 11)
    assert _rung(out) == [("back", "b")]


def test_a_caller_hanging_up_while_kept_is_forgotten() -> None:
    engine = _a_talking()
    engine.handle(_returning("back"), 5)
    engine.handle(ev.CallerHungUp("back"), 6)
    assert engine._reserved == {}
    assert _rung(engine.handle(leg_hangup("c0-1"), 10)) == []
