"""How services tell the routing engine about changes (queues, operators, presence).

The dispatcher implements it. `submit` returns once the engine has handled the event and
the facts it produced are stored, so an API answer reflects the change it made.
"""

from __future__ import annotations

from typing import Protocol

from callcenterd.domain.events import Event


class RoutingPort(Protocol):
    async def submit(self, event: Event) -> None: ...
