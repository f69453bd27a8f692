"""operator id -> group id, in memory: the event filter asks it for every event.

Loaded at start and reloaded (one query) after any user change; user changes are admin
actions, rare next to events.
"""

from __future__ import annotations

from callcenterd.store.operators import OperatorDirectory


class OperatorGroups:
    def __init__(self, directory: OperatorDirectory) -> None:
        self._directory = directory
        self._groups: dict[str, str | None] = {}

    def group_of(self, operator_id: str) -> str | None:
        return self._groups.get(operator_id)

    async def reload(self) -> None:
        operators = await self._directory.find()
        # Operators deleted since keep their group: their past calls still belong to it.
        self._groups.update({operator.id: operator.group_id for operator in operators})
