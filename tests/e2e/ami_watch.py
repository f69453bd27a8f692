"""What Asterisk itself reports over AMI, for e2e checks the daemon's own view cannot make:
music on hold starting and stopping on a channel (`MusicOnHoldStart`/`MusicOnHoldStop`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from tests.sandbox import AsteriskSandbox

AmiEvent = dict[str, str]


class AmiWatch:
    """Every AMI event since login, to wait for the one a step expects."""

    def __init__(self) -> None:
        self.seen: list[AmiEvent] = []
        self._arrived = asyncio.Condition()

    async def read(self, reader: asyncio.StreamReader) -> None:
        await reader.readline()  # the banner
        while True:
            block = await reader.readuntil(b"\r\n\r\n")
            message: AmiEvent = {}
            for line in block.decode(errors="replace").split("\r\n"):
                key, sep, value = line.partition(": ")
                if sep:
                    message[key] = value
            async with self._arrived:
                self.seen.append(message)
                self._arrived.notify_all()

    async def wait_for(self, what: Callable[[AmiEvent], bool], within: float = 10.0) -> AmiEvent:
        async def first() -> AmiEvent:
            async with self._arrived:
                while True:
                    found = next((e for e in self.seen if what(e)), None)
                    if found is not None:
                        return found
                    await self._arrived.wait()

        return await asyncio.wait_for(first(), within)

    def count(self, what: Callable[[AmiEvent], bool]) -> int:
        return sum(1 for event in self.seen if what(event))


def moh(kind: str, channel_id: str) -> Callable[[AmiEvent], bool]:
    """`MusicOnHoldStart` or `MusicOnHoldStop` on the channel (ARI's id is its Uniqueid)."""
    return lambda e: e.get("Event") == kind and e.get("Uniqueid") == channel_id


@asynccontextmanager
async def ami_watch(asterisk: AsteriskSandbox) -> AsyncIterator[AmiWatch]:
    reader, writer = await asyncio.open_connection(asterisk.ami_host, asterisk.ami_port)
    watch = AmiWatch()
    task = asyncio.get_running_loop().create_task(watch.read(reader))
    writer.write(
        (
            "Action: Login\r\n"
            f"Username: {asterisk.ami_username}\r\n"
            f"Secret: {asterisk.ami_secret}\r\n"
            "Events: on\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    try:
        await watch.wait_for(lambda e: e.get("Response") == "Success")
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncio.IncompleteReadError):
            await task
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
