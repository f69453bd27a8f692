"""Every dashboard figure, defined once. Pure: counts in, figures out; no I/O, no clock.

What is counted (the SQL in `store/analytics.py` is built from the constants here):

- a call *entered* (was offered to the centre) when its row started in the period, whatever
  became of it; calls belong to the period (and the hour) in which they started;
- *answered*: an operator picked it up (status `answered`, still talking, or `completed`);
- *missed*: status `missed`, any reason (`abandoned`, `timeout`, `no_operator`, `rejected`,
  `lost`);
- *abandoned*: missed because the caller hung up while waiting (reason `abandoned`: in the
  queue or while operators were being rung). A *short abandon* waited less than the
  short-abandon threshold (default 5 s): a misdial or a caller changing their mind, not a
  caller the centre failed;
- *unserved*: abandoned or timed out (reason `timeout`: the queue's maximum wait ran out)
  after waiting at least the short-abandon threshold. Timeouts count against the service
  level: a queue hanging up on every caller at 19 s must not show 100 %. Calls refused
  on arrival (`no_operator`, `rejected`) never waited and `lost` ones are unknown: they count
  as missed but not in the service level;
- *wait*: `wait_seconds`, from the start of the call to the answer (or to the end, unanswered);
- *talk*: `duration` of completed calls, in seconds.

Percentages are rounded to 0.1 and are 0.0 when there is nothing to divide by; averages of
seconds are whole seconds (0 when there is nothing to average).
"""

from __future__ import annotations

from dataclasses import dataclass

ANSWERED_STATUSES = ("answered", "completed")
MISSED_STATUS = "missed"
COMPLETED_STATUS = "completed"
ABANDONED_REASON = "abandoned"
UNSERVED_REASONS = ("abandoned", "timeout")


@dataclass(frozen=True, slots=True)
class CallCounts:
    """Aggregates of a set of calls (one period, queue, hour...), as SQL returns them."""

    entered: int = 0
    answered: int = 0
    answered_within_threshold: int = 0
    missed: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    unserved: int = 0
    answered_wait_seconds: float = 0.0  # total over answered calls
    longest_wait_seconds: float = 0.0  # of any call in the set
    completed: int = 0
    talk_seconds: int = 0  # total over completed calls

    def __add__(self, other: CallCounts) -> CallCounts:
        return CallCounts(
            entered=self.entered + other.entered,
            answered=self.answered + other.answered,
            answered_within_threshold=(
                self.answered_within_threshold + other.answered_within_threshold
            ),
            missed=self.missed + other.missed,
            abandoned=self.abandoned + other.abandoned,
            short_abandoned=self.short_abandoned + other.short_abandoned,
            unserved=self.unserved + other.unserved,
            answered_wait_seconds=self.answered_wait_seconds + other.answered_wait_seconds,
            longest_wait_seconds=max(self.longest_wait_seconds, other.longest_wait_seconds),
            completed=self.completed + other.completed,
            talk_seconds=self.talk_seconds + other.talk_seconds,
        )


@dataclass(frozen=True, slots=True)
class OperatorParts:
    """An operator's own parts of calls (call legs they answered): a transferred call counts
    for each operator who had it, with the seconds each talked and held."""

    answered: int = 0
    finished: int = 0  # of them, over (their talk is known)
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0


def average_part_talk(parts: OperatorParts) -> int:
    """Mean talk of an operator's finished parts of calls, seconds."""
    return mean_seconds(parts.talk_seconds, parts.finished)


def percent(part: float, whole: float) -> float:
    return round(part * 100 / whole, 1) if whole else 0.0


def mean_seconds(total: float, count: int) -> int:
    return round(total / count) if count else 0


def service_level(counts: CallCounts) -> float:
    """Answered within the threshold / (answered + unserved after the short threshold) x 100."""
    return percent(counts.answered_within_threshold, counts.answered + counts.unserved)


def average_wait(counts: CallCounts) -> int:
    """ASA: mean wait of answered calls, seconds."""
    return mean_seconds(counts.answered_wait_seconds, counts.answered)


def abandon_rate(counts: CallCounts) -> float:
    """Abandoned (not short) / calls entered (short abandons left out of both) x 100."""
    return percent(
        counts.abandoned - counts.short_abandoned, counts.entered - counts.short_abandoned
    )


def average_talk(counts: CallCounts) -> int:
    """Mean talk time of completed calls, seconds."""
    return mean_seconds(counts.talk_seconds, counts.completed)


def efficiency(answered: int, offered: int) -> float:
    """An operator's calls answered / calls offered to them (rung for, or answered) x 100."""
    return percent(answered, max(offered, answered))


def first_call_resolution(resolved: int, handled: int) -> float:
    """Handled calls whose caller did not call again within the window / handled x 100."""
    return percent(resolved, handled)


def satisfaction(rating_mean: float | None) -> float | None:
    """Mean rating (1-5) of rated calls; None when no call was rated."""
    return None if rating_mean is None else round(rating_mean, 2)


def occupancy(talk_seconds: float, logged_in_seconds: float) -> float | None:
    """Talk time / logged-in time x 100, at most 100; None without logged-in time.

    None rather than 0 because "no presence history" (e.g. before it was recorded) is not
    "idle all the time".
    """
    if logged_in_seconds <= 0:
        return None
    return min(100.0, percent(talk_seconds, logged_in_seconds))


def hour_label(hour: int) -> str:
    return f"{hour:02d}:00"


def busiest_hour(calls_by_hour: list[int]) -> str | None:
    """The local hour (of 24) with the most calls entered, earliest on a tie; None if none."""
    if not any(calls_by_hour):
        return None
    best = max(range(len(calls_by_hour)), key=lambda hour: (calls_by_hour[hour], -hour))
    return hour_label(best)
