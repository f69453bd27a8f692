"""The AMI link (panoramisk): Asterisk's own queues while ARI is down, and actions as a fallback.

panoramisk 1.4 has three habits this module defuses:
- actions sent while disconnected are queued and re-sent after reconnect (an Originate would
  dial minutes late): actions are refused at once while the link is down, and whatever
  panoramisk put aside (``awaiting_actions``) is failed and dropped when a connection ends;
- pings sent while down never resolve, and a dead-but-open connection is never noticed: its own
  pinger is switched off; a watchdog here sends Ping every few seconds and a missed pong
  closes the connection, which reconnects;
- its own reconnect loop is replaced by this link's supervisor: one fresh ``Manager`` per
  connection, bounded backoff, state reported like the ARI link.

Every action is wrapped in ``asyncio.wait_for``. Events go to a synchronous callback, called
from panoramisk's protocol reader: it must never block.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from callcenterd.telephony.errors import AmiActionFailed, AmiAuthFailed, AmiUnavailable
from callcenterd.telephony.link import SupervisedLink

log = structlog.get_logger(__name__)

AMI_ACTION_TIMEOUT = 5.0
PING_INTERVAL = 3.0
PING_TIMEOUT = 3.0
# Sent by the login; we ask only for what we follow (queues, channels) and Shutdown.
EVENT_MASK = "system,call,agent"

AmiEvent = Mapping[str, Any]


def event_filter(names: Sequence[str]) -> str | None:
    """The AMI include filter (a `Filter` action's regular expression, matched against the
    event's text) that lets only events named `names` through; None lets everything.

    The form every Asterisk knows: a name also lets through those that begin with it
    (Hangup: HangupRequest too), which the event handler ignores."""
    if not names:
        return None
    if not all(name.isalnum() for name in names):
        raise ValueError(f"not AMI event names: {names}")
    return f"Event: ({'|'.join(names)})"


AmiEventSink = Callable[[AmiEvent], None]


@dataclass(frozen=True, slots=True)
class AmiEndpoint:
    host: str
    port: int
    username: str
    secret: str
    timeout: float = AMI_ACTION_TIMEOUT

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def __repr__(self) -> str:  # never print the secret
        return f"AmiEndpoint({self.url!r}, user={self.username!r})"


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its pinger, replay and reconnect: the link owns those."""

    def __init__(self, on_lost: Callable[[Any], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def ping(self) -> None:
        """Off: the link's watchdog pings, and notices a missed pong."""

    async def send_awaiting_actions(self, *_: Any) -> None:  # never replay
        drop_awaiting(self)

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        pinger: Any = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
        drop_awaiting(self)
        self._on_lost(exc)  # no reconnect here: the link's supervisor decides


def drop_awaiting(manager: Any) -> int:
    """Fail and forget every action panoramisk set aside to re-send: nothing is replayed late."""
    dropped = 0
    awaiting = manager.awaiting_actions
    while awaiting:
        action = awaiting.popleft()
        dropped += 1
        if not action.future.done():
            action.future.set_exception(AmiUnavailable("AMI connection lost before the answer"))
            # Nobody may await it any more (timed out): do not log "exception never retrieved".
            action.future.exception()
    return dropped


class AmiLink(SupervisedLink[AmiEndpoint]):
    """Keeps one logged-in AMI connection open and reports its state like the ARI link."""

    name = "ami"

    def __init__(
        self,
        clock: Callable[[], datetime],
        on_event: AmiEventSink,
        *,
        events: Sequence[str] = (),
        backoff_max: float = 5.0,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        manager_factory: Callable[..., Any] = _Manager,
    ) -> None:
        super().__init__(clock)
        self._on_event = on_event
        # The events `on_event` follows: Asterisk is asked for these alone (empty: all of
        # EVENT_MASK). Every channel's life, ARI-routed calls' too, sends dozens more.
        self._filter = event_filter(events)
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._manager_factory = manager_factory
        self._manager: Any = None
        # Connections made since start: a reconnect shows as a new generation.
        self.generation = 0

    def _url_of(self, endpoint: AmiEndpoint) -> str:
        return endpoint.url

    async def stop(self) -> None:
        await super().stop()
        self._close_manager()

    # --- actions ------------------------------------------------------------------------------
    async def action(
        self, fields: Mapping[str, Any], *, as_list: bool | None = None, within: float | None = None
    ) -> Any:
        """Send one action and return panoramisk's answer (a Message, or a list for lists).

        Refused at once while disconnected (never queued for later); AmiUnavailable when no
        answer comes within the timeout; AmiActionFailed when Asterisk answers an error.
        """
        manager = self._manager
        if manager is None or not self.connected:
            raise AmiUnavailable(f"AMI is not connected ({self.last_error or self.state})")
        name = str(fields.get("Action", "?"))
        limit = within if within is not None else self._action_timeout()
        try:
            future = manager.send_action(dict(fields), as_list=as_list)
            answer = await asyncio.wait_for(future, limit)
        except TimeoutError as err:
            raise AmiUnavailable(f"AMI did not answer {name} within {limit:g} s") from err
        first = answer[0] if isinstance(answer, list) and answer else answer
        if str(first.get("Response", "")) in ("Error", "Failure"):
            raise AmiActionFailed(name, str(first.get("Message", "")))
        return answer

    async def action_list(self, fields: Mapping[str, Any]) -> list[AmiEvent]:
        """An action answered by a list of events (EventList start ... Complete): the events."""
        answer = await self.action(fields)
        messages = answer if isinstance(answer, list) else [answer]
        return [dict(m) for m in messages if "Event" in m and "EventList" not in m]

    def _action_timeout(self) -> float:
        return self._endpoint.timeout if self._endpoint else AMI_ACTION_TIMEOUT

    # --- the connection -----------------------------------------------------------------------
    async def _run(self, endpoint: AmiEndpoint) -> None:
        delay = 0.2
        while True:
            try:
                await self._session_once(endpoint)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except AmiAuthFailed as err:
                self._set("disconnected", err.detail)
                delay = self._backoff_max  # wrong secret: no point hammering
            except (AmiUnavailable, OSError, TimeoutError) as err:
                detail = err.detail if isinstance(err, AmiUnavailable) else str(err) or repr(err)
                self._set("disconnected", detail)
            finally:
                self._close_manager()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _session_once(self, endpoint: AmiEndpoint) -> None:
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[str] = loop.create_future()

        def on_lost(exc: Any) -> None:
            if not lost.done():
                lost.set_result(str(exc) if isinstance(exc, Exception) else "connection closed")

        manager = self._manager_factory(
            on_lost,
            host=endpoint.host,
            port=endpoint.port,
            username=endpoint.username,
            secret=endpoint.secret,
            events=EVENT_MASK,
            loop=loop,
            ping_delay=10**9,  # its pinger is off (ping() is a no-op anyway)
        )
        manager.register_event("*", self._deliver)
        self._manager = manager
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(AMIProtocol, endpoint.host, endpoint.port),
                endpoint.timeout,
            )
        except TimeoutError as err:
            raise AmiUnavailable(f"No AMI answer from {endpoint.url}") from err
        except OSError as err:
            raise AmiUnavailable(f"Cannot connect to AMI at {endpoint.url}: {err}") from err
        made: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        made.set_result((transport, protocol))
        manager.connection_made(made)  # panoramisk's wiring; it sends Login
        login = manager.authenticated_future
        login.remove_done_callback(manager.login)  # its callback would re-arm its pinger
        drop_awaiting(manager)
        try:
            answer = await asyncio.wait_for(login, endpoint.timeout)
        except TimeoutError as err:
            raise AmiUnavailable(f"AMI at {endpoint.url} did not answer the login") from err
        manager.authenticated_future = None
        if not answer.success:
            raise AmiAuthFailed(
                f"AMI refused the login of {endpoint.username!r}: {answer.get('Message', '')}"
            )
        manager.authenticated = True
        self.asterisk_version = None
        with contextlib.suppress(TimeoutError):
            settings = await asyncio.wait_for(
                manager.send_action({"Action": "CoreSettings"}), endpoint.timeout
            )
            self.asterisk_version = str(settings.get("AsteriskVersion", "")) or None
        await self._filter_events(manager, endpoint)
        self.generation += 1
        self._set("connected")
        watchdog = asyncio.create_task(self._watchdog(manager), name="ami-watchdog")
        try:
            done, _ = await asyncio.wait({watchdog, lost}, return_when=asyncio.FIRST_COMPLETED)
            if watchdog in done:
                reason = watchdog.result()
            else:
                reason = f"AMI connection lost: {lost.result()}"
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watchdog
        raise AmiUnavailable(reason)

    async def _filter_events(self, manager: Any, endpoint: AmiEndpoint) -> None:
        """Per connection: Asterisk then sends only the events asked for. A filter it refuses
        (a user without the `system` write class) leaves all events on."""
        if self._filter is None:
            return
        action = {"Action": "Filter", "Operation": "Add", "Filter": self._filter}
        try:
            answer = await asyncio.wait_for(manager.send_action(action), endpoint.timeout)
        except TimeoutError:
            answer = {"Message": "no answer"}
        if str(answer.get("Response", "")) != "Success":
            log.warning(
                "ami_event_filter_refused", filter=self._filter, error=answer.get("Message")
            )

    async def _watchdog(self, manager: Any) -> str:
        """Ping every few seconds; the first missed pong ends the connection (returns why)."""
        while True:
            await asyncio.sleep(self._ping_interval)
            try:
                future = manager.send_action({"Action": "Ping"})
                await asyncio.wait_for(future, self._ping_timeout)
            except TimeoutError:
                log.warning("ami_ping_missed", url=self.url, timeout=self._ping_timeout)
                return f"no pong within {self._ping_timeout:g} s: connection presumed dead"

    def _close_manager(self) -> None:
        manager, self._manager = self._manager, None
        if manager is None:
            return
        with contextlib.suppress(Exception):
            manager.close()  # moves unanswered actions to awaiting_actions...
        drop_awaiting(manager)  # ...which are failed here, never replayed
        if self.state == "connected":
            self._set("disconnected", "connection closed")

    def _deliver(self, _manager: Any, message: Any) -> None:
        try:
            self._on_event(message)
        except Exception:
            # A bug handling one event must not drop the link (and with it every call).
            log.exception("ami_event_handler_failed", event=message.get("Event"))


# --- answers, as the API shows them ---------------------------------------------------------
def _int(value: Any) -> int:
    try:
        return int(float(str(value)))
    except ValueError:
        return 0


def queue_status(events: list[AmiEvent]) -> list[dict[str, Any]]:
    """QueueStatus's QueueParams + QueueMember events -> app_queue's queues, with members."""
    queues: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = str(event.get("Event", ""))
        name = str(event.get("Queue", ""))
        if kind == "QueueParams":
            queues[name] = {
                "name": name,
                "strategy": str(event.get("Strategy", "")),
                "members_count": 0,
                "completed_calls": _int(event.get("Completed", 0)),
                "abandoned_calls": _int(event.get("Abandoned", 0)),
                # Percentage of calls answered within the queue's service level threshold.
                "service_level": round(float(str(event.get("ServicelevelPerf", 0) or 0))),
                "hold_time": _int(event.get("Holdtime", 0)),
                "talk_time": _int(event.get("TalkTime", 0)),
                "active_calls": _int(event.get("Calls", 0)),
                "members": [],
            }
    for event in events:
        queue = queues.get(str(event.get("Queue", "")))
        if str(event.get("Event", "")) != "QueueMember" or queue is None:
            continue
        queue["members"].append(
            {
                "interface": str(event.get("Location") or event.get("StateInterface") or ""),
                "status": _int(event.get("Status", 0)),
                "paused": str(event.get("Paused", "0")) == "1",
                "calls_taken": _int(event.get("CallsTaken", 0)),
                "last_call": _int(event.get("LastCall", 0)),
            }
        )
        queue["members_count"] = len(queue["members"])
    return sorted(queues.values(), key=lambda q: str(q["name"]).lower())


def channel_name(channels: list[AmiEvent], channel_id: str) -> str | None:
    """The channel name for an ARI-style channel id (its Uniqueid), or the name itself."""
    for channel in channels:
        if channel_id in (str(channel.get("Uniqueid", "")), str(channel.get("Channel", ""))):
            return str(channel.get("Channel"))
    return None
