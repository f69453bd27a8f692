"""Background work: loops the app runs for as long as a cleanup_ctx step lasts, ordered
lanes of jobs, and retries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)
T = TypeVar("T")


@contextlib.asynccontextmanager
async def running(loop: Coroutine[Any, Any, None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    """Run `loop` as a task inside the block; cancel it and wait for it on the way out."""
    task = asyncio.create_task(loop, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


Job = Callable[[], Awaitable[None]]


class SerialLanes:
    """Runs jobs one after another per key, keys independently.

    A job's failure never stops its lane: the `expected` kinds (a channel already gone, a
    database that stayed locked) are logged as warnings, anything else with its traceback.
    """

    def __init__(self, expected: tuple[type[Exception], ...] = ()) -> None:
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._expected = expected

    def run(self, key: str, job: Job) -> asyncio.Task[None]:
        previous = self._tails.get(key)

        async def chained() -> None:
            if previous is not None:
                with contextlib.suppress(BaseException):
                    await previous
            try:
                await job()
            except self._expected as err:
                log.warning("job_failed", lane=key, error=str(err))
            except Exception:
                log.exception("job_crashed", lane=key)

        task = asyncio.create_task(chained())
        self._tails[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def _forget(self, key: str, done: asyncio.Task[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    def pending(self) -> int:
        return len(self._tails)

    async def drain(self) -> None:
        """Until every lane is idle, including jobs queued meanwhile."""
        while self._tails:
            await asyncio.gather(*self._tails.values(), return_exceptions=True)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    delays: tuple[float, ...],
    retry_on: type[Exception],
    what: str,
) -> T:
    """`attempt()`, again after each delay while it raises `retry_on`; the last failure
    propagates."""
    for delay in delays:
        try:
            return await attempt()
        except retry_on as err:
            log.warning("retrying", what=what, error=str(err), delay=delay)
            await asyncio.sleep(delay)
    return await attempt()
