"""ARI JSON events -> domain events. Pure: ARI field names are read here and nowhere else."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from callcenterd.domain import events as ev
from callcenterd.domain.events import LegFailure
from callcenterd.domain.supervision import is_supervision_channel
from callcenterd.telephony.call_control import Bridge, Channel, EndpointState

# Appended as the first application argument of every operator leg we create.
LEG_MARK = "ccd-leg"
# The only events translate() acts on: Asterisk is asked to send these alone (the app's
# event filter), and anything else that still arrives is dropped first thing. A call sends
# several times as many others (channel state, bridges, caller id, variables, music, talk
# detection) that would each cost a JSON decode on the event loop.
HANDLED = frozenset(
    {
        "StasisStart",
        "StasisEnd",
        "Dial",
        "ChannelHangupRequest",
        "ChannelDestroyed",
        "ChannelDtmfReceived",
        "PlaybackFinished",
        "BridgeAttendedTransfer",
        "EndpointStateChange",
    }
)

# Q.850 causes of a leg that ended before it was answered.
_BUSY_CAUSES = frozenset({17, 21})
_NO_ANSWER_CAUSES = frozenset({18, 19})
_NORMAL_CAUSES = frozenset({0, 16})
_DIAL_STATUS = {
    "BUSY": LegFailure.BUSY,
    "NOANSWER": LegFailure.NO_ANSWER,
    "CHANUNAVAIL": LegFailure.UNREACHABLE,
    "CONGESTION": LegFailure.UNREACHABLE,
}


@dataclass(frozen=True, slots=True)
class CallerEntered:
    """An inbound channel entered the app: the dispatcher makes it a call."""

    channel: Channel
    args: tuple[str, ...]
    priority: int = 0

    @property
    def caller_number(self) -> str:
        return self.channel.caller_number or "unknown"


@dataclass(frozen=True, slots=True)
class LegInStasis:
    """A leg we created is in the app (right after create, before it is dialed)."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class CallerLeft:
    channel_id: str


@dataclass(frozen=True, slots=True)
class LegReplacing:
    """A transfer from an operator's phone (SIP REFER): Asterisk swapped a Local channel into
    the bridge in place of our leg `leg_id`. Blind, it dials `number`; attended, it is already
    joined with `number`'s phone, which the operator had consulted."""

    channel_id: str
    leg_id: str
    number: str
    attended: bool = False


# A Local channel's name: Local/<exten>@<context>-<id>;<half>
_LOCAL_NAME = re.compile(r"^Local/([^@]+)@")
# The Local channel Asterisk links two bridges with to complete an attended transfer; which
# phone it joins the caller to is told only by the BridgeAttendedTransfer event after it.
_ATTENDED_LINK = "Local/_attended@transfer-"
# A device channel's name: <tech>/<endpoint>-<sequence>
_DEVICE_NAME = re.compile(r"^[^/]+/(.+)-[0-9a-f]+$")


@dataclass(frozen=True, slots=True)
class SupervisionSignal:
    """A supervisor's phone or a snoop channel (services/supervision.py): in the app, answered,
    or gone. Never a caller, never an operator leg."""

    channel_id: str
    kind: Literal["in_stasis", "answered", "gone"]


@dataclass(frozen=True, slots=True)
class DigitReceived:
    """A key pressed on a channel (RFC 4733 / SIP INFO DTMF, as Asterisk decoded it)."""

    channel_id: str
    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """A playback we started is over (played out, stopped, or its channel gone)."""

    playback_id: str


Translated = (
    CallerEntered
    | CallerLeft
    | LegInStasis
    | LegReplacing
    | SupervisionSignal
    | DigitReceived
    | PlaybackFinished
    | EndpointState
    | ev.Event
)

# A caller's priority: `Stasis(callcenterd,QUEUE,priority=N)`, else this channel variable
# (sent with StasisStart when ari.conf lists it in `channelvars`). Higher is served first.
PRIORITY_VARIABLE = "CALLCENTERD_PRIORITY"
MAX_PRIORITY = 100


def caller_priority(extra_args: tuple[str, ...], variable: object) -> int:
    """0..MAX_PRIORITY; a value that is not a whole number counts as no priority (0)."""
    given = next((a[len("priority=") :] for a in extra_args if a.startswith("priority=")), None)
    text = given if given is not None else variable
    if not isinstance(text, str) or not text.strip().isdigit():
        return 0
    return min(int(text.strip()), MAX_PRIORITY)


def _failure_for_cause(cause: int) -> LegFailure:
    if cause in _BUSY_CAUSES:
        return LegFailure.BUSY
    if cause in _NO_ANSWER_CAUSES:
        return LegFailure.NO_ANSWER
    return LegFailure.UNREACHABLE


def translate(frame: dict[str, Any], is_leg: Callable[[str], bool]) -> list[Translated]:
    """Turn one ARI event into what the daemon acts on (often nothing)."""
    kind = frame.get("type", "")
    if kind not in HANDLED:
        return []
    channel = frame.get("channel") or {}
    channel_id = str(channel.get("id", ""))
    supervision = _supervision(kind, frame, channel_id)
    if supervision is not None:
        return supervision
    match kind:
        case "StasisStart":
            replaced = str((frame.get("replace_channel") or {}).get("id", ""))
            if replaced and is_leg(replaced):
                if str(channel.get("name", "")).startswith(_ATTENDED_LINK):
                    return []
                return [LegReplacing(channel_id, replaced, _dialed(channel))]
            args = tuple(str(a) for a in frame.get("args", []))
            if (args and args[0] == LEG_MARK) or is_leg(channel_id):
                return [LegInStasis(channel_id)]
            variables = channel.get("channelvars") or {}
            priority = caller_priority(args[1:], variables.get(PRIORITY_VARIABLE))
            return [CallerEntered(channel_of(channel), args, priority)]
        case "StasisEnd":
            if is_leg(channel_id):
                return [ev.LegHungUp(channel_id)]
            return [CallerLeft(channel_id)]
        case "Dial":
            peer = frame.get("peer") or {}
            peer_id = str(peer.get("id", ""))
            status = str(frame.get("dialstatus", ""))
            if not is_leg(peer_id):
                return []
            if status == "RINGING":
                return [ev.LegRinging(peer_id)]
            if status == "ANSWER":
                return [ev.LegAnswered(peer_id)]
            if status in _DIAL_STATUS:
                return [ev.LegFailed(peer_id, _DIAL_STATUS[status])]
            return []
        case "ChannelHangupRequest":
            # For a leg that never answered this comes first, before StasisEnd: it is the
            # only place that says why (busy, no answer). Normal clearing says nothing.
            cause = int(frame.get("cause", 0))
            if is_leg(channel_id) and cause not in _NORMAL_CAUSES:
                return [ev.LegFailed(channel_id, _failure_for_cause(cause))]
            return []
        case "ChannelDestroyed":
            if is_leg(channel_id):
                # A leg that never reached Stasis ends here; one that did has had StasisEnd
                # already, and the engine ignores legs it no longer knows.
                return [ev.LegFailed(channel_id, _failure_for_cause(int(frame.get("cause", 0))))]
            return []
        case "ChannelDtmfReceived":
            digit = str(frame.get("digit", ""))
            return [DigitReceived(channel_id, digit)] if channel_id and digit else []
        case "PlaybackFinished":
            playback_id = str((frame.get("playback") or {}).get("id", ""))
            return [PlaybackFinished(playback_id)] if playback_id else []
        case "BridgeAttendedTransfer":
            return _attended_transfer(frame, is_leg)
        case "EndpointStateChange":
            endpoint = frame.get("endpoint") or {}
            return [endpoint_state(endpoint)]
    return []


def _attended_transfer(frame: dict[str, Any], is_leg: Callable[[str], bool]) -> list[Translated]:
    """An attended transfer completed on the operator's phone: the transferer's leg to the
    caller is ours, and Asterisk linked the caller's bridge to the consulted phone's by a
    Local channel pair (or moved that phone into the caller's bridge)."""
    if frame.get("result") != "Success":
        return []
    legs = (frame.get("transferer_first_leg") or {}, frame.get("transferer_second_leg") or {})
    ours = next((str(leg["id"]) for leg in legs if is_leg(str(leg.get("id", "")))), None)
    target = frame.get("transfer_target") or {}
    if ours is None or not target:
        return []
    if frame.get("destination_type") == "link":
        joined = str((frame.get("destination_link_first_leg") or {}).get("id", ""))
    else:
        joined = str(target.get("id", ""))
    device = _DEVICE_NAME.match(str(target.get("name", "")))
    number = device[1] if device else str((target.get("caller") or {}).get("number", ""))
    return [LegReplacing(joined, ours, number, attended=True)] if joined else []


def _dialed(channel: dict[str, Any]) -> str:
    """What a transfer's Local channel dials: its name's extension, else its dialplan's."""
    named = _LOCAL_NAME.match(str(channel.get("name", "")))
    if named:
        return named[1]
    return str((channel.get("dialplan") or {}).get("exten") or "")


_GONE = frozenset({"StasisEnd", "ChannelDestroyed"})


def _supervision(kind: str, frame: dict[str, Any], channel_id: str) -> list[Translated] | None:
    """The events of supervision channels, told apart by their ids (domain/supervision.py);
    None for any other channel's."""
    if kind == "Dial":
        peer_id = str((frame.get("peer") or {}).get("id", ""))
        if not is_supervision_channel(peer_id):
            return None
        status = str(frame.get("dialstatus", ""))
        if status == "ANSWER":
            return [SupervisionSignal(peer_id, "answered")]
        return [SupervisionSignal(peer_id, "gone")] if status in _DIAL_STATUS else []
    if not is_supervision_channel(channel_id):
        return None
    if kind == "StasisStart":
        return [SupervisionSignal(channel_id, "in_stasis")]
    return [SupervisionSignal(channel_id, "gone")] if kind in _GONE else []


# --- REST answers -----------------------------------------------------------------------------
def channel_of(channel: dict[str, Any]) -> Channel:
    caller = channel.get("caller") or {}
    dialplan = channel.get("dialplan") or {}
    created = channel.get("creationtime")
    return Channel(
        id=str(channel.get("id", "")),
        name=str(channel.get("name", "")),
        state=str(channel.get("state", "")),
        caller_number=str(caller.get("number") or ""),
        caller_name=str(caller.get("name") or ""),
        called_number=str(dialplan.get("exten")) if dialplan.get("exten") else None,
        created_at=str(created) if created else None,
    )


def bridge_of(bridge: dict[str, Any]) -> Bridge:
    return Bridge(
        str(bridge.get("id", "")),
        str(bridge.get("bridge_type", "")),
        frozenset(str(c) for c in bridge.get("channels", [])),
    )


def app_channel_ids(application: dict[str, Any]) -> set[str]:
    return {str(c) for c in application.get("channel_ids", [])}


def variable_value(answer: Any) -> str | None:
    value = answer.get("value") if isinstance(answer, dict) else None
    return str(value) if value else None


def device_states(states: list[dict[str, Any]]) -> dict[str, str]:
    return {str(s.get("name")): str(s.get("state")) for s in states}


def asterisk_version(info: Any) -> str | None:
    system = info.get("system") if isinstance(info, dict) else None
    version = system.get("version") if isinstance(system, dict) else None
    return str(version) if version else None


def asterisk_system_name(info: dict[str, Any]) -> str | None:
    config, system = info.get("config") or {}, info.get("system") or {}
    name = config.get("name") or system.get("entity_id")
    return str(name) if name else None


def endpoint_state(endpoint: dict[str, Any]) -> EndpointState:
    state = str(endpoint.get("state", "unknown"))
    online = True if state == "online" else False if state == "offline" else None
    return EndpointState(
        str(endpoint.get("technology", "")), str(endpoint.get("resource", "")), online
    )
