"""What a waiting caller is told: the greeting once, then their place every N seconds."""

from __future__ import annotations

from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.routing import EngineSettings, RoutingEngine
from tests.unit.routing_table import (
    BUSY,
    CALLER,
    ONLINE,
    TICK,
    answer,
    arrive,
    build,
    connected,
    greeted,
    leg_hangup,
    op,
    play,
    queue,
    queued,
    ring,
    status,
)

SETTINGS = EngineSettings(queue_timeout=600.0, assumed_handle_seconds=180.0)


def _busy(**options: object) -> RoutingEngine:
    """Queue q (greeting, announcements every 30 s) whose one operator talks to c0 from t=2."""
    engine = build(
        [queue("q", "a", greeting="hello", announce_every=30, **options)], [op("a")],
        settings=SETTINGS,
    )  # fmt: skip
    engine.handle(arrive("c0", "q"), 1)
    engine.handle(answer("c0-1"), 2)
    return engine


def test_greeting_then_places_and_the_head_of_the_line_is_told_once() -> None:
    engine = _busy()
    play(
        engine,
        [
            (
                10,
                arrive("c1", "q"),
                [queued("c1", "q"), *greeted("c1"), cmd.GreetCaller("c1", "hello")],
            ),
            (
                11,
                arrive("c2", "q"),
                [queued("c2", "q", 2), *greeted("c2"), cmd.GreetCaller("c2", "hello")],
            ),
            # a has talked 38 s of the 180 s assumed: free in 142 s; c2 waits one call more.
            (40, TICK, [cmd.AnnounceWait("c1", 1, 142.0)]),
            (41, TICK, [cmd.AnnounceWait("c2", 2, 141.0 + 180.0)]),
            (70, TICK, []),  # c1 heard "you are next" already
            (71, TICK, [cmd.AnnounceWait("c2", 2, 111.0 + 180.0)]),  # still second: told again
            (
                95,
                leg_hangup("c0-1"),
                [
                    cmd.HangupCaller("c0", cmd.EndReason.OPERATOR_HANGUP),
                    cmd.CallEnded(
                        "c0",
                        cmd.CallOutcome.COMPLETED,
                        cmd.EndReason.OPERATOR_HANGUP,
                        "q",
                        "a",
                        1.0,
                        93.0,
                    ),
                    status("a", ONLINE),
                    ring("c1", 1, "a"),
                ],
            ),
            (100, TICK, []),  # c1 is being rung: no announcement to cut short
            # Still second; a rings for c1 and is then busy for one call (93 s measured).
            (101, TICK, [cmd.AnnounceWait("c2", 2, 93.0)]),
            (102, answer("c1-1"), [*connected("c1", 1, "a", 92), status("a", BUSY, "on_call")]),
            (131, TICK, [cmd.AnnounceWait("c2", 1, 93.0 - 29.0)]),  # next now
            (161, TICK, []),  # told once at the head of the line
        ],
    )


def test_without_the_wait_and_without_a_greeting_for_a_readopted_caller() -> None:
    engine = _busy(announce_wait=False)
    out = engine.handle(ev.CallArrived("old", CALLER, queue_hint="q", arrived_at=5.0), 20)
    assert not [c for c in out if isinstance(c, cmd.GreetCaller)]  # heard it before the restart
    assert engine.handle(TICK, 50) == [cmd.AnnounceWait("old", 1, None)]


def test_no_announcements_unless_the_queue_asks() -> None:
    engine = build([queue("q", "a")], [op("a")], settings=SETTINGS)
    engine.handle(arrive("c0", "q"), 1)
    engine.handle(answer("c0-1"), 2)
    engine.handle(arrive("c1", "q"), 3)
    assert engine.next_deadline() == 3 + 600.0  # only the max wait
