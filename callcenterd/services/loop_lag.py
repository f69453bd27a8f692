"""Event-loop lag: how late the loop wakes a short sleep.

Anything that holds the loop (a slow handler, CPU work on it) delays every call's routing by
as much; this makes it visible (/metrics) without a profiler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

LAG_INTERVAL = 0.1  # seconds between samples


async def watch_loop_lag(observe: Callable[[float], None], interval: float = LAG_INTERVAL) -> None:
    """Forever: sleep `interval`, then `observe` how many seconds late the loop woke."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - asked))
