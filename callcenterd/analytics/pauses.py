"""Time in each pause reason: pause spells clipped to a report's window. Pure.

A spell is one stretch an operator spent paused under one reason (store/analytics.py reads
them); an open spell (no end yet) lasts until `now`. Only the part of a spell inside the
window [start, end) counts, so a pause over midnight is split between the two days' reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PauseSpell:
    operator_id: str
    reason: str
    started_at: datetime
    ended_at: datetime | None  # None: still paused


def seconds_inside(spell: PauseSpell, start: datetime, end: datetime, now: datetime) -> float:
    """Seconds of the spell inside [start, end), counting an open spell up to `now`."""
    until = spell.ended_at if spell.ended_at is not None else now
    inside = (min(until, end) - max(spell.started_at, start)).total_seconds()
    return max(0.0, inside)


def pause_seconds_by_reason(
    spells: Iterable[PauseSpell], start: datetime, end: datetime, now: datetime
) -> dict[str, dict[str, int]]:
    """Operator id -> reason -> whole seconds paused inside [start, end).

    Seconds are summed exactly per reason and rounded once, so many short spells do not
    lose a second each; reasons with no time inside the window are left out.
    """
    totals: dict[str, dict[str, float]] = {}
    for spell in spells:
        seconds = seconds_inside(spell, start, end, now)
        if seconds > 0:
            reasons = totals.setdefault(spell.operator_id, {})
            reasons[spell.reason] = reasons.get(spell.reason, 0.0) + seconds
    return {
        operator_id: {reason: round(seconds) for reason, seconds in sorted(reasons.items())}
        for operator_id, reasons in totals.items()
    }
