"""ARI frames (shaped as Asterisk 22 sends them) -> what the dispatcher acts on."""

from __future__ import annotations

from typing import Any

import pytest

from callcenterd.domain import events as ev
from callcenterd.domain.events import LegFailure
from callcenterd.telephony.call_control import Channel, EndpointState
from callcenterd.telephony.translate import (
    LEG_MARK,
    CallerEntered,
    CallerLeft,
    LegInStasis,
    Translated,
    caller_priority,
    translate,
)

LEG = "3f1c-leg-1"


def channel(channel_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": channel_id,
        "name": "PJSIP/trunk-00000001",
        "state": "Ring",
        "caller": {"name": "Alice", "number": "5551234"},
        "dialplan": {"context": "from-trunk", "exten": "7000", "priority": 2},
        **extra,
    }


def is_leg(channel_id: str) -> bool:
    return channel_id == LEG


CASES: list[tuple[str, dict[str, Any], list[Translated]]] = [
    (
        "inbound StasisStart with the queue argument",
        {"type": "StasisStart", "args": ["support"], "channel": channel("1700.1")},
        [
            CallerEntered(
                Channel("1700.1", "PJSIP/trunk-00000001", "Ring", "5551234", "Alice", "7000"),
                ("support",),
            )
        ],
    ),
    (
        "a priority in the Stasis arguments wins over the channel variable",
        {
            "type": "StasisStart",
            "args": ["vip", "priority=7"],
            "channel": channel("1700.3", channelvars={"CALLCENTERD_PRIORITY": "2"}),
        },
        [
            CallerEntered(
                Channel("1700.3", "PJSIP/trunk-00000001", "Ring", "5551234", "Alice", "7000"),
                ("vip", "priority=7"),
                7,
            )
        ],
    ),
    (
        "a priority from the channel variable (ari.conf channelvars)",
        {
            "type": "StasisStart",
            "args": ["vip"],
            "channel": channel("1700.4", channelvars={"CALLCENTERD_PRIORITY": "3"}),
        },
        [
            CallerEntered(
                Channel("1700.4", "PJSIP/trunk-00000001", "Ring", "5551234", "Alice", "7000"),
                ("vip",),
                3,
            )
        ],
    ),
    (
        "inbound without caller number",
        {"type": "StasisStart", "args": [], "channel": channel("1700.2", caller={})},
        [CallerEntered(Channel("1700.2", "PJSIP/trunk-00000001", "Ring", "", "", "7000"), ())],
    ),
    (
        "our leg enters Stasis when created, before it is dialed",
        {"type": "StasisStart", "args": [LEG_MARK, "call"], "channel": channel(LEG)},
        [LegInStasis(LEG)],
    ),
    ("caller leaves", {"type": "StasisEnd", "channel": channel("1700.1")}, [CallerLeft("1700.1")]),
    ("leg leaves", {"type": "StasisEnd", "channel": channel(LEG)}, [ev.LegHungUp(LEG)]),
    (
        "leg rings",
        {"type": "Dial", "dialstatus": "RINGING", "peer": channel(LEG)},
        [ev.LegRinging(LEG)],
    ),
    (
        "leg busy",
        {"type": "Dial", "dialstatus": "BUSY", "peer": channel(LEG)},
        [ev.LegFailed(LEG, LegFailure.BUSY)],
    ),
    (
        "leg unavailable",
        {"type": "Dial", "dialstatus": "CHANUNAVAIL", "peer": channel(LEG)},
        [ev.LegFailed(LEG, LegFailure.UNREACHABLE)],
    ),
    (
        "leg answers",
        {"type": "Dial", "dialstatus": "ANSWER", "peer": channel(LEG)},
        [ev.LegAnswered(LEG)],
    ),
    (
        "dial of someone else's channel",
        {"type": "Dial", "dialstatus": "BUSY", "peer": channel("other")},
        [],
    ),
    (
        "leg destroyed, no answer",
        {"type": "ChannelDestroyed", "cause": 19, "channel": channel(LEG)},
        [ev.LegFailed(LEG, LegFailure.NO_ANSWER)],
    ),
    (
        "leg destroyed, busy",
        {"type": "ChannelDestroyed", "cause": 17, "channel": channel(LEG)},
        [ev.LegFailed(LEG, LegFailure.BUSY)],
    ),
    (
        "leg destroyed, unregistered",
        {"type": "ChannelDestroyed", "cause": 20, "channel": channel(LEG)},
        [ev.LegFailed(LEG, LegFailure.UNREACHABLE)],
    ),
    (
        "caller destroyed: StasisEnd already said it",
        {"type": "ChannelDestroyed", "cause": 16, "channel": channel("1700.1")},
        [],
    ),
    (
        "busy leg: the hangup request carries the cause",
        {"type": "ChannelHangupRequest", "cause": 17, "channel": channel(LEG)},
        [ev.LegFailed(LEG, LegFailure.BUSY)],
    ),
    (
        "normal hangup request of a leg says nothing",
        {"type": "ChannelHangupRequest", "cause": 16, "channel": channel(LEG)},
        [],
    ),
    (
        "hangup request of a caller",
        {"type": "ChannelHangupRequest", "cause": 17, "channel": channel("1700.1")},
        [],
    ),
    ("varset noise", {"type": "ChannelVarset", "variable": "X", "channel": channel(LEG)}, []),
    (
        "a type the app's event filter does not let through",
        {"type": "ChannelStateChange", "channel": channel(LEG)},
        [],
    ),
    (
        "endpoint offline",
        {
            "type": "EndpointStateChange",
            "endpoint": {"technology": "PJSIP", "resource": "1001", "state": "offline"},
        },
        [EndpointState("PJSIP", "1001", False)],
    ),
    (
        "endpoint unknown",
        {
            "type": "EndpointStateChange",
            "endpoint": {"technology": "PJSIP", "resource": "1002", "state": "unknown"},
        },
        [EndpointState("PJSIP", "1002", None)],
    ),
    ("an event we do not use", {"type": "ChannelStateChange", "channel": channel(LEG)}, []),
]


@pytest.mark.parametrize(("frame", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_translate(frame: dict[str, Any], expected: list[Translated]) -> None:
    assert translate(frame, is_leg) == expected


@pytest.mark.parametrize(
    ("args", "variable", "priority"),
    [
        ((), None, 0),
        (("priority=5",), None, 5),
        (("other=1", "priority=12"), "3", 12),
        ((), " 4 ", 4),
        (("priority=-3",), None, 0),  # never negative
        (("priority=x",), "9", 0),  # the argument given, unreadable: no priority
        ((), "1e3", 0),
        (("priority=100000",), None, 100),  # capped
        ((), 7, 0),  # a variable is text; anything else is ignored
    ],
)
def test_caller_priority(args: tuple[str, ...], variable: object, priority: int) -> None:
    assert caller_priority(args, variable) == priority


def test_a_local_channel_replacing_our_leg_is_a_phone_transfer() -> None:
    from callcenterd.telephony.translate import LegReplacing

    frame = {
        "type": "StasisStart",
        "args": [],
        "channel": {"id": "9.2", "name": "Local/1002@operators-00000000;1", "state": "Down"},
        "replace_channel": {"id": "call-1", "name": "PJSIP/1001-00000001"},
    }
    assert translate(frame, lambda channel: channel == "call-1") == [
        LegReplacing("9.2", "call-1", "1002")
    ]
    # Replacing a channel that is not ours: an ordinary new caller.
    [entered] = translate(frame, lambda channel: False)
    assert type(entered).__name__ == "CallerEntered"


def test_an_attended_transfer_from_the_phone_is_read_from_its_bridge_event() -> None:
    from callcenterd.telephony.translate import LegReplacing

    ours = lambda channel: channel == "call-1"  # noqa: E731
    # The Local channel linking the bridges enters the app first: who it joins is not known yet.
    link = {
        "type": "StasisStart",
        "args": [],
        "channel": {"id": "9.4", "name": "Local/_attended@transfer-00000000;1"},
        "replace_channel": {"id": "call-1", "name": "PJSIP/1011-00000001"},
    }
    assert translate(link, ours) == []
    done = {
        "type": "BridgeAttendedTransfer",
        "result": "Success",
        "transferer_first_leg": {"id": "call-1", "name": "PJSIP/1011-00000001"},
        "transferer_second_leg": {"id": "9.2", "name": "PJSIP/1011-00000002"},
        "transferee": {"id": "9.0", "name": "PJSIP/trunk-00000000"},
        "transfer_target": {"id": "9.3", "name": "PJSIP/1012-00000003"},
        "destination_type": "link",
        "destination_link_first_leg": {"id": "9.4"},
        "destination_link_second_leg": {"id": "9.5"},
    }
    assert translate(done, ours) == [LegReplacing("9.4", "call-1", "1012", attended=True)]
    # Bridges merged instead: the consulted phone's channel itself is beside the caller now.
    merged = {**done, "destination_type": "bridge"}
    assert translate(merged, ours) == [LegReplacing("9.3", "call-1", "1012", attended=True)]
    # Not ours, or failed: nothing.
    assert translate(done, lambda channel: False) == []
    assert translate({**done, "result": "Fail"}, ours) == []


def test_dtmf_and_playback_ends_are_read() -> None:
    from callcenterd.telephony.translate import DigitReceived, PlaybackFinished, translate

    never_a_leg = lambda _channel_id: False  # noqa: E731
    dtmf = {"type": "ChannelDtmfReceived", "digit": "1", "channel": {"id": "c1"}}
    assert translate(dtmf, never_a_leg) == [DigitReceived("c1", "1")]
    assert translate({**dtmf, "digit": ""}, never_a_leg) == []
    finished = {"type": "PlaybackFinished", "playback": {"id": "callback-x", "state": "done"}}
    assert translate(finished, never_a_leg) == [PlaybackFinished("callback-x")]
    assert translate({"type": "PlaybackFinished", "playback": {}}, never_a_leg) == []
