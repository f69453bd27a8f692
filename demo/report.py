"""What the demo prints once a minute, read back from the daemon's API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .provision import Api


@dataclass(frozen=True)
class Figures:
    """Today's figures as the daemon reports them (the demo's state starts empty)."""

    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    missed: int = 0
    waiting: int = 0
    callbacks_booked: int = 0
    callbacks_pending: int = 0
    callbacks_completed: int = 0
    operators_on_call: int = 0
    operators_free: int = 0
    pause_reasons: tuple[str, ...] = ()  # one per paused operator
    operators_offline: int = 0
    service_level: float = 0.0


async def read_figures(api: Api) -> Figures:
    stats = await api("GET", "/api/dashboard/stats?period=today")
    realtime = await api("GET", "/api/dashboard/realtime")
    callbacks = (await api("GET", "/api/callbacks/?limit=1000"))["items"]
    activity = await api("GET", "/api/dashboard/operator-activity")
    return figures_from(stats, realtime, callbacks, activity)


def figures_from(
    stats: dict[str, Any],
    realtime: dict[str, Any],
    callbacks: list[dict[str, Any]],
    activity: list[dict[str, Any]],
) -> Figures:
    statuses = [callback["status"] for callback in callbacks]
    on_call = [op for op in activity if op["current_call_duration"] is not None]
    paused = [op for op in activity if op not in on_call and op.get("pause_reason")]
    offline = [op for op in activity if op not in on_call and op["status"] == "offline"]
    return Figures(
        calls=stats["total_calls_today"],
        answered=stats["answered_calls_today"],
        abandoned=stats["abandoned_calls"],
        missed=stats["missed_calls_today"],
        waiting=realtime["queue_waiting"],
        callbacks_booked=len(statuses),
        callbacks_pending=sum(s in ("pending", "dialing") for s in statuses),
        callbacks_completed=statuses.count("completed"),
        operators_on_call=len(on_call),
        operators_free=len(activity) - len(on_call) - len(paused) - len(offline),
        pause_reasons=tuple(sorted(str(op["pause_reason"]) for op in paused)),
        operators_offline=len(offline),
        service_level=float(stats["service_level"]),
    )


def minute_line(minute: int, placed: int, before: Figures, now: Figures) -> str:
    """One line: this minute's changes (+n) and the totals in brackets, then the moment."""

    def change(name: str, field: str) -> str:
        value: int = getattr(now, field)
        return f"{name} +{value - getattr(before, field)} ({value})"

    pauses = f" ({', '.join(now.pause_reasons)})" if now.pause_reasons else ""
    return (
        f"[min {minute}] placed {placed} | {change('calls', 'calls')}, "
        f"{change('answered', 'answered')}, {change('abandoned', 'abandoned')}, "
        f"{change('callbacks booked', 'callbacks_booked')} "
        f"[{now.callbacks_pending} pending, {now.callbacks_completed} done] | "
        f"waiting {now.waiting} | operators: {now.operators_on_call} talking, "
        f"{now.operators_free} free, {len(now.pause_reasons)} paused{pauses}, "
        f"{now.operators_offline} offline | SL {now.service_level:.0f}%"
    )
