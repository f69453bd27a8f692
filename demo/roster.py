"""The demo's call center: its groups, queues, operators and supervisor (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .plan import Habit, OperatorProfile


@dataclass(frozen=True)
class GroupSpec:
    key: str
    name: str
    description: str


@dataclass(frozen=True)
class QueueSpec:
    asterisk_name: str  # the sandbox's dialplan numbers its queues by this name
    name: str
    description: str
    members: tuple[str, ...]  # extensions, in order
    strategy: str
    weight: float  # the share of the callers who dial it
    greeting: str | None = "queue-periodic-announce"
    callback_offer_after: int = 20  # seconds of waiting before the callback is offered
    max_wait_time: int = 300  # then the queue's overflow (hang up) ends the wait

    def create_body(self) -> dict[str, Any]:
        """POST /api/queues/ body."""
        return {
            "name": self.name,
            "description": self.description,
            "asterisk_name": self.asterisk_name,
            "strategy": self.strategy,
            "members": list(self.members),
            "max_wait_time": self.max_wait_time,
            "ring_timeout": 15,
            "wrapup_seconds": 3,
            "greeting": self.greeting,
            "announce_every": 30,
            "announce_wait": True,
            "callback_enabled": True,
            "callback_offer_after": self.callback_offer_after,
        }


@dataclass(frozen=True)
class SupervisorSpec:
    extension: str
    username: str
    name: str
    group: str


@dataclass(frozen=True)
class Roster:
    groups: tuple[GroupSpec, ...]
    operators: tuple[OperatorProfile, ...]
    supervisor: SupervisorSpec
    queues: tuple[QueueSpec, ...]
    # The sandbox phone that answers as the callers when callbacks dial them back.
    callback_phone: str


GROUPS = (
    GroupSpec("support", "Support team", "First line: questions, faults, orders"),
    GroupSpec("sales", "Sales team", "New customers and upgrades"),
)

OPERATORS = (
    OperatorProfile("1001", "anna", "Anna Petrova", "support", answer_ms=(1000, 3000)),
    OperatorProfile("1002", "ivan", "Ivan Sokolov", "support", habit=Habit.PAUSES),
    OperatorProfile("1003", "maria", "Maria Volkova", "support", busy_ratio=0.3),
    OperatorProfile("1004", "dmitry", "Dmitry Orlov", "sales", answer_ms=(3000, 6000)),
    OperatorProfile("1005", "elena", "Elena Smirnova", "sales", habit=Habit.PAUSES),
    OperatorProfile("1006", "pavel", "Pavel Kuznetsov", "sales", habit=Habit.GOES_OFFLINE),
)

QUEUES = (
    QueueSpec(
        "support",
        "Support",
        "Customer support line",
        members=("1001", "1002", "1003", "1004"),
        strategy="leastrecent",
        weight=0.6,
    ),
    QueueSpec(
        "sales",
        "Sales",
        "Sales line",
        members=("1004", "1005", "1006", "1001"),
        strategy="rrmemory",
        weight=0.4,
        callback_offer_after=25,
    ),
)

DEMO_ROSTER = Roster(
    groups=GROUPS,
    operators=OPERATORS,
    supervisor=SupervisorSpec("1010", "olga", "Olga Ivanova", "support"),
    queues=QUEUES,
    callback_phone="1020",
)
