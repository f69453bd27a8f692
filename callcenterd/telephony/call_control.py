"""The call-control port: every action the daemon takes on a call, and what it reads back.

The services drive calls only through ``CallControl``; ``AriCallControl``
(telephony/ari_control.py) is its implementation over ARI. Channel and bridge ids are
Asterisk's, so a control belongs to one Asterisk node (``node``): a daemon driving several
nodes holds one control per node and keeps, with every live call, the node it lives on.

Failures are telephony's own (telephony/errors.py): ``AriNotFound`` for a channel or bridge
already gone (the ordinary race with a far end hanging up), ``AriRequestFailed`` when
Asterisk refuses, ``AriUnavailable``/``AriTimeout``/``AriAuthFailed`` when it cannot be
asked at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import aiohttp

# The node of a daemon configured with a single Asterisk.
DEFAULT_NODE = "default"

BridgeKind = Literal["holding", "mixing"]
# Which audio a snoop channel hears from, and which it speaks into, the snooped channel.
SnoopDirection = Literal["none", "in", "out", "both"]


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str
    caller_name: str
    called_number: str | None
    created_at: str | None = None  # ISO 8601, as Asterisk reports it


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    kind: str  # Asterisk's bridge_type: mixing, holding
    channel_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class EndpointState:
    technology: str
    resource: str
    online: bool | None  # None: Asterisk does not know


@dataclass(frozen=True, slots=True)
class Originate:
    """A call placed from an endpoint into the dialplan (click-to-call)."""

    endpoint: str
    context: str
    extension: str
    priority: int
    ring_seconds: int
    caller_id: str | None = None


class CallControl(Protocol):
    @property
    def node(self) -> str: ...

    @property
    def request_timeout(self) -> float:
        """How long one request may take: also the wait for a created channel to enter
        the application."""
        ...

    # --- the application ----------------------------------------------------------------------
    async def app_channel_ids(self) -> set[str]: ...

    async def allow_event_types(self, types: list[str]) -> None: ...

    async def subscribe(self, event_source: str) -> None: ...

    async def unsubscribe(self, event_source: str) -> None: ...

    # --- channels -----------------------------------------------------------------------------
    async def channel(self, channel_id: str) -> Channel: ...

    async def channels(self) -> list[Channel]: ...

    async def variable(self, channel_id: str, name: str) -> str | None: ...

    async def answer(self, channel_id: str) -> None: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...

    async def continue_in_dialplan(
        self, channel_id: str, context: str | None = None, extension: str | None = None
    ) -> None:
        """Leave the application: on in the dialplan where it entered, or at priority 1 of
        ``extension@context`` (a blind transfer to an external number)."""
        ...

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        """Send a channel elsewhere (a blind transfer to ``PJSIP/1002``, a trunk)."""
        ...

    async def start_moh(self, channel_id: str, music_class: str) -> None: ...

    async def stop_moh(self, channel_id: str) -> None: ...

    async def play(self, channel_id: str, playback_id: str, media: list[str]) -> None:
        """Play ``sound:``/``number:``/``digits:`` media to a channel, in order."""
        ...

    async def stop_playback(self, playback_id: str) -> None: ...

    async def create_leg(
        self, leg_id: str, endpoint: str, app_args: str, variables: Mapping[str, str]
    ) -> None:
        """Create a channel into this application without dialing it (``ring`` dials)."""
        ...

    async def ring(self, leg_id: str, ring_seconds: int, caller_id_of: str | None) -> None:
        """Dial a created leg; ``caller_id_of`` (a channel id) lends it that caller id."""
        ...

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        spy: SnoopDirection,
        whisper: SnoopDirection,
        app_args: str = "",
    ) -> None:
        """A channel into this application hearing (``spy``) and speaking into
        (``whisper``) another: listen, whisper and barge for supervisors. ``in`` is the
        audio Asterisk reads from the snooped channel, ``out`` what it writes to it."""
        ...

    async def originate(self, call: Originate) -> str:
        """Place a call into the dialplan; answer its channel id."""
        ...

    # --- bridges ------------------------------------------------------------------------------
    async def bridges(self) -> list[Bridge]: ...

    async def create_bridge(self, bridge_id: str, kind: BridgeKind) -> None: ...

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None: ...

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None: ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...

    async def record_bridge(self, bridge_id: str, name: str) -> None: ...

    # --- endpoints, devices, recordings -------------------------------------------------------
    async def endpoints(self, technology: str) -> list[EndpointState]: ...

    async def endpoint(self, technology: str, resource: str) -> EndpointState: ...

    async def device_states(self) -> dict[str, str]: ...

    async def recording_file(self, name: str) -> aiohttp.ClientResponse:
        """The stored recording as a streaming response (the caller must release it)."""
        ...

    async def delete_recording(self, name: str) -> None:
        """Delete the stored recording, its file included (AriNotFound: none by that name)."""
        ...
