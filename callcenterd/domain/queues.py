"""Queues and operators as the routing engine sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Strategy(StrEnum):
    """Operator selection, with app_queue's meanings."""

    RINGALL = "ringall"  # every available operator of the lowest penalty tier at once
    LEASTRECENT = "leastrecent"  # the one whose last call from this queue ended longest ago
    FEWESTCALLS = "fewestcalls"  # the one who completed fewest calls from this queue
    RANDOM = "random"
    RRMEMORY = "rrmemory"  # round robin, resuming after the last one rung (operator-id order)
    RRORDERED = "rrordered"  # round robin in the queue's member order
    LINEAR = "linear"  # always from the first member, in member order
    WRANDOM = "wrandom"  # random, lower penalty more likely; penalties are weights, not tiers


class OverflowAction(StrEnum):
    HANGUP = "hangup"  # end the call as missed (timeout)
    QUEUE = "queue"  # move the caller to overflow_queue_id, keeping their wait
    DIALPLAN = "dialplan"  # return the channel to the dialplan (after the Stasis() line)


class Presence(StrEnum):
    """What the operator (or a supervisor) chose; `busy` in the API is PAUSED here."""

    ONLINE = "online"
    PAUSED = "paused"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Member:
    operator_id: str
    penalty: int = 0


@dataclass(frozen=True, slots=True)
class QueueConfig:
    id: str
    name: str
    asterisk_name: str
    strategy: Strategy = Strategy.RINGALL
    priority: int = 1
    members: tuple[Member, ...] = ()
    # With required skills and no members, every operator having the skills is a member.
    required_skills: frozenset[str] = frozenset()
    numbers: tuple[str, ...] = ()  # dialed numbers that land in this queue
    is_default: bool = False
    is_active: bool = True
    max_wait_time: float | None = None  # None: the system's queue_timeout; 0: no limit
    ring_timeout: float = 15.0  # per ring attempt; 0: ring until answered or failed
    retry_delay: float = 5.0  # after every available member was tried once
    wrapup_seconds: float = 0.0
    join_empty: bool = True  # False: refuse callers at once when no operator is logged in
    overflow_action: OverflowAction = OverflowAction.HANGUP
    overflow_queue_id: str | None = None
    music_class: str = "default"
    greeting: str | None = None  # a sound played once to every caller joining the queue
    announce_every: float = 0.0  # seconds between position announcements; 0: none
    announce_wait: bool = True  # the estimated wait with the position
    # A returning caller waits up to this long for the operator who served them last; 0: off.
    last_operator_wait: float = 0.0
    callback_enabled: bool | None = None  # None: the system's callback_enabled
    callback_offer_after: float = 60.0  # seconds of waiting before the callback offer
    # SMS to callers (notify/sms_notices.py), each switchable; not read by the engine.
    sms_missed_call: bool = True
    sms_callback_scheduled: bool = True
    sms_callback_reminder: bool = True
    notification_language: Literal["ru", "en"] | None = None  # None: the [sms] language


@dataclass(frozen=True, slots=True)
class OperatorProfile:
    id: str
    extension: str
    skills: frozenset[str] = frozenset()
    max_concurrent_calls: int = 1
    presence: Presence = Presence.OFFLINE
    pause_reason: str | None = None
    name: str = field(default="", compare=False)
