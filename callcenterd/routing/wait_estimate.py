"""How long a waiting caller will still wait: from the engine's own state. Pure.

The estimate plays the queue forward: each operator serving the queue is free in some
seconds (now if available; at the end of wrap-up; for one talking, the handle time still
expected of that call, plus wrap-up), and every caller ahead who is not being rung yet
takes the first operator to become free for one mean handle time. The caller's estimate is
when the operator they would get becomes free. A caller being rung already holds the
operator rung for them, so they are not counted twice.

The mean handle time (talk plus wrap-up) is an exponentially weighted mean of the queue's
recent calls, starting from a prior until calls have been measured. Callers of other queues
served by the same operators are not in the play-through: with shared operators the estimate
is a lower bound. `bench/wait_estimate.py` measures the error against simulated callers'
real waits.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

# Weight of the newest call in the mean handle time: about the last 20 calls count.
HANDLE_WEIGHT = 0.1


@dataclass(slots=True)
class HandleTime:
    """A queue's recent mean handle time (seconds), from `prior` until measured."""

    prior: float
    mean: float = 0.0
    samples: int = 0

    def add(self, seconds: float) -> None:
        if self.samples == 0:
            self.mean = seconds
        else:
            self.mean += HANDLE_WEIGHT * (seconds - self.mean)
        self.samples += 1

    @property
    def seconds(self) -> float:
        return self.mean if self.samples else self.prior


def remaining_handle(mean_handle: float, talked: float) -> float:
    """What is still expected of a call talked for `talked` seconds: the mean's remainder,
    but never less than a tenth of it (a long call's end is not overdue, just later)."""
    return max(mean_handle - talked, 0.1 * mean_handle)


def estimate_wait(ahead: int, free_in: Iterable[float], mean_handle: float) -> float | None:
    """Seconds until a caller with `ahead` unrung callers before them gets an operator.

    `free_in`: for each operator serving the queue, seconds until they can take a call.
    None when nobody serves the queue (no estimate can be given). O(ahead x log operators),
    bounded: past the point where every operator has a caller, departures come at a steady
    pace of one per mean_handle / operators, and the rest is that arithmetic.
    """
    heap = list(free_in)
    if not heap:
        return None
    heapq.heapify(heap)
    operators = len(heap)
    played = min(ahead, 4 * operators)
    for _ in range(played):
        heapq.heapreplace(heap, heap[0] + mean_handle)
    return heap[0] + (ahead - played) * mean_handle / operators
