"""Caller priority: higher first within a queue, equal priorities in arrival order."""

from __future__ import annotations

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.routing import RoutingEngine
from tests.unit.routing_table import CALLER, answer, build, leg_hangup, op, queue


def _arrive(call_id: str, queue_id: str, priority: int = 0) -> ev.CallArrived:
    return ev.CallArrived(call_id, CALLER, queue_hint=queue_id, priority=priority)


def _rung(out: list[cmd.Command]) -> list[str]:
    return [c.call_id for c in out if isinstance(c, cmd.RingOperator)]


def _busy_operator() -> RoutingEngine:
    """Queue q with one operator a, talking to c0 since t=2."""
    engine = build([queue("q", "a")], [op("a")])
    engine.handle(_arrive("c0", "q"), 1)
    engine.handle(answer("c0-1"), 2)
    return engine


def test_a_vip_is_served_before_callers_who_came_earlier() -> None:
    engine = _busy_operator()
    engine.handle(_arrive("early", "q"), 3)
    engine.handle(_arrive("later", "q"), 4)
    engine.handle(_arrive("vip", "q", priority=5), 5)
    assert [engine.queue_position(c) for c in ("vip", "early", "later")] == [1, 2, 3]
    assert _rung(engine.handle(leg_hangup("c0-1"), 10)) == ["vip"]


def test_equal_priorities_keep_arrival_order() -> None:
    engine = _busy_operator()
    for n, at in enumerate((3, 4, 5)):
        engine.handle(_arrive(f"p{n}", "q", priority=2), at)
    engine.handle(_arrive("low", "q"), 2.5)  # earlier, but lower priority
    assert [engine.queue_position(f"p{n}") for n in range(3)] == [1, 2, 3]
    assert engine.queue_position("low") == 4
    assert _rung(engine.handle(leg_hangup("c0-1"), 10)) == ["p0"]


def test_queue_priority_comes_before_caller_priority_across_queues() -> None:
    # a serves both; "urgent" is the higher-priority queue (app_queue's weight).
    engine = build([queue("normal", "a"), queue("urgent", "a", priority=2)], [op("a")])
    engine.handle(_arrive("c0", "normal"), 1)
    engine.handle(answer("c0-1"), 2)
    engine.handle(_arrive("vip", "normal", priority=9), 3)
    engine.handle(_arrive("plain", "urgent"), 4)
    assert _rung(engine.handle(leg_hangup("c0-1"), 10)) == ["plain"]
