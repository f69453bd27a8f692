"""The periodic `queue_stats` event: each queue's live figures, read from the routing engine.

The engine already keeps everything in memory (waiting callers, each queue's logged-in and
available members), so a tick costs no database query:
- waiting: callers in the queue now;
- longest_wait_seconds: how long the longest-waiting of them has waited (0 when none);
- operators_available: members free to take a call now;
- operators_busy: logged-in members not available (ringing, talking, wrap-up, paused);
- operators_logged_in: members not offline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from callcenterd.domain.clock import to_iso
from callcenterd.routing import RoutingEngine


def queue_figures(engine: RoutingEngine, now: float) -> list[dict[str, Any]]:
    figures = []
    for queue in sorted(engine.queues.values(), key=lambda q: (q.config.name, q.config.id)):
        arrivals = [engine.calls[c].arrived_at for c in queue.waiting if c in engine.calls]
        longest = max(0.0, now - min(arrivals)) if arrivals else 0.0
        available = len(queue.available)
        logged_in = len(queue.logged_in)
        figures.append(
            {
                "queue_id": queue.config.id,
                "name": queue.config.name,
                "waiting": len(queue.waiting),
                "longest_wait_seconds": round(longest, 1),
                "operators_available": available,
                "operators_busy": max(0, logged_in - available),
                "operators_logged_in": logged_in,
            }
        )
    return figures


def queue_stats_source(
    engine: RoutingEngine, clock: Callable[[], datetime]
) -> Callable[[], dict[str, Any]]:
    """The data of one queue_stats event, now."""

    def snapshot() -> dict[str, Any]:
        now = clock()
        return {"queues": queue_figures(engine, now.timestamp()), "timestamp": to_iso(now)}

    return snapshot


def queue_members(engine: RoutingEngine) -> Callable[[str], list[str]]:
    """queue id -> its member operators (as routing knows them), for event audiences."""

    def members(queue_id: str) -> list[str]:
        queue = engine.queues.get(queue_id)
        return [] if queue is None else [*queue.declared, *queue.members]

    return members


def queue_of_call(engine: RoutingEngine) -> Callable[[str], str | None]:
    def queue_id(call_id: str) -> str | None:
        call = engine.calls.get(call_id)
        return None if call is None else call.queue_id

    return queue_id
