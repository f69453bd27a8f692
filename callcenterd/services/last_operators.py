"""Who served each caller's number last: the memory behind last-operator routing.

Kept in memory (a call's arrival costs a dictionary lookup): loaded at start from the calls
answered in the last `days`, then told of every answer. Numbers are matched on their digits.
"""

from __future__ import annotations

from collections.abc import Iterable

from callcenterd.domain.callers import number_key


class LastOperators:
    def __init__(self) -> None:
        self._by_number: dict[str, str] = {}  # number key -> operator id

    def load(self, answered: Iterable[tuple[str, str]]) -> None:
        """(caller number, operator id) of answered calls, oldest first: the newest wins."""
        self._by_number = {number_key(number): operator for number, operator in answered}

    def served(self, caller_number: str, operator_id: str) -> None:
        self._by_number[number_key(caller_number)] = operator_id

    def of(self, caller_number: str) -> str | None:
        key = number_key(caller_number)
        return self._by_number.get(key) if key else None

    def forget(self, key: str) -> None:
        """A number erased (its digits `key`): routing no longer knows who served it."""
        self._by_number.pop(key, None)
