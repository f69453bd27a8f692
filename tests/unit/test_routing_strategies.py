"""Whom the engine rings: every strategy, penalty tiers and skills, as tables."""

from __future__ import annotations

from collections import Counter

import pytest

from callcenterd.domain import events as ev
from callcenterd.domain.queues import Presence, Strategy
from tests.unit.routing_table import (
    ANY,
    Rings,
    Row,
    answer,
    arrive,
    build,
    caller_hangup,
    fail,
    leg_hangup,
    op,
    play,
    presence,
    queue,
    rung,
)

S = Strategy
PAUSED = Presence.PAUSED
ONLINE = Presence.ONLINE


def served(call_id: str, at: float, rings: str, queue_id: str = "q") -> list[Row]:
    """A call arrives, `rings` is rung and answers, the caller hangs up: the operator is free."""
    return [
        (at, arrive(call_id, queue_id), Rings(rings)),
        (at + 1, answer(f"{call_id}-1"), ANY),
        (at + 2, caller_hangup(call_id), ANY),
    ]


# --- one call after another, each answered by whoever rings ------------------------------------
SEQUENCES: list[tuple[Strategy, tuple[str, ...], list[str]]] = [
    # linear: always from the first member, in member order
    (S.LINEAR, ("a", "b", "c"), ["a", "a", "a", "a"]),
    (S.LINEAR, ("c", "a", "b"), ["c", "c", "c", "c"]),
    # rrmemory: resumes after the last one rung, walking operators in id order
    (S.RRMEMORY, ("a", "b", "c"), ["a", "b", "c", "a"]),
    (S.RRMEMORY, ("c", "a", "b"), ["a", "b", "c", "a"]),
    # rrordered: resumes after the last one rung, walking the queue's member order
    (S.RRORDERED, ("a", "b", "c"), ["a", "b", "c", "a"]),
    (S.RRORDERED, ("c", "a", "b"), ["c", "a", "b", "c"]),
    # leastrecent: never-called members first (member order), then whoever finished longest ago
    (S.LEASTRECENT, ("c", "a", "b"), ["c", "a", "b", "c"]),
    # fewestcalls: fewest completed calls from this queue, ties in member order
    (S.FEWESTCALLS, ("c", "a", "b"), ["c", "a", "b", "c"]),
]


@pytest.mark.parametrize(("strategy", "members", "expected"), SEQUENCES)
def test_who_rings_call_after_call(
    strategy: Strategy, members: tuple[str, ...], expected: list[str]
) -> None:
    engine = build([queue("q", *members, strategy=strategy)], [op(m) for m in members])
    rows: list[Row] = []
    for index, name in enumerate(expected):
        rows += served(f"c{index}", 10.0 * (index + 1), name)
    play(engine, rows)


def test_ringall_rings_the_whole_lowest_tier() -> None:
    engine = build([queue("q", "a", "b", ("c", 1))], [op("a"), op("b"), op("c")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a", "b")),
            # the whole tier timed out: the next tier rings
            (16, ev.Tick(), Rings("c")),
            (31, ev.Tick(), ANY),  # c timed out too: everyone tried, retry after 5 s
            (36, ev.Tick(), Rings("a", "b")),
            (37, answer("c1-5"), ANY),  # b answers: a's leg is cancelled
            (38, arrive("c2", "q"), Rings("a")),
        ],
    )


def test_ringall_rings_only_who_is_free() -> None:
    engine = build([queue("q", "a", "b", ("c", 1))], [op("a"), op("b"), op("c")])
    play(
        engine,
        [
            (1, presence("a", PAUSED), ANY),
            (2, arrive("c1", "q"), Rings("b")),
            (3, arrive("c2", "q"), Rings("c")),  # tier 0 is busy ringing: tier 1 takes it
        ],
    )


def test_leastrecent_picks_whoever_finished_longest_ago() -> None:
    engine = build([queue("q", "a", "b", "c", strategy=S.LEASTRECENT)], [op("a"), op("b"), op("c")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (2, arrive("c2", "q"), Rings("b")),
            (3, arrive("c3", "q"), Rings("c")),
            (4, answer("c1-1"), ANY),
            (4, answer("c2-1"), ANY),
            (4, answer("c3-1"), ANY),
            (10, caller_hangup("c2"), ANY),  # b ends first
            (20, leg_hangup("c3-1"), ANY),  # then c
            (30, caller_hangup("c1"), ANY),  # then a
            (40, arrive("c4", "q"), Rings("b")),
            (41, arrive("c5", "q"), Rings("c")),
            (42, arrive("c6", "q"), Rings("a")),
        ],
    )


def test_fewestcalls_picks_who_completed_fewest() -> None:
    engine = build([queue("q", "a", "b", "c", strategy=S.FEWESTCALLS)], [op("a"), op("b"), op("c")])
    play(
        engine,
        [
            (1, presence("b", PAUSED), ANY),
            (1, presence("c", PAUSED), ANY),
            *served("c1", 10, "a"),
            *served("c2", 20, "a"),  # a has 2
            (30, presence("c", ONLINE), ANY),
            *served("c3", 40, "c"),  # c has 1
            (50, presence("b", ONLINE), ANY),
            *served("c4", 60, "b"),  # b: 0 → 1
            *served("c5", 70, "b"),  # b 1 ties c 1: b comes first in member order
            *served("c6", 80, "c"),  # c 1 < a 2, b 2
            (90, arrive("c7", "q"), Rings("a")),  # 2 each: member order
        ],
    )


def test_fewestcalls_counts_completed_calls_not_rings() -> None:
    engine = build([queue("q", "a", "b", strategy=S.FEWESTCALLS)], [op("a"), op("b")])
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (2, caller_hangup("c1"), ANY),  # rung but never answered: not a completed call
            *served("c2", 10, "a"),
            (20, arrive("c3", "q"), Rings("b")),
        ],
    )


def test_rrmemory_skips_members_who_are_busy_and_remembers_across_calls() -> None:
    engine = build(
        [queue("q", "a", "b", "c", "d", strategy=S.RRMEMORY)],
        [op("a"), op("b"), op("c"), op("d")],
    )
    play(
        engine,
        [
            *served("c1", 10, "a"),
            (19, presence("b", PAUSED), ANY),
            *served("c2", 20, "c"),
            *served("c3", 30, "d"),
            *served("c4", 40, "a"),  # wraps round; b still paused
            (49, presence("b", ONLINE), ANY),
            *served("c5", 50, "b"),
        ],
    )


def test_rr_no_answer_moves_on_to_the_next_member() -> None:
    engine = build(
        [queue("q", "a", "b", "c", strategy=S.RRORDERED, ring_timeout=10)],
        [op("a"), op("b"), op("c")],
    )
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a")),
            (11, ev.Tick(), Rings("b")),
            (12, fail("c1-2", ev.LegFailure.UNREACHABLE), Rings("c")),
            (13, answer("c1-3"), ANY),
            (14, caller_hangup("c1"), ANY),
            (20, arrive("c2", "q"), Rings("a")),  # resumes after c, the last rung
        ],
    )


# --- random ---------------------------------------------------------------------------------
def _rung_many(
    strategy: Strategy, members: list[str | tuple[str, int]], calls: int, seed: int
) -> list[str]:
    """Who rings first for each of `calls` calls, each abandoned at once."""
    names = [m if isinstance(m, str) else m[0] for m in members]
    engine = build([queue("q", *members, strategy=strategy)], [op(m) for m in names], seed=seed)
    picks: list[str] = []
    for index in range(calls):
        now = float(index)
        out = engine.handle(arrive(f"c{index}", "q"), now)
        picks += rung(out)
        engine.handle(caller_hangup(f"c{index}"), now)
    return picks


@pytest.mark.parametrize("strategy", [S.RANDOM, S.WRANDOM])
def test_random_strategies_are_deterministic_for_a_seed(strategy: Strategy) -> None:
    members: list[str | tuple[str, int]] = ["a", "b", "c", "d", "e"]
    first = _rung_many(strategy, members, 200, seed=7)
    assert first == _rung_many(strategy, members, 200, seed=7)
    assert first != _rung_many(strategy, members, 200, seed=8)
    assert len(first) == 200
    assert set(first) == {"a", "b", "c", "d", "e"}  # everyone gets calls


def test_random_stays_in_the_lowest_tier_and_is_roughly_uniform() -> None:
    picks = Counter(_rung_many(S.RANDOM, ["a", "b", "c", ("d", 1)], 3000, seed=1))
    assert picks["d"] == 0
    for name in "abc":
        assert 850 <= picks[name] <= 1150, picks


def test_wrandom_prefers_low_penalties_but_weights_are_not_tiers() -> None:
    # app_queue: each member draws from [0, (1 + penalty) * 1000), the lowest draw rings.
    # a (penalty 0) vs b (penalty 1): P(a) = 1 - 1/4 = 0.75. With c (penalty 3): lower still.
    picks = Counter(_rung_many(S.WRANDOM, [("a", 0), ("b", 1)], 2000, seed=3))
    assert 0.71 <= picks["a"] / 2000 <= 0.79, picks
    picks = Counter(_rung_many(S.WRANDOM, [("a", 0), ("b", 1), ("c", 3)], 2000, seed=4))
    assert picks["a"] > picks["b"] > picks["c"] > 0, picks


def test_random_next_pick_after_no_answer_is_someone_not_yet_tried() -> None:
    engine = build(
        [queue("q", "a", "b", "c", strategy=S.RANDOM, ring_timeout=10)],
        [op("a"), op("b"), op("c")],
        seed=5,
    )
    outs = play(
        engine,
        [
            (1, arrive("c1", "q"), ANY),
            (11, ev.Tick(), ANY),
            (21, ev.Tick(), ANY),
        ],
    )
    assert sorted(name for out in outs for name in rung(out)) == ["a", "b", "c"]


# --- penalty tiers ----------------------------------------------------------------------------
TIERED = [s for s in Strategy if s is not S.WRANDOM]


@pytest.mark.parametrize("strategy", TIERED)
def test_higher_tier_rings_only_when_the_lower_tier_cannot(strategy: Strategy) -> None:
    # z is first in member order but has penalty 2; y has 1; x and w have 0.
    engine = build(
        [queue("q", ("z", 2), ("y", 1), ("x", 0), ("w", 0), strategy=strategy)],
        [op("z"), op("y"), op("x"), op("w")],
        seed=11,
    )
    first = engine.handle(arrive("c1", "q"), 1)
    lowest = {"x", "w"}
    if strategy is S.RINGALL:
        assert rung(first) == ["x", "w"]
    else:
        assert len(rung(first)) == 1 and set(rung(first)) <= lowest
        # the other tier-0 member takes the next call
        assert set(rung(engine.handle(arrive("c2", "q"), 2))) == lowest - set(rung(first))
    play(
        engine,
        [
            (3, arrive("c3", "q"), Rings("y")),  # tier 0 all ringing: tier 1
            (4, arrive("c4", "q"), Rings("z")),
            (5, arrive("c5", "q"), Rings()),  # nobody left: waits
        ],
    )


def test_penalty_tier_paused_members_are_skipped() -> None:
    engine = build(
        [queue("q", ("a", 0), ("b", 5), strategy=S.LINEAR)],
        [op("a", presence=PAUSED), op("b")],
    )
    play(engine, [(1, arrive("c1", "q"), Rings("b"))])


# --- skills -----------------------------------------------------------------------------------
def test_members_lacking_the_queue_skills_are_never_rung() -> None:
    engine = build(
        [queue("q", "a", "b", "c", required_skills=frozenset({"fr"}))],
        [op("a", "fr", "de"), op("b", "de"), op("c", "fr")],
    )
    play(
        engine,
        [
            (1, arrive("c1", "q"), Rings("a", "c")),
            (2, arrive("c2", "q"), Rings()),  # b is free but cannot take it
        ],
    )


def test_a_skills_only_queue_takes_every_skilled_operator() -> None:
    engine = build(
        [queue("q", required_skills=frozenset({"de"}))],
        [op("x", "de"), op("y", "de", "fr"), op("z", "fr"), op("w")],
    )
    play(engine, [(1, arrive("c1", "q"), Rings("x", "y"))])


def test_a_queue_with_neither_members_nor_skills_has_nobody() -> None:
    engine = build([queue("q")], [op("a"), op("b")])
    play(engine, [(1, arrive("c1", "q"), Rings())])


def test_a_profile_change_reindexes_the_operator() -> None:
    skills = frozenset({"de"})
    engine = build(
        [queue("open", required_skills=skills), queue("listed", "x", "z", required_skills=skills)],
        [op("x", "de"), op("z", "fr")],
    )
    play(
        engine,
        [
            (1, arrive("c1", "open"), Rings("x")),
            (2, caller_hangup("c1"), ANY),
            # z learns German, x forgets it
            (3, ev.OperatorUpserted(op("z", "fr", "de")), []),
            (4, ev.OperatorUpserted(op("x", "fr")), []),
            (5, arrive("c2", "open"), Rings("z")),
            (6, caller_hangup("c2"), ANY),
            (7, arrive("c3", "listed"), Rings("z")),
            (8, caller_hangup("c3"), ANY),
            # an operator created after the queue that lists them is picked up too
            (9, ev.QueueUpserted(queue("listed", "x", "z", "v", required_skills=skills)), []),
            (10, ev.OperatorUpserted(op("v", "de")), ANY),
            (11, presence("z", PAUSED), ANY),
            (12, arrive("c4", "listed"), Rings("v")),
        ],
    )


def test_queue_change_reorders_and_repenalises_members() -> None:
    engine = build([queue("q", "a", "b", strategy=S.LINEAR)], [op("a"), op("b")])
    play(
        engine,
        [
            *served("c1", 1, "a"),
            (10, ev.QueueUpserted(queue("q", "b", "a", strategy=S.LINEAR)), []),
            *served("c2", 11, "b"),
            (20, ev.QueueUpserted(queue("q", ("b", 3), "a", strategy=S.LINEAR)), []),
            *served("c3", 21, "a"),
            (30, ev.QueueUpserted(queue("q", strategy=S.LINEAR)), []),
            (31, arrive("c4", "q"), Rings()),
        ],
    )
