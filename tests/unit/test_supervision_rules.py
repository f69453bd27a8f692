"""Supervision's pure parts: the snoop directions of each mode, how its channels' ARI events
are told apart from callers' and legs', and who sees its live events."""

from __future__ import annotations

from typing import Any

from callcenterd.domain.supervision import (
    AUDIO,
    SupervisionMode,
    is_supervision_channel,
    snoop_channel_of,
    supervisor_channel_of,
)
from callcenterd.domain.users import Role
from callcenterd.events.filters import AudienceTracker, Viewer, may_see
from callcenterd.telephony.translate import CallerEntered, CallerLeft, SupervisionSignal, translate

SESSION = "0b9f3c52-5c0e-4f55-9d3b-5a3c1b2a9e10"
SUP, SNOOP = supervisor_channel_of(SESSION), snoop_channel_of(SESSION, 1)


def test_each_mode_spies_both_ways_and_whispers_as_it_says() -> None:
    # whisper `out` is what Asterisk writes to the operator's phone: the operator alone.
    assert {m: (a.spy, a.whisper) for m, a in AUDIO.items()} == {
        SupervisionMode.LISTEN: ("both", "none"),
        SupervisionMode.WHISPER: ("both", "out"),
        SupervisionMode.BARGE: ("both", "both"),
    }


def test_supervision_channels_are_never_callers_or_legs() -> None:
    assert is_supervision_channel(SUP) and is_supervision_channel(SNOOP)
    assert not is_supervision_channel("1733580000.12")
    assert not is_supervision_channel(f"{SESSION}-1")  # an operator leg

    def one(frame: dict[str, Any]) -> list[object]:
        return list(translate(frame, lambda channel: False))

    assert one({"type": "StasisStart", "channel": {"id": SNOOP}, "args": ["ccd-snoop"]}) == [
        SupervisionSignal(SNOOP, "in_stasis")
    ]
    assert one({"type": "StasisEnd", "channel": {"id": SUP}}) == [SupervisionSignal(SUP, "gone")]
    assert one({"type": "Dial", "peer": {"id": SUP}, "dialstatus": "ANSWER"}) == [
        SupervisionSignal(SUP, "answered")
    ]
    assert one({"type": "Dial", "peer": {"id": SUP}, "dialstatus": "NOANSWER"}) == [
        SupervisionSignal(SUP, "gone")
    ]
    assert one({"type": "Dial", "peer": {"id": SUP}, "dialstatus": "RINGING"}) == []
    assert one({"type": "ChannelStateChange", "channel": {"id": SUP}}) == []
    # Anyone else's channel is as before.
    entered = one({"type": "StasisStart", "channel": {"id": "1.1"}, "args": []})
    assert [type(item) for item in entered] == [CallerEntered]
    assert one({"type": "StasisEnd", "channel": {"id": "1.1"}}) == [CallerLeft("1.1")]


def test_supervision_events_reach_the_calls_group_but_not_its_operator() -> None:
    tracker = AudienceTracker({"op1": "g1"}.get, lambda queue: [], lambda call: None, max_calls=10)
    tracker.audience("call_answered", {"call_id": "c1", "operator_id": "op1"})
    audience = tracker.audience("supervision_started", {"call_id": "c1", "operator_id": "op1"})
    assert may_see(Viewer("s1", Role.SUPERVISOR, group_id="g1"), audience)
    assert not may_see(Viewer("s2", Role.SUPERVISOR, group_id="g2"), audience)
    assert not may_see(Viewer("u1", Role.OPERATOR, operator_id="op1"), audience)
    assert may_see(Viewer("m1", Role.MANAGER), audience)
    # It does not end the call's tracking: its end still reaches the group.
    ended = tracker.audience("call_ended", {"call_id": "c1"})
    assert ended.group_ids == frozenset({"g1"})
