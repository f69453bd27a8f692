"""Erlang C against published values and against the textbook formula computed exactly."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from callcenterd.analytics.erlang import (
    erlang_b,
    erlang_c,
    operators_needed,
    staffing,
    traffic_erlangs,
)


def textbook_erlang_c(n: int, a: int) -> float:
    """The formula with factorials, in exact fractions (fine for small n):

    C = (A^N / N!) (N / (N - A)) / (sum_{k<N} A^k / k! + (A^N / N!) (N / (N - A)))
    """
    top = Fraction(a**n, math.factorial(n)) * Fraction(n, n - a)
    bottom = sum(Fraction(a**k, math.factorial(k)) for k in range(n)) + top
    return float(top / bottom)


def test_the_worked_example_100_calls_in_30_minutes() -> None:
    """The classic example (callcentrehelper.com, "Erlang C formula - made simple"):
    100 calls in 30 minutes, 3 minutes (180 s) handle time, target 80 % within 20 s.

    Traffic A = 100 x 180 / 1800 = 10 erlangs. With N agents:
    N = 11: C = 0.6821, SL = 1 - 0.6821 e^(-(11-10) 20/180) = 1 - 0.6821 x 0.8948 = 39.0 %
    N = 12: C = 0.4494, SL = 1 - 0.4494 e^(-2 x 20/180)   = 1 - 0.4494 x 0.8007 = 64.0 %
    N = 13: C = 0.2853, SL = 1 - 0.2853 e^(-3 x 20/180)   = 1 - 0.2853 x 0.7165 = 79.6 %
    N = 14: C = 0.1741, SL = 1 - 0.1741 e^(-4 x 20/180)   = 1 - 0.1741 x 0.6412 = 88.8 %
    so 14 agents are needed; their ASA = 0.1741 x 180 / (14 - 10) = 7.8 s.
    """
    traffic = traffic_erlangs(100, 1800, 180)
    assert traffic == 10.0
    published = {11: (0.6821, 0.390), 12: (0.4494, 0.640), 13: (0.2853, 0.796), 14: (0.1741, 0.888)}
    for n, (wait, level) in published.items():
        figures = staffing(n, traffic, 180, 20)
        assert figures.wait_probability == pytest.approx(wait, abs=5e-5), n
        assert figures.service_level == pytest.approx(level, abs=5e-4), n
    needed = operators_needed(traffic, 180, 0.80, 20)
    assert needed.operators == 14
    assert needed.average_speed_of_answer == pytest.approx(7.8, abs=0.05)
    assert needed.occupancy == pytest.approx(10 / 14)


@pytest.mark.parametrize(("n", "a"), [(2, 1), (5, 3), (11, 10), (20, 15), (40, 30)])
def test_the_recursion_equals_the_factorial_formula(n: int, a: int) -> None:
    assert erlang_c(n, a) == pytest.approx(textbook_erlang_c(n, a), rel=1e-12)


def test_erlang_b_small_cases_by_hand() -> None:
    # B(1, A) = A / (1 + A); B(2, 1) = (1 x 1/2) / (2 + 1/2) = 1/5.
    assert erlang_b(1, 3.0) == pytest.approx(0.75)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang_b(0, 5.0) == 1.0


def test_large_centres_stay_finite() -> None:
    """A^N / N! overflows a float near N = 171; the recursion does not."""
    figures = operators_needed(traffic_erlangs(12000, 3600, 300), 300, 0.9, 15)
    assert 1000 < figures.operators < 1100
    assert 0.9 <= figures.service_level < 1
    assert math.isfinite(figures.average_speed_of_answer)


def test_edges() -> None:
    assert operators_needed(0.0, 180, 0.8, 20).operators == 0
    # Too few operators: everyone waits, the queue grows without bound.
    assert erlang_c(10, 10.0) == 1.0
    overloaded = staffing(5, 10.0, 180, 20)
    assert overloaded.service_level == 0.0
    assert overloaded.average_speed_of_answer == math.inf
    # A zero threshold asks that nobody waits: 1 - C.
    zero = operators_needed(10.0, 180, 0.8, 0)
    assert 1 - zero.wait_probability >= 0.8
    for bad in (0.0, 1.0, 80.0):
        with pytest.raises(ValueError):
            operators_needed(10.0, 180, bad, 20)
    with pytest.raises(ValueError):
        operators_needed(10.0, 0, 0.8, 20)
    with pytest.raises(ValueError):
        traffic_erlangs(10, 0, 180)
