"""Supervision: a supervisor listens to, whispers to or barges into an operator's live call.

The supervisor's own phone (their user's extension) is rung through a channel of ours
(`sup-<session>`); when it answers, a snoop channel on the operator's channel
(`snoop-<session>-<n>`, with the mode's spy and whisper directions, domain/supervision.py) and
the supervisor's phone are put in a bridge of their own (`supervise-<session>`). The call's
bridge is never touched. A mode change puts a new snoop in that bridge and hangs the old one
up (Asterisk cannot change a snoop's directions); the supervisor's phone stays up.

A session ends when asked to, when the call ends (the dispatcher says so, or the snoop
channel goes with the operator's), or when the supervisor's phone hangs up or never answers.
Every session and each of its modes is stored (store/supervision.py) before its event is
published. After a restart none can go on: the stored open ones are closed as `lost` and
their channels and bridges hung up (`reconciled`).

Who may: admins and managers on any call; supervisors on the calls of their group (the
call scope of services/calls.py); operators never. Changing or ending a session is for its
own supervisor, admins and managers.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from callcenterd.domain.clock import to_iso
from callcenterd.domain.supervision import (
    AUDIO,
    BRIDGE_PREFIX,
    EndReason,
    SessionState,
    SupervisionMode,
    SupervisionSession,
    bridge_of,
    is_supervision_channel,
    snoop_channel_of,
    supervisor_channel_of,
)
from callcenterd.domain.users import Role
from callcenterd.errors import (
    AlreadySupervising,
    AsteriskTimeout,
    AsteriskUnavailable,
    CallcenterError,
    CallNotLive,
    NoOwnPhone,
    NotFound,
    PermissionDenied,
    SupervisionOver,
)
from callcenterd.events import payloads as out
from callcenterd.events.bus import EventBus
from callcenterd.security import Principal
from callcenterd.services.asterisk_errors import as_api_errors
from callcenterd.services.call_actions import Controls
from callcenterd.services.dispatcher import TalkingCall
from callcenterd.store.call_queries import CallQueries, CallScope
from callcenterd.store.supervision import SupervisionRepository
from callcenterd.tasks import SerialLanes
from callcenterd.telephony.call_control import Bridge, CallControl
from callcenterd.telephony.errors import AriNotFound, TelephonyError
from callcenterd.telephony.translate import SupervisionSignal

log = structlog.get_logger(__name__)

# How long the supervisor's phone rings before the session ends as not answered.
RING_SECONDS = 30
SUPERVISOR_MARK = "ccd-sup"
SNOOP_MARK = "ccd-snoop"
MANAGING = frozenset({Role.ADMIN, Role.MANAGER})


@dataclass(slots=True)
class LiveSession:
    """A session not ended yet, as this process drives it."""

    stored: SupervisionSession
    caller_channel_id: str
    snoops: int = 0  # snoop channels made so far (they are numbered)
    snoop_channel_id: str | None = None  # the one in the bridge now
    bridge_id: str | None = None
    # Asterisk may say ANSWER more than once (the Dial event reaches the app through the
    # caller's channel and the dialed one): the session is joined once.
    answered: bool = False

    @property
    def id(self) -> str:
        return self.stored.id

    def update(self, **changes: object) -> None:
        self.stored = replace(self.stored, **changes)  # type: ignore[arg-type]


class SupervisionService:
    def __init__(
        self,
        repository: SupervisionRepository,
        calls: CallQueries,
        talking: Callable[[str], TalkingCall | None],
        controls: Controls,
        phone_of: Callable[[str], Awaitable[str | None]],
        bus: EventBus,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = repository
        self._calls = calls
        self._talking = talking  # the dispatcher's view of a call that is talking now
        self._controls = controls
        self._phone_of = phone_of  # user id -> their own extension
        self._bus = bus
        self._clock = clock
        self._live: dict[str, LiveSession] = {}  # session id -> session
        self._by_channel: dict[str, str] = {}  # our supervision channel id -> session id
        self._in_stasis: dict[str, asyncio.Event] = {}  # channel id -> entered the app
        self._lanes = SerialLanes(expected=(CallcenterError, TelephonyError))

    # --- reads ------------------------------------------------------------------------------
    async def of_call(self, call_id: str, user: Principal) -> list[SupervisionSession]:
        await self._check_call(call_id, user)
        return await self._store.of_call(call_id)

    def owns(self, channel_id: str) -> bool:
        """A live session's channel (reconciliation must leave it alone)."""
        return channel_id in self._by_channel

    async def settled(self) -> None:
        """Until every queued Asterisk action and record of the sessions is done (tests)."""
        await self._lanes.drain()

    async def stop(self, within: float = 5.0) -> None:
        """Before the database closes: let the sessions' queued records be written. Live
        sessions stay in Asterisk; the next start closes them as `lost` and hangs them up."""
        try:
            await asyncio.wait_for(self._lanes.drain(), within)
        except TimeoutError:
            log.error("supervision_stop_timed_out", pending_lanes=self._lanes.pending())

    # --- requests ---------------------------------------------------------------------------
    async def start(
        self, call_id: str, mode: SupervisionMode, user: Principal
    ) -> SupervisionSession:
        await self._check_call(call_id, user)
        talking = self._talking(call_id)
        if talking is None:
            raise CallNotLive()
        phone = await self._phone_of(user.id)
        if phone is None:
            raise NoOwnPhone(field="extension")
        busy = next((s for s in self._live.values() if s.stored.supervisor_id == user.id), None)
        if busy is not None:
            raise AlreadySupervising(
                f"You are supervising call {busy.stored.call_id} already (session {busy.id}):"
                " end that session or change its mode"
            )
        control = self._control(talking.node)
        session_id = str(uuid.uuid4())
        session = LiveSession(
            SupervisionSession(
                id=session_id,
                call_id=call_id,
                supervisor_id=user.id,
                operator_id=talking.operator_id,
                node=talking.node,
                extension=phone,
                supervisor_channel_id=supervisor_channel_of(session_id),
                operator_channel_id=talking.operator_channel_id,
                mode=mode,
                state=SessionState.RINGING,
                started_at=self._clock(),
            ),
            caller_channel_id=talking.caller_channel_id,
        )
        await self._store.insert(session.stored)
        self._live[session_id] = session
        self._by_channel[session.stored.supervisor_channel_id] = session_id
        self._emit_started(session)
        log.info("supervision_started", session_id=session_id, call_id=call_id, mode=mode.value)
        try:
            await self._ring(control, session)
        except CallcenterError:
            await self._end(session.id, EndReason.FAILED)
            raise
        return session.stored

    async def change(
        self, call_id: str, session_id: str, mode: SupervisionMode, user: Principal
    ) -> SupervisionSession:
        session = await self._own_live_session(call_id, session_id, user)
        failure: list[CallcenterError] = []

        async def job() -> None:
            try:
                await self._change(session, mode)
            except CallcenterError as err:
                failure.append(err)

        await self._lanes.run(session_id, job)
        if failure:
            raise failure[0]
        return session.stored

    async def end(self, call_id: str, session_id: str, user: Principal) -> SupervisionSession:
        await self._own_live_session(call_id, session_id, user)
        # On the session's lane: after a join or a mode change under way.
        await self._lanes.run(session_id, lambda: self._end(session_id, EndReason.ENDED_BY_USER))
        ended = await self._store.get(session_id)
        assert ended is not None
        return ended

    # --- what Asterisk and the dispatcher say -----------------------------------------------
    def signal(self, signal: SupervisionSignal) -> None:
        """An event of a supervision channel (the dispatcher hands them over)."""
        if signal.kind == "in_stasis":
            self._entered(signal.channel_id).set()
            return
        session_id = self._by_channel.get(signal.channel_id)
        session = self._live.get(session_id) if session_id else None
        if session is None:
            return
        is_phone = signal.channel_id == session.stored.supervisor_channel_id
        if signal.kind == "answered" and is_phone and not session.answered:
            session.answered = True
            self._lanes.run(session.id, lambda: self._join(session))
        elif signal.kind == "gone":
            self._gone(session, signal.channel_id)

    def call_ended(self, call_id: str) -> None:
        for session in list(self._live.values()):
            if session.stored.call_id == call_id:
                self._queue_end(session.id, EndReason.CALL_ENDED)

    async def reconciled(
        self, control: CallControl, in_app: set[str], bridges: list[Bridge]
    ) -> None:
        """After (re)connecting to a node: close what cannot go on, hang up what is left.

        Stored sessions this process does not drive (it restarted) are closed as `lost`;
        supervision channels and bridges no live session owns are hung up and destroyed.
        """
        for stored in await self._store.open_on(control.node):
            if stored.id not in self._live:
                at = self._clock()
                await self._store.ended(stored.id, at, EndReason.LOST)
                self._emit_ended(stored, EndReason.LOST, at)
                log.warning("supervision_lost", session_id=stored.id, call_id=stored.call_id)
        for channel_id in in_app:
            if is_supervision_channel(channel_id) and not self.owns(channel_id):
                log.warning("stray_supervision_channel_hung_up", channel_id=channel_id)
                await _quietly(control.hangup(channel_id))
        live_bridges = {s.bridge_id for s in self._live.values()}
        for bridge in bridges:
            if bridge.id.startswith(BRIDGE_PREFIX) and bridge.id not in live_bridges:
                await _quietly(control.destroy_bridge(bridge.id))

    # --- the work ---------------------------------------------------------------------------
    async def _check_call(self, call_id: str, user: Principal) -> None:
        """404 for a call that does not exist; 403 for one outside the user's reach."""
        if await self._calls.get(call_id) is None:
            raise NotFound("Call not found")
        if user.role in MANAGING:
            return
        in_group = (
            user.role is Role.SUPERVISOR
            and user.group_id is not None
            and await self._calls.visible(call_id, CallScope(group_id=user.group_id))
        )
        if in_group:
            return
        raise PermissionDenied("Supervisors may supervise only the calls of their own group")

    async def _own_live_session(
        self, call_id: str, session_id: str, user: Principal
    ) -> LiveSession:
        await self._check_call(call_id, user)
        stored = await self._store.get(session_id)
        if stored is None or stored.call_id != call_id:
            raise NotFound("Supervision session not found")
        if user.role not in MANAGING and stored.supervisor_id != user.id:
            raise PermissionDenied("Only its supervisor, an admin or a manager may change it")
        session = self._live.get(session_id)
        if session is None:
            raise SupervisionOver()
        return session

    def _control(self, node: str) -> CallControl:
        control = self._controls(node)
        if control is None:
            raise AsteriskUnavailable("ARI is not connected")
        return control

    def _entered(self, channel_id: str) -> asyncio.Event:
        entered = self._in_stasis.get(channel_id)
        if entered is None:
            entered = self._in_stasis[channel_id] = asyncio.Event()
        return entered

    async def _until_in_stasis(self, control: CallControl, channel_id: str) -> None:
        """A created channel enters the app a moment later; bridging it before is a 422."""
        try:
            await asyncio.wait_for(self._entered(channel_id).wait(), control.request_timeout)
        except TimeoutError as err:
            raise AsteriskTimeout(f"channel {channel_id} did not enter the application") from err
        finally:
            self._in_stasis.pop(channel_id, None)

    async def _ring(self, control: CallControl, session: LiveSession) -> None:
        stored = session.stored
        channel_id = stored.supervisor_channel_id
        with as_api_errors():
            await control.create_leg(
                channel_id,
                f"PJSIP/{stored.extension}",
                f"{SUPERVISOR_MARK},{stored.id}",
                {"CALLERID(name)": f"Supervise {stored.mode.value}"},
            )
            await self._until_in_stasis(control, channel_id)
            await control.ring(channel_id, RING_SECONDS, session.caller_channel_id)

    async def _join(self, session: LiveSession) -> None:
        """The supervisor answered: their phone and a snoop of the mode in a bridge."""
        if session.id not in self._live:
            return
        control = self._controls(session.stored.node)
        if control is None:
            await self._end(session.id, EndReason.LOST)
            return
        bridge_id = bridge_of(session.id)
        try:
            await control.create_bridge(bridge_id, "mixing")
            session.bridge_id = bridge_id
            await control.add_to_bridge(bridge_id, session.stored.supervisor_channel_id)
            await self._snoop(control, session, session.stored.mode)
        except AriNotFound:
            # The operator's channel (or the supervisor's) went meanwhile.
            await self._end(session.id, EndReason.CALL_ENDED)
            return
        except (TelephonyError, CallcenterError) as err:
            log.warning("supervision_join_failed", session_id=session.id, error=str(err))
            await self._end(session.id, EndReason.FAILED)
            return
        at = self._clock()
        session.update(state=SessionState.ACTIVE, answered_at=at)
        await self._store.joined(session.id, session.stored.mode, at)
        self._emit_changed(session)
        log.info("supervision_joined", session_id=session.id, mode=session.stored.mode.value)

    async def _snoop(
        self, control: CallControl, session: LiveSession, mode: SupervisionMode
    ) -> None:
        """A new snoop of `mode` into the session's bridge; the one before is hung up."""
        assert session.bridge_id is not None
        session.snoops += 1
        snoop_id = snoop_channel_of(session.id, session.snoops)
        audio = AUDIO[mode]
        self._by_channel[snoop_id] = session.id
        await control.snoop(
            session.stored.operator_channel_id,
            snoop_id,
            audio.spy,
            audio.whisper,
            f"{SNOOP_MARK},{session.id}",
        )
        await self._until_in_stasis(control, snoop_id)
        await control.add_to_bridge(session.bridge_id, snoop_id)
        previous, session.snoop_channel_id = session.snoop_channel_id, snoop_id
        if previous is not None:
            self._by_channel.pop(previous, None)
            await _quietly(control.hangup(previous))

    async def _change(self, session: LiveSession, mode: SupervisionMode) -> None:
        if session.id not in self._live:
            raise SupervisionOver()
        if mode is session.stored.mode:
            return
        joined = session.stored.state is SessionState.ACTIVE
        if joined:
            control = self._control(session.stored.node)
            with as_api_errors():
                await self._snoop(control, session, mode)
        at = self._clock()
        session.update(mode=mode)
        await self._store.mode_changed(session.id, mode, at, joined=joined)
        self._emit_changed(session)
        log.info("supervision_mode_changed", session_id=session.id, mode=mode.value)

    def _gone(self, session: LiveSession, channel_id: str) -> None:
        if channel_id == session.stored.supervisor_channel_id:
            ringing = session.stored.state is SessionState.RINGING
            reason = EndReason.NOT_ANSWERED if ringing else EndReason.SUPERVISOR_HUNG_UP
            self._queue_end(session.id, reason)
        elif channel_id == session.snoop_channel_id:
            # A snoop goes with the channel it snoops: the operator left the call.
            self._queue_end(session.id, EndReason.CALL_ENDED)

    def _queue_end(self, session_id: str, reason: EndReason) -> None:
        self._lanes.run(session_id, lambda: self._end(session_id, reason))

    async def _end(self, session_id: str, reason: EndReason) -> None:
        """Hang up the session's channels, destroy its bridge, store and publish its end."""
        session = self._live.pop(session_id, None)
        if session is None:
            return  # ended already
        channels = [session.stored.supervisor_channel_id, session.snoop_channel_id]
        for channel_id in channels:
            if channel_id is not None:
                self._by_channel.pop(channel_id, None)
        control = self._controls(session.stored.node)
        if control is not None:
            with contextlib.suppress(TelephonyError):
                for channel_id in channels:
                    if channel_id is not None:
                        await _quietly(control.hangup(channel_id))
                if session.bridge_id is not None:
                    await _quietly(control.destroy_bridge(session.bridge_id))
        at = self._clock()
        await self._store.ended(session_id, at, reason.value)
        self._emit_ended(session.stored, reason, at)
        log.info("supervision_ended", session_id=session_id, reason=reason.value)

    # --- events -----------------------------------------------------------------------------
    def _emit_started(self, session: LiveSession) -> None:
        s = session.stored
        self._bus.emit(
            out.SupervisionStarted(
                s.id,
                s.call_id,
                s.supervisor_id,
                s.operator_id,
                s.mode.value,
                s.state.value,
                to_iso(s.started_at),
            )
        )

    def _emit_changed(self, session: LiveSession) -> None:
        s = session.stored
        self._bus.emit(
            out.SupervisionChanged(
                s.id,
                s.call_id,
                s.supervisor_id,
                s.operator_id,
                s.mode.value,
                s.state.value,
                to_iso(self._clock()),
            )
        )

    def _emit_ended(self, s: SupervisionSession, reason: EndReason, at: datetime) -> None:
        self._bus.emit(
            out.SupervisionEnded(
                s.id,
                s.call_id,
                s.supervisor_id,
                s.operator_id,
                s.mode.value,
                reason.value,
                to_iso(at),
            )
        )


async def _quietly(request: Awaitable[None]) -> None:
    """A channel or bridge already gone is the expected race, not an error."""
    with contextlib.suppress(AriNotFound):
        await request
