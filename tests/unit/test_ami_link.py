"""The AMI link against a small fake AMI server on localhost: login, state, the ping watchdog,
action timeouts, and no action replayed after a reconnect (panoramisk's habits, defused)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from callcenterd.telephony.ami import (
    AmiEndpoint,
    AmiLink,
    channel_name,
    queue_status,
)
from callcenterd.telephony.errors import AmiActionFailed, AmiUnavailable
from tests.eventually import eventually

SECRET = "s3cret"


@dataclass
class FakeAmi:
    """Answers Login, Ping, CoreSettings and anything else with Success, unless muted."""

    muted: bool = False  # dead-but-open: reads, never answers
    actions: list[dict[str, str]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()

    def drop_connections(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    def send_event(self, **fields: str) -> None:
        for writer in self.writers:
            writer.write(_frame(fields))

    def named(self, action: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("Action", "").lower() == action.lower()]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                action = dict(
                    line.split(": ", 1) for line in block.decode().strip().split("\r\n") if line
                )
                self.actions.append(action)
                if self.muted:
                    continue
                writer.write(self._answer(action))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def _answer(self, action: dict[str, str]) -> bytes:
        name = action.get("Action", "").lower()
        reply = {"Response": "Success", "ActionID": action.get("ActionID", "")}
        if name == "login" and action.get("Secret") != SECRET:
            reply.update(Response="Error", Message="Authentication failed")
        elif name == "coresettings":
            reply["AsteriskVersion"] = "22.10.0"
        elif name == "ping":
            reply["Ping"] = "Pong"
        elif name == "hangup" and action.get("Channel") == "gone":
            reply.update(Response="Error", Message="No such channel")
        return _frame(reply)


def _frame(fields: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n"


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.close()


def _link(events: list[Any] | None = None, **options: Any) -> AmiLink:
    sink = events.append if events is not None else (lambda _event: None)
    options = {"ping_interval": 0.1, "ping_timeout": 0.2, "backoff_max": 0.2, **options}
    return AmiLink(lambda: datetime.now(UTC), sink, **options)


def _endpoint(server: FakeAmi, secret: str = SECRET) -> AmiEndpoint:
    return AmiEndpoint("127.0.0.1", server.port, "callcenterd", secret, timeout=0.5)


async def test_disabled_without_an_endpoint() -> None:
    link = _link()
    await link.configure(None)
    assert link.state == "disabled"
    assert link.url is None
    with pytest.raises(AmiUnavailable):
        await link.action({"Action": "Ping"})


async def test_logs_in_reports_connected_and_delivers_events(ami: FakeAmi) -> None:
    events: list[Any] = []
    link = _link(events)
    await link.configure(_endpoint(ami))
    try:
        await eventually(lambda: link.connected)
        assert link.url == f"tcp://127.0.0.1:{ami.port}"
        assert link.asterisk_version == "22.10.0"
        assert ami.named("login")[0]["Username"] == "callcenterd"
        ami.send_event(Event="QueueCallerJoin", Uniqueid="1.0", Queue="support")
        await eventually(lambda: bool(events))
        assert events[0]["Event"] == "QueueCallerJoin"
        assert events[0]["uniqueid"] == "1.0"  # panoramisk's Message: case-insensitive
    finally:
        await link.stop()


async def test_a_wrong_secret_is_reported_and_not_connected(ami: FakeAmi) -> None:
    link = _link()
    await link.configure(_endpoint(ami, secret="wrong"))
    try:
        await eventually(lambda: link.state == "disconnected")
        assert "refused the login" in (link.last_error or "")
        assert not link.connected
    finally:
        await link.stop()


async def test_nothing_listening_is_disconnected_with_the_reason() -> None:
    server = FakeAmi()
    await server.start()
    port = server.port
    await server.close()
    link = _link()
    await link.configure(AmiEndpoint("127.0.0.1", port, "callcenterd", SECRET, timeout=0.5))
    try:
        await eventually(lambda: link.state == "disconnected")
        assert "Cannot connect" in (link.last_error or "")
    finally:
        await link.stop()


async def test_a_missed_pong_forces_a_reconnect(ami: FakeAmi) -> None:
    link = _link()
    await link.configure(_endpoint(ami))
    try:
        await eventually(lambda: link.connected)
        assert link.generation == 1
        ami.muted = True  # the connection stays open but Asterisk answers nothing
        await eventually(lambda: link.state == "disconnected")
        assert "no pong" in (link.last_error or "")
        ami.muted = False
        await eventually(lambda: link.connected and link.generation == 2)
        assert ami.connections >= 2
    finally:
        await link.stop()


async def test_actions_time_out_and_are_never_replayed_after_reconnect(ami: FakeAmi) -> None:
    link = _link(ping_interval=10.0)  # only the action's own timeout acts here
    await link.configure(_endpoint(ami))
    try:
        await eventually(lambda: link.connected)
        ami.muted = True
        originate = {"Action": "Originate", "Channel": "PJSIP/1001", "Exten": "100"}
        with pytest.raises(AmiUnavailable, match="did not answer Originate"):
            await link.action(originate, within=0.2)
        # The connection drops; panoramisk would re-send the Originate after the new login.
        ami.muted = False
        ami.drop_connections()
        await eventually(lambda: link.generation == 2 and link.connected)
        # Answered in order on the new connection: a replay would have reached the server first.
        await link.action({"Action": "Ping"})
        assert len(ami.named("originate")) == 1
    finally:
        await link.stop()


async def test_an_action_pending_when_the_connection_drops_fails_at_once(ami: FakeAmi) -> None:
    link = _link(ping_interval=10.0)
    await link.configure(_endpoint(ami))
    try:
        await eventually(lambda: link.connected)
        ami.muted = True
        pending = asyncio.create_task(link.action({"Action": "Originate"}, within=5.0))
        await eventually(lambda: bool(ami.named("originate")))
        ami.drop_connections()
        # Failed by the drop itself, not by its 5 s timeout ("did not answer ... within").
        with pytest.raises(AmiUnavailable, match="connection lost"):
            await pending
        ami.muted = False
        await eventually(lambda: link.generation == 2 and link.connected)
        await link.action({"Action": "Ping"})  # a replay would have reached the server first
        assert len(ami.named("originate")) == 1
        # While down, actions are refused at once rather than queued.
    finally:
        await link.stop()
    with pytest.raises(AmiUnavailable):
        await link.action({"Action": "Originate"})


async def test_errors_from_asterisk_are_action_failures(ami: FakeAmi) -> None:
    link = _link()
    await link.configure(_endpoint(ami))
    try:
        await eventually(lambda: link.connected)
        with pytest.raises(AmiActionFailed, match="No such channel"):
            await link.action({"Action": "Hangup", "Channel": "gone"})
    finally:
        await link.stop()


def test_queue_status_in_the_contracts_shape() -> None:
    # As QueueStatus answered on the sandbox (Asterisk 22.10), trimmed to two members.
    events: list[dict[str, str]] = [
        {
            "Event": "QueueParams", "Queue": "support", "Max": "0", "Strategy": "rrmemory",
            "Calls": "1", "Holdtime": "4", "TalkTime": "2", "Completed": "1", "Abandoned": "0",
            "ServiceLevel": "0", "ServicelevelPerf": "100.0", "Weight": "0",
        },
        {
            "Event": "QueueMember", "Queue": "support", "Name": "PJSIP/1001",
            "Location": "PJSIP/1001", "StateInterface": "PJSIP/1001", "Membership": "static",
            "Penalty": "0", "CallsTaken": "1", "LastCall": "1795890794", "InCall": "0",
            "Status": "1", "Paused": "0",
        },
        {
            "Event": "QueueMember", "Queue": "support", "Name": "PJSIP/1004",
            "Location": "PJSIP/1004", "StateInterface": "PJSIP/1004", "Penalty": "0",
            "CallsTaken": "0", "LastCall": "0", "Status": "5", "Paused": "1",
        },
        {"Event": "QueueParams", "Queue": "sales", "Strategy": "linear", "Calls": "0"},
    ]  # fmt: skip
    assert queue_status(events) == [
        {
            "name": "sales", "strategy": "linear", "members_count": 0, "completed_calls": 0,
            "abandoned_calls": 0, "service_level": 0, "hold_time": 0, "talk_time": 0,
            "active_calls": 0, "members": [],
        },
        {
            "name": "support", "strategy": "rrmemory", "members_count": 2, "completed_calls": 1,
            "abandoned_calls": 0, "service_level": 100, "hold_time": 4, "talk_time": 2,
            "active_calls": 1,
            "members": [
                {"interface": "PJSIP/1001", "status": 1, "paused": False, "calls_taken": 1,
                 "last_call": 1795890794},
                {"interface": "PJSIP/1004", "status": 5, "paused": True, "calls_taken": 0,
                 "last_call": 0},
            ],
        },
    ]  # fmt: skip


def test_channel_ids_are_uniqueids_or_names() -> None:
    channels = [{"Channel": "PJSIP/trunk-00000002", "Uniqueid": "1795890794.2"}]
    assert channel_name(channels, "1795890794.2") == "PJSIP/trunk-00000002"
    assert channel_name(channels, "PJSIP/trunk-00000002") == "PJSIP/trunk-00000002"
    assert channel_name(channels, "nope") is None


async def test_asks_asterisk_for_the_followed_events_alone(ami: FakeAmi) -> None:
    link = AmiLink(lambda: datetime.now(UTC), lambda _: None, events=("QueueCallerJoin", "Hangup"))
    await link.configure(_endpoint(ami))
    try:
        await eventually(lambda: link.connected)
        filters = [(a["Operation"], a["Filter"]) for a in ami.named("filter")]
        assert filters == [("Add", "Event: (QueueCallerJoin|Hangup)")]
    finally:
        await link.stop()


async def test_asks_for_every_event_when_it_follows_none(ami: FakeAmi) -> None:
    link = _link()
    await link.configure(_endpoint(ami))
    try:
        await eventually(lambda: link.connected)
        assert ami.named("filter") == []
    finally:
        await link.stop()
