"""Pauses with reasons: the engine never offers a paused operator a call, whatever the
strategy or the reason, and says why they are paused; the time in each reason is the part of
each spell inside a report's window (analytics/pauses.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenterd.analytics.pauses import PauseSpell, pause_seconds_by_reason, seconds_inside
from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.queues import Presence, Strategy
from callcenterd.routing import EngineSettings
from tests.unit.routing_table import (
    BUSY,
    OFFLINE,
    ONLINE,
    answer,
    arrive,
    build,
    caller_hangup,
    fail,
    op,
    presence,
    queue,
    rung,
    status,
)


# --- the engine ----------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_paused_operator_is_never_offered_a_call(strategy: Strategy) -> None:
    """a pauses with a reason (and changes it while paused); calls that b refuses, lets ring
    out or answers are retried over and over, and never offered to a. With b paused too the
    call waits; a back online is rung at once."""
    engine = build(
        [queue("q", "a", "b", strategy=strategy, ring_timeout=5.0, retry_delay=1.0)],
        [op("a"), op("b")],
        settings=EngineSettings(queue_timeout=600.0, autopause_after=0),
    )
    assert engine.handle(presence("a", Presence.PAUSED, "lunch"), 1.0) == [
        status("a", BUSY, "lunch")
    ]
    rung_while_paused: list[str] = []
    now = 2.0
    for n in range(1, 9):
        call = f"c{n}"
        if n == 5:  # a new reason, still paused
            engine.handle(presence("a", Presence.PAUSED, "training"), now)
        outputs = [engine.handle(arrive(call, "q"), now)]
        outputs.append(engine.handle(fail(f"{call}-1"), now + 1))  # b busy
        outputs += [engine.handle(ev.Tick(), now + t) for t in (2, 3, 9, 10, 11)]  # retries
        outputs.append(engine.handle(caller_hangup(call), now + 12))
        rung_while_paused += [who for out in outputs for who in rung(out)]
        now += 20
    assert set(rung_while_paused) == {"b"} and len(rung_while_paused) >= 8  # b, each call

    assert engine.handle(presence("b", Presence.PAUSED, "meeting"), now) == [
        status("b", BUSY, "meeting")
    ]
    assert rung(engine.handle(arrive("w", "q"), now + 1)) == []  # nobody free: it waits
    assert rung(engine.handle(ev.Tick(), now + 30)) == []
    out = engine.handle(presence("a", Presence.ONLINE), now + 31)
    assert status("a", ONLINE) in out and rung(out) == ["a"]


def test_status_changes_carry_the_pause_reason_only_while_paused() -> None:
    engine = build([queue("q", "a")], [op("a")])
    out = engine.handle(presence("a", Presence.PAUSED, "lunch"), 1.0)
    assert out == [cmd.OperatorStatusChanged("a", BUSY, "lunch", "lunch")]
    out = engine.handle(presence("a", Presence.PAUSED, "training"), 2.0)
    assert out == [cmd.OperatorStatusChanged("a", BUSY, "training", "training")]
    # Unreachable while paused: shown offline, still paused for training.
    out = engine.handle(ev.OperatorReachability("a", False), 3.0)
    assert cmd.OperatorStatusChanged("a", OFFLINE, "unreachable", "training") in out
    out = engine.handle(ev.OperatorReachability("a", True), 4.0)
    assert cmd.OperatorStatusChanged("a", BUSY, "training", "training") in out
    out = engine.handle(presence("a", Presence.ONLINE), 5.0)
    assert out == [cmd.OperatorStatusChanged("a", ONLINE, None, None)]
    # On a call: busy, but not paused.
    engine.handle(arrive("c1", "q"), 6.0)
    out = engine.handle(answer("c1-1"), 7.0)
    assert cmd.OperatorStatusChanged("a", BUSY, "on_call", None) in out
    # Paused without a reason: 'paused', as stored and reported.
    out = engine.handle(presence("a", Presence.PAUSED), 8.0)
    assert cmd.OperatorStatusChanged("a", BUSY, "paused", "paused") in out


def test_autopause_is_a_pause_with_the_system_reason() -> None:
    settings = EngineSettings(queue_timeout=600.0, autopause_after=1)
    engine = build([queue("q", "a", ring_timeout=5.0)], [op("a")], settings=settings)
    engine.handle(arrive("c1", "q"), 1.0)
    out = engine.handle(ev.Tick(), 7.0)  # the ring timed out
    assert cmd.OperatorStatusChanged("a", BUSY, "no_answer", "no_answer") in out
    assert not [c for c in engine.handle(ev.Tick(), 20.0) if isinstance(c, cmd.RingOperator)]


# --- the accounting ------------------------------------------------------------------------
T0 = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)  # a report's window: [T0, T0 + 1 day)
DAY = timedelta(days=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def spell(reason: str, start: float, end: float | None, operator_id: str = "a") -> PauseSpell:
    return PauseSpell(operator_id, reason, at(start), at(end) if end is not None else None)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (100, 700, 600),  # wholly inside
        (-120, 60, 60),  # spans the window's start: only the part inside
        (86400 - 30, 86400 + 500, 30),  # spans the window's end
        (-10, 86400 + 10, 86400),  # spans the whole window
        (-100, 0, 0),  # ends exactly at the start: outside
        (86400, 86500, 0),  # starts exactly at the end (exclusive): outside
        (500, 500, 0),  # no length
    ],
)
def test_seconds_inside_clips_to_the_window(start: float, end: float, expected: float) -> None:
    now = at(2 * 86400)
    assert seconds_inside(spell("lunch", start, end), T0, T0 + DAY, now) == expected


def test_an_open_spell_counts_until_now_and_not_beyond_the_window() -> None:
    open_spell = spell("training", 3600, None)
    assert seconds_inside(open_spell, T0, T0 + DAY, at(3600 + 42)) == 42
    assert seconds_inside(open_spell, T0, T0 + DAY, at(3 * 86400)) == 86400 - 3600
    # Now before the spell began (a clock set back): nothing, never negative.
    assert seconds_inside(open_spell, T0, T0 + DAY, at(100)) == 0


def test_seconds_are_summed_per_operator_and_reason_then_rounded_once() -> None:
    spells = [
        spell("lunch", 0, 1800),
        spell("training", 1800, 2400),
        # Three spells of 0.4 s: 1.2 s, rounded once to 1 (not three times to 0).
        *(spell("break", 3000 + i, 3000 + i + 0.4) for i in range(3)),
        spell("lunch", -600, 300, operator_id="b"),  # b's pause from before the window
        spell("meeting", -900, -300, operator_id="b"),  # wholly before: left out
        spell("lunch", 5000, None),  # open: up to now
    ]
    totals = pause_seconds_by_reason(spells, T0, T0 + DAY, at(5100))
    assert totals == {
        "a": {"break": 1, "lunch": 1900, "training": 600},
        "b": {"lunch": 300},
    }
    assert list(totals["a"]) == ["break", "lunch", "training"]  # by name: a stable answer


def test_a_pause_over_the_edge_is_split_between_adjacent_windows() -> None:
    over_midnight = [spell("meeting", 86400 - 120, 86400 + 60)]
    now = at(3 * 86400)
    first = pause_seconds_by_reason(over_midnight, T0, T0 + DAY, now)
    second = pause_seconds_by_reason(over_midnight, T0 + DAY, T0 + 2 * DAY, now)
    assert first == {"a": {"meeting": 120}}
    assert second == {"a": {"meeting": 60}}
