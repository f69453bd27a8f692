"""Choosing whom to ring, with app_queue's meanings.

A queue keeps its available members sorted by its strategy's key (`sort_key`), penalty
first; a pick walks that order from the front, skipping the operators the call already
tried this round, so it costs O(log n + tried) rather than a scan of the members.
Ringall is the exception that costs what it rings: the whole lowest tier.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable

from callcenterd.domain.queues import Strategy
from callcenterd.routing.state import QueueState, SortKey, tier_start

Picker = Callable[[QueueState, set[str], random.Random], list[str]]

_DRAWS = 8  # random picks that may land on tried members before falling back to a filtered list


def sort_key(queue: QueueState, operator_id: str) -> SortKey:
    """Where a member sits in the queue's order of preference (penalty first)."""
    penalty = queue.members[operator_id]
    strategy = queue.config.strategy
    metric = 0.0
    if strategy is Strategy.LEASTRECENT or strategy is Strategy.FEWESTCALLS:
        stats = queue.stats.get(operator_id)
        if strategy is Strategy.LEASTRECENT:
            metric = stats.last_call_end if stats else float("-inf")
        else:
            metric = float(stats.calls_completed) if stats else 0.0
    # rrmemory walks operators in a fixed arbitrary order (their ids), like app_queue's hash
    # order; every other strategy breaks ties in the queue's member order.
    order = 0 if strategy is Strategy.RRMEMORY else queue.position.get(operator_id, 0)
    return (penalty, metric, order, operator_id)


def _first_untried(queue: QueueState, tried: set[str], lo: int = 0, hi: int | None = None) -> int:
    """Index of the first untried available member in keys[lo:hi], or -1."""
    keys = queue.available.keys
    end = len(keys) if hi is None else hi
    for index in range(lo, end):
        if keys[index][3] not in tried:
            return index
    return -1


def _lowest_tier(queue: QueueState, tried: set[str]) -> tuple[int, int, int] | None:
    """(penalty, lo, hi) of the lowest tier that still has an untried member."""
    first = _first_untried(queue, tried)
    if first < 0:
        return None
    penalty = queue.available.keys[first][0]
    # tried members of the same tier may sit before the first untried one
    lo = bisect_left(queue.available.keys, tier_start(penalty), 0, first)
    return penalty, lo, queue.available.tier_end(penalty, first)


def _first(queue: QueueState, tried: set[str], rng: random.Random) -> list[str]:
    """linear, leastrecent, fewestcalls: the best key wins."""
    first = _first_untried(queue, tried)
    return [] if first < 0 else [queue.available.keys[first][3]]


def _ringall(queue: QueueState, tried: set[str], rng: random.Random) -> list[str]:
    tier = _lowest_tier(queue, tried)
    if tier is None:
        return []
    _, lo, hi = tier
    return [key[3] for key in queue.available.keys[lo:hi] if key[3] not in tried]


def _uniform(queue: QueueState, tried: set[str], rng: random.Random, lo: int, hi: int) -> str:
    """A uniformly drawn untried member of keys[lo:hi] (which holds at least one)."""
    keys = queue.available.keys
    for _ in range(_DRAWS):
        operator_id = keys[rng.randrange(lo, hi)][3]
        if operator_id not in tried:
            return operator_id
    return rng.choice([key[3] for key in keys[lo:hi] if key[3] not in tried])


def _random(queue: QueueState, tried: set[str], rng: random.Random) -> list[str]:
    tier = _lowest_tier(queue, tried)
    if tier is None:
        return []
    _, lo, hi = tier
    return [_uniform(queue, tried, rng, lo, hi)]


def _wrandom(queue: QueueState, tried: set[str], rng: random.Random) -> list[str]:
    """As app_queue: each member draws from [0, (1 + penalty) * 1000); the lowest draw rings.

    Drawn per tier rather than per member, with the same odds: the lowest of k uniform draws
    on [0, w) is w * (1 - V ** (1 / k)) for one uniform V; the winning tier's member is then
    uniform among its untried members. Cost O(tiers + tried), not O(members).
    """
    index = queue.available
    keys = index.keys
    tried_per_tier: dict[int, int] = {}
    for operator_id in tried:
        key = index.key_of(operator_id)
        if key is not None:
            tried_per_tier[key[0]] = tried_per_tier.get(key[0], 0) + 1
    best: tuple[float, int, int] | None = None
    lo = 0
    while lo < len(keys):
        penalty = keys[lo][0]
        hi = index.tier_end(penalty, lo)
        count = hi - lo - tried_per_tier.get(penalty, 0)
        if count > 0:
            weight = max(1 + penalty, 1) * 1000.0
            draw = weight * (1.0 - rng.random() ** (1.0 / count))
            if best is None or draw < best[0]:
                best = (draw, lo, hi)
        lo = hi
    if best is None:
        return []
    return [_uniform(queue, tried, rng, best[1], best[2])]


def _round_robin(queue: QueueState, tried: set[str], rng: random.Random) -> list[str]:
    """rrmemory / rrordered: within the lowest tier, the first member after the last rung."""
    tier = _lowest_tier(queue, tried)
    if tier is None:
        return []
    penalty, lo, hi = tier
    start = lo
    last = queue.rr_last
    if last is not None and last in queue.position:
        rest = sort_key_of_former(queue, last)
        start = bisect_right(queue.available.keys, (penalty, *rest), lo, hi)
    found = _first_untried(queue, tried, start, hi)
    if found < 0:
        found = _first_untried(queue, tried, lo, start)
    return [queue.available.keys[found][3]]


def sort_key_of_former(queue: QueueState, operator_id: str) -> tuple[float, int, str]:
    """A member's key without its penalty, even if they left the queue since (rr memory)."""
    if operator_id in queue.members:
        _, metric, order, _ = sort_key(queue, operator_id)
        return (metric, order, operator_id)
    order = 0 if queue.config.strategy is Strategy.RRMEMORY else queue.position[operator_id]
    return (0.0, order, operator_id)


PICKERS: dict[Strategy, Picker] = {
    Strategy.RINGALL: _ringall,
    Strategy.LEASTRECENT: _first,
    Strategy.FEWESTCALLS: _first,
    Strategy.RANDOM: _random,
    Strategy.WRANDOM: _wrandom,
    Strategy.RRMEMORY: _round_robin,
    Strategy.RRORDERED: _round_robin,
    Strategy.LINEAR: _first,
}


def has_untried(queue: QueueState, tried: set[str]) -> bool:
    """Whether an available member was not rung yet in this round (O(tried))."""
    return _first_untried(queue, tried) >= 0


def pick(queue: QueueState, tried: set[str], rng: random.Random) -> list[str]:
    """Whom to ring now for the queue's head call: [] when every available member was tried."""
    if not queue.available:
        return []
    return PICKERS[queue.config.strategy](queue, tried, rng)
