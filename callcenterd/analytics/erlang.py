"""Erlang C: how many operators a queue needs to answer a share of calls within a time.

Model (M/M/N): calls arrive at random (Poisson) at `rate` per second, each keeps an operator
busy for `handle_seconds` on average (exponentially distributed), callers wait in one queue
and nobody abandons. The offered traffic is A = rate x handle_seconds erlangs.

The probability that a caller has to wait, Erlang C, is derived from Erlang B (the loss
probability of N lines) by the usual identity:

    C(N, A) = N B(N, A) / (N - A (1 - B(N, A)))          (valid for N > A)

and Erlang B comes from its recursion, which needs no factorial and no power of A, so it
stays exact to float precision for thousands of operators:

    B(0, A) = 1,    B(n, A) = A B(n-1, A) / (n + A B(n-1, A))

From C follow the service level and the average speed of answer:

    P(wait <= t) = 1 - C(N, A) exp(-(N - A) t / handle_seconds)
    ASA          = C(N, A) handle_seconds / (N - A)

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

# A queue asking for more than this many operators has a data problem, not a staffing one.
MAX_OPERATORS = 10_000


@dataclass(frozen=True, slots=True)
class Staffing:
    """What N operators achieve for a given load."""

    operators: int
    traffic: float  # erlangs offered (A)
    wait_probability: float  # Erlang C: share of callers who wait at all
    service_level: float  # share answered within the threshold, 0..1
    average_speed_of_answer: float  # seconds, over all callers
    occupancy: float  # A / N, 0..1


def traffic_erlangs(calls: float, period_seconds: float, handle_seconds: float) -> float:
    """The offered load: calls per period x handle time / period."""
    if period_seconds <= 0:
        raise ValueError("period_seconds must be positive")
    if calls < 0 or handle_seconds < 0:
        raise ValueError("calls and handle_seconds must not be negative")
    return calls * handle_seconds / period_seconds


def _erlang_b_series(traffic: float) -> Iterator[tuple[int, float]]:
    """(n, B(n, A)) for n = 1, 2, ... by the recursion."""
    blocking = 1.0
    n = 0
    while True:
        n += 1
        blocking = traffic * blocking / (n + traffic * blocking)
        yield n, blocking


def erlang_b(operators: int, traffic: float) -> float:
    """Loss probability of `operators` lines offered `traffic` erlangs."""
    if operators < 0 or traffic < 0:
        raise ValueError("operators and traffic must not be negative")
    if operators == 0:
        return 1.0
    for n, blocking in _erlang_b_series(traffic):
        if n == operators:
            return blocking
    raise AssertionError("unreachable")  # pragma: no cover - the series is infinite


def _erlang_c_from_b(operators: int, traffic: float, blocking: float) -> float:
    if operators <= traffic:
        return 1.0  # the queue grows without bound: everyone waits
    return operators * blocking / (operators - traffic * (1.0 - blocking))


def erlang_c(operators: int, traffic: float) -> float:
    """Probability that a caller waits, with `operators` serving `traffic` erlangs."""
    return _erlang_c_from_b(operators, traffic, erlang_b(operators, traffic))


def _staffing(
    operators: int, traffic: float, blocking: float, handle_seconds: float, threshold: float
) -> Staffing:
    if traffic == 0:
        return Staffing(operators, 0.0, 0.0, 1.0, 0.0, 0.0)
    wait = _erlang_c_from_b(operators, traffic, blocking)
    if operators <= traffic:
        return Staffing(operators, traffic, 1.0, 0.0, math.inf, 1.0)
    spare = operators - traffic
    return Staffing(
        operators=operators,
        traffic=traffic,
        wait_probability=wait,
        service_level=1.0 - wait * math.exp(-spare * threshold / handle_seconds),
        average_speed_of_answer=wait * handle_seconds / spare,
        occupancy=traffic / operators,
    )


def staffing(operators: int, traffic: float, handle_seconds: float, threshold: float) -> Staffing:
    """The figures `operators` achieve for `traffic` erlangs of `handle_seconds` calls."""
    if handle_seconds <= 0 and traffic > 0:
        raise ValueError("handle_seconds must be positive when there is traffic")
    blocking = erlang_b(operators, traffic) if operators > 0 else 1.0
    return _staffing(operators, traffic, blocking, handle_seconds, threshold)


def operators_needed(
    traffic: float, handle_seconds: float, target_service_level: float, threshold: float
) -> Staffing:
    """The fewest operators answering `target_service_level` (0..1) within `threshold` s.

    No traffic needs nobody. One pass over n = 1, 2, ...: each step is one line of the
    Erlang B recursion, so the search costs O(answer).
    """
    if not 0 < target_service_level < 1:
        raise ValueError("target_service_level must be between 0 and 1 (exclusive)")
    if threshold < 0:
        raise ValueError("threshold must not be negative")
    if traffic < 0:
        raise ValueError("traffic must not be negative")
    if traffic == 0:
        return Staffing(0, 0.0, 0.0, 1.0, 0.0, 0.0)
    if handle_seconds <= 0:
        raise ValueError("handle_seconds must be positive when there is traffic")
    for n, blocking in _erlang_b_series(traffic):
        if n > MAX_OPERATORS:
            break
        if n <= traffic:
            continue
        found = _staffing(n, traffic, blocking, handle_seconds, threshold)
        if found.service_level >= target_service_level:
            return found
    raise ValueError(f"more than {MAX_OPERATORS} operators would be needed")
