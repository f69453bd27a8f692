"""What the demo's simulated people do, drawn from a seeded `random.Random`: no I/O, no clock.

Times are seconds since the demo started. The streams are endless; the runner takes from them
until it stops. Callers arrive as a Poisson process (exponential gaps at the chosen rate);
operators follow their habit: some pause now and then with a reason, one goes offline for a
while and comes back.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

Range = tuple[float, float]


class CallerKind(enum.StrEnum):
    PATIENT = "patient"  # waits until served (or until the queue's max wait)
    IMPATIENT = "impatient"  # hangs up after `patience` seconds of waiting
    CALLBACK = "callback"  # presses 1 when offered a callback


@dataclass(frozen=True)
class CallerMix:
    """Who calls, how often, and how they behave."""

    rate_per_minute: float
    queue_weights: Mapping[str, float]  # asterisk queue name -> share of the calls
    abandon_share: float = 0.25
    callback_share: float = 0.15
    patience: Range = (15.0, 60.0)  # an impatient caller's wait before hanging up
    # A queue's callback offer comes its callback_offer_after seconds into the wait (the
    # daemon answers at once); a caller who wants one presses 1 `press_delay` after that.
    offer_after: Mapping[str, float] = field(default_factory=dict)
    press_delay: Range = (2.0, 5.0)

    def __post_init__(self) -> None:
        if self.rate_per_minute <= 0:
            raise ValueError(f"the call rate must be positive, not {self.rate_per_minute}")
        if not self.queue_weights or min(self.queue_weights.values()) < 0:
            raise ValueError("queue weights must be non-negative, at least one queue")
        if not 0 <= self.abandon_share + self.callback_share <= 1:
            raise ValueError("abandon_share + callback_share must be within 0..1")


@dataclass(frozen=True)
class CallerPlan:
    at: float
    queue: str
    number: str
    kind: CallerKind
    patience: float | None = None  # IMPATIENT only
    press_after: float | None = None  # CALLBACK only


def caller_number(rng: random.Random) -> str:
    """A mobile-looking number: 11 digits, never a sandbox extension (10NN)."""
    return f"79{rng.randrange(10**9):09d}"


def caller_stream(rng: random.Random, mix: CallerMix) -> Iterator[CallerPlan]:
    """Endless callers in arrival order."""
    queues = list(mix.queue_weights)
    weights = [mix.queue_weights[queue] for queue in queues]
    seen: set[str] = set()
    at = 0.0
    while True:
        at += rng.expovariate(mix.rate_per_minute / 60.0)
        queue = rng.choices(queues, weights)[0]
        number = caller_number(rng)
        while number in seen:  # the daemon books one callback per number and queue
            number = caller_number(rng)
        seen.add(number)
        draw = rng.random()
        if draw < mix.abandon_share:
            yield CallerPlan(
                at, queue, number, CallerKind.IMPATIENT, patience=_draw(rng, mix.patience)
            )
        elif draw < mix.abandon_share + mix.callback_share:
            press = mix.offer_after.get(queue, 0.0) + _draw(rng, mix.press_delay)
            yield CallerPlan(at, queue, number, CallerKind.CALLBACK, press_after=press)
        else:
            yield CallerPlan(at, queue, number, CallerKind.PATIENT)


class Habit(enum.StrEnum):
    STEADY = "steady"
    PAUSES = "pauses"  # takes a pause with a reason now and then
    GOES_OFFLINE = "goes_offline"  # logs off (phone and all) for a while, then back


@dataclass(frozen=True)
class OperatorProfile:
    extension: str
    username: str
    name: str
    group: str
    answer_ms: tuple[int, int] = (1000, 6000)
    talk_ms: tuple[int, int] = (20_000, 120_000)
    busy_ratio: float = 0.0  # share of calls the phone rejects as busy (another line)
    habit: Habit = Habit.STEADY


class Presence(enum.StrEnum):
    """What the API's PUT /api/operators/{id}/status takes (`busy`: paused)."""

    ONLINE = "online"
    PAUSED = "busy"
    OFFLINE = "offline"


@dataclass(frozen=True)
class OperatorChange:
    at: float
    extension: str
    presence: Presence
    reason: str | None = None  # PAUSED only
    phone_on: bool = True  # False: the phone's sipp is stopped too (OFFLINE)


@dataclass(frozen=True)
class HabitTimes:
    """How long the spells of a habit last (uniform in each range), in seconds."""

    first_change: Range = (15.0, 45.0)  # the first one comes within the first minute
    working: Range = (60.0, 180.0)
    paused: Range = (30.0, 120.0)
    offline: Range = (60.0, 150.0)


def operator_schedule(
    rng: random.Random,
    profiles: Sequence[OperatorProfile],
    pause_reasons: Sequence[str],
    times: HabitTimes = HabitTimes(),
) -> Iterator[OperatorChange]:
    """Every operator's changes, merged in time order (endless when a habit changes)."""
    if not pause_reasons and any(p.habit is Habit.PAUSES for p in profiles):
        raise ValueError("an operator who pauses needs at least one pause reason")
    # One child generator per operator, each drawing from its own seeded RNG so that adding
    # an operator does not change the others' schedules.
    streams = [
        _habit_changes(random.Random(rng.random()), profile, pause_reasons, times)
        for profile in profiles
        if profile.habit is not Habit.STEADY
    ]
    return heapq.merge(*streams, key=lambda change: change.at)


def _habit_changes(
    rng: random.Random, profile: OperatorProfile, reasons: Sequence[str], times: HabitTimes
) -> Iterator[OperatorChange]:
    extension = profile.extension
    at = _draw(rng, times.first_change)
    while True:
        if profile.habit is Habit.PAUSES:
            reason = rng.choice(reasons)
            yield OperatorChange(at, extension, Presence.PAUSED, reason=reason)
            at += _draw(rng, times.paused)
        else:
            yield OperatorChange(at, extension, Presence.OFFLINE, phone_on=False)
            at += _draw(rng, times.offline)
        yield OperatorChange(at, extension, Presence.ONLINE)
        at += _draw(rng, times.working)


def _draw(rng: random.Random, bounds: Range) -> float:
    return rng.uniform(*bounds)
