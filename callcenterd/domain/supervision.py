"""Supervision of a live call: the modes, and the audio each one sends where.

A supervisor's own phone is joined to an operator's call through an ARI snoop channel on the
operator's channel. A snoop channel *spies* on the audio of the channel it snoops (what it hears)
and *whispers* into it (what it speaks), each in a direction named from Asterisk's side of that
channel (res_stasis_snoop.c maps them onto audiohook directions):

- ``in``: the audio Asterisk reads from the operator's phone (the operator's voice, on its way to
  the caller); whispering ``in`` mixes the supervisor into what the *caller* hears;
- ``out``: the audio Asterisk writes to the operator's phone (the caller's voice); whispering
  ``out`` mixes the supervisor into what the *operator* hears (as ChanSpy's whisper does);
- ``both``: the two.

So: listen spies both ways and whispers nothing; whisper spies both ways and whispers ``out``
(the operator alone hears the supervisor); barge spies both ways and whispers ``both`` (the
operator and the caller hear the supervisor). The call's own bridge is never touched: its
recording, its reconciliation after a restart and its talk time stay the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

Direction = Literal["none", "in", "out", "both"]


class SupervisionMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


class SessionState(StrEnum):
    RINGING = "ringing"  # the supervisor's phone is rung
    ACTIVE = "active"  # answered and joined to the call
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class SnoopAudio:
    spy: Direction
    whisper: Direction


AUDIO: dict[SupervisionMode, SnoopAudio] = {
    SupervisionMode.LISTEN: SnoopAudio("both", "none"),
    SupervisionMode.WHISPER: SnoopAudio("both", "out"),
    SupervisionMode.BARGE: SnoopAudio("both", "both"),
}


class EndReason(StrEnum):
    ENDED_BY_USER = "ended_by_user"  # DELETE on the session
    CALL_ENDED = "call_ended"  # the caller or the operator hung up
    SUPERVISOR_HUNG_UP = "supervisor_hung_up"
    NOT_ANSWERED = "not_answered"  # the supervisor's phone did not answer (or could not ring)
    FAILED = "failed"  # Asterisk refused to join the phone to the call
    LOST = "lost"  # the daemon restarted or lost Asterisk meanwhile


# Channel and bridge ids of a session: Asterisk's ids are `<epoch>.<n>`, our call legs
# `<call uuid>-<n>`, so these prefixes tell a supervision channel from a caller or a leg,
# even after a restart, when nothing else is known about it.
SUPERVISOR_PREFIX = "sup-"
SNOOP_PREFIX = "snoop-"
BRIDGE_PREFIX = "supervise-"


def supervisor_channel_of(session_id: str) -> str:
    return f"{SUPERVISOR_PREFIX}{session_id}"


def snoop_channel_of(session_id: str, number: int) -> str:
    return f"{SNOOP_PREFIX}{session_id}-{number}"


def bridge_of(session_id: str) -> str:
    return f"{BRIDGE_PREFIX}{session_id}"


def is_supervision_channel(channel_id: str) -> bool:
    return channel_id.startswith((SUPERVISOR_PREFIX, SNOOP_PREFIX))


@dataclass(frozen=True, slots=True)
class ModeSpan:
    mode: SupervisionMode
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class SupervisionSession:
    """One session as stored: who supervised which call, how, and when."""

    id: str
    call_id: str
    supervisor_id: str
    operator_id: str | None
    node: str
    extension: str
    supervisor_channel_id: str
    operator_channel_id: str
    mode: SupervisionMode
    state: SessionState
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    modes: tuple[ModeSpan, ...] = ()
