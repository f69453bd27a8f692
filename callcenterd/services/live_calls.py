"""The calls the dispatcher is driving now: which channels, legs and bridges are whose.

Only ids the dispatcher itself chose or was told by Asterisk: no routing state (the engine
has that) and no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class LiveCall:
    call_id: str
    channel_id: str  # the caller's
    caller_number: str
    node: str  # the Asterisk node the caller's channel lives on
    legs: dict[str, str] = field(default_factory=dict)  # leg (channel) id -> operator id
    holding_bridge: str | None = None
    talk_bridge: str | None = None
    playback_id: str | None = None  # the announcement playing to the caller, if any
    playbacks: int = 0  # announcements played so far (their ids)
    answered: bool = False  # the caller's channel was answered by us (no second answer)


# Bridge ids are the call's: after a restart they tell which bridge was whose.
def hold_bridge_of(call_id: str) -> str:
    return f"hold-{call_id}"


def talk_bridge_of(call_id: str) -> str:
    return f"talk-{call_id}"


class LiveCalls:
    def __init__(self) -> None:
        self._calls: dict[str, LiveCall] = {}
        self._by_channel: dict[str, str] = {}  # caller channel id -> call id
        self._by_leg: dict[str, str] = {}  # leg channel id -> call id

    def __iter__(self) -> Iterator[LiveCall]:
        return iter(list(self._calls.values()))

    def add(self, call: LiveCall) -> None:
        self._calls[call.call_id] = call
        self._by_channel[call.channel_id] = call.call_id
        for leg_id in call.legs:
            self._by_leg[leg_id] = call.call_id

    def add_leg(self, call_id: str, leg_id: str, operator_id: str) -> None:
        self._by_leg[leg_id] = call_id
        call = self._calls.get(call_id)
        if call is not None:
            call.legs[leg_id] = operator_id

    def get(self, call_id: str) -> LiveCall | None:
        return self._calls.get(call_id)

    def of_caller(self, channel_id: str) -> str | None:
        """The call id whose caller is on this channel."""
        return self._by_channel.get(channel_id)

    def is_leg(self, channel_id: str) -> bool:
        return channel_id in self._by_leg

    def of_channel(self, channel_id: str) -> LiveCall | None:
        """The call a channel (caller or leg) belongs to."""
        call_id = self._by_channel.get(channel_id) or self._by_leg.get(channel_id)
        return self._calls.get(call_id) if call_id else None

    def known_channels(self) -> set[str]:
        return set(self._by_channel) | set(self._by_leg)

    def callers(self) -> list[tuple[str, str]]:
        """(caller channel id, call id) of every live call."""
        return list(self._by_channel.items())

    def remove(self, call_id: str) -> LiveCall | None:
        call = self._calls.pop(call_id, None)
        if call is not None:
            self._by_channel.pop(call.channel_id, None)
            for leg_id in call.legs:
                self._by_leg.pop(leg_id, None)
        return call
