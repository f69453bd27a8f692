"""Choosing whom to ring, with app_queue's meanings.

Each strategy looks only at the queue's *available* members not yet tried for this
call in the current round, so a pick costs O(available members of one queue).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from callcenterd.domain.queues import Strategy
from callcenterd.routing.state import QueueState

Picker = Callable[[QueueState, list[str], random.Random], list[str]]


def _lowest_tier(queue: QueueState, candidates: list[str]) -> list[str]:
    """Members with a higher penalty ring only when no lower-penalty member can."""
    best = min(queue.members[op] for op in candidates)
    return [op for op in candidates if queue.members[op] == best]


def _ringall(queue: QueueState, candidates: list[str], rng: random.Random) -> list[str]:
    return _lowest_tier(queue, candidates)


def _leastrecent(queue: QueueState, candidates: list[str], rng: random.Random) -> list[str]:
    tier = _lowest_tier(queue, candidates)
    return [min(tier, key=lambda op: (queue.member_stats(op).last_call_end, queue.position[op]))]


def _fewestcalls(queue: QueueState, candidates: list[str], rng: random.Random) -> list[str]:
    tier = _lowest_tier(queue, candidates)
    return [min(tier, key=lambda op: (queue.member_stats(op).calls_completed, queue.position[op]))]


def _random(queue: QueueState, candidates: list[str], rng: random.Random) -> list[str]:
    return [rng.choice(_lowest_tier(queue, candidates))]


def _wrandom(queue: QueueState, candidates: list[str], rng: random.Random) -> list[str]:
    # As app_queue: each member draws from [0, (1 + penalty) * 1000); the lowest draw rings.
    return [min(candidates, key=lambda op: rng.randrange((1 + queue.members[op]) * 1000))]


def _round_robin(order: Callable[[QueueState, str], tuple[int, str]]) -> Picker:
    def pick(queue: QueueState, candidates: list[str], rng: random.Random) -> list[str]:
        tier = sorted(_lowest_tier(queue, candidates), key=lambda op: order(queue, op))
        if queue.rr_last is not None and queue.rr_last in queue.position:
            last = order(queue, queue.rr_last)
            after = [op for op in tier if order(queue, op) > last]
            if after:
                return [after[0]]
        return [tier[0]]

    return pick


def _linear(queue: QueueState, candidates: list[str], rng: random.Random) -> list[str]:
    tier = _lowest_tier(queue, candidates)
    return [min(tier, key=lambda op: queue.position[op])]


PICKERS: dict[Strategy, Picker] = {
    Strategy.RINGALL: _ringall,
    Strategy.LEASTRECENT: _leastrecent,
    Strategy.FEWESTCALLS: _fewestcalls,
    Strategy.RANDOM: _random,
    Strategy.WRANDOM: _wrandom,
    # rrmemory walks operators in a fixed arbitrary order (their ids), like app_queue's
    # hash order; rrordered walks them in the queue's member order.
    Strategy.RRMEMORY: _round_robin(lambda q, op: (0, op)),
    Strategy.RRORDERED: _round_robin(lambda q, op: (q.position[op], op)),
    Strategy.LINEAR: _linear,
}


def pick(queue: QueueState, candidates: list[str], rng: random.Random) -> list[str]:
    """Whom to ring now for the queue's head call; `candidates` is never empty."""
    return PICKERS[queue.config.strategy](queue, candidates, rng)
