"""Wait for something to happen instead of sleeping a fixed while.

    await eventually(lambda: stream.last_id == 3)
    await eventually(lambda: fake.dialed, within=10)            # a truthy value is returned
    async def ready() -> None:
        assert (await client.get("/api/health/ready")).status == 200
    await eventually(ready)                                     # or an assertion that passes

`check` is a plain or async callable; it succeeds by returning normally with None or a
truthy value (which `eventually` returns), and fails by raising AssertionError or returning
a falsy value other than None. Failures are retried, with a short backoff, until `within`
seconds have passed; then the last failure is raised.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_DELAY = 0.005
MAX_DELAY = 0.1


async def eventually(
    check: Callable[[], T | Awaitable[T]], within: float = 5.0, message: str = ""
) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    delay = FIRST_DELAY
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
        except AssertionError as err:
            failure = err
        else:
            if result is None or result:
                return result  # type: ignore[return-value]
            failure = AssertionError(f"{_name(check)} returned {result!r}")
        left = deadline - loop.time()
        if left <= 0:
            what = f"{message}: " if message else ""
            raise AssertionError(f"{what}not so within {within} s: {failure}") from failure
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, MAX_DELAY)


def _name(check: Callable[..., object]) -> str:
    name = getattr(check, "__qualname__", repr(check))
    if name.endswith("<lambda>"):
        try:
            return inspect.getsource(check).strip()
        except (OSError, TypeError):
            return name
    return name
