"""The simulated callers: one sipp per call into the sandbox's trunk, as plan.caller_stream
draws them.

A caller who loses patience hangs up while waiting. sipp cannot tell waiting from talking (the
daemon answers every caller at once, then plays music until an operator is bridged), so the
demo asks the daemon: when the patience is over and the call is still `incoming` (not yet
answered by an operator), the caller's channel is hung up on the network side (Asterisk's ARI,
as the far end's BYE would), and the daemon records an abandoned call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from tests.sandbox import AsteriskSandbox, CallerCall, Callers

from .daemon import DaemonError
from .plan import CallerKind, CallerPlan
from .provision import Api

# No demo call lasts longer: the queues' maximum wait, plus a long talk, plus slack.
CALL_LIMIT = 900.0
PRESS_1_SCENARIO = "caller_press_1_until_served.xml"


def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


class DemoCallers:
    def __init__(self, sandbox: AsteriskSandbox, log_dir: Path, api: Api) -> None:
        self._sandbox = sandbox
        self._callers = Callers(sandbox, log_dir)
        self._api = api
        self._calls: set[asyncio.Task[None]] = set()
        self.placed = 0
        self.gave_up = 0  # impatient callers hung up while still waiting
        self.asked_for_callback = 0

    async def follow(self, stream: Iterator[CallerPlan], began: float) -> None:
        """Place each call at its time, until cancelled."""
        for plan in stream:
            await asyncio.sleep(max(0.0, began + plan.at - time.monotonic()))
            call = await self._place(plan)
            self.placed += 1
            task = asyncio.create_task(self._live(plan, call))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _place(self, plan: CallerPlan) -> CallerCall:
        number = self._sandbox.queue_number(plan.queue)
        if plan.kind is CallerKind.CALLBACK:
            assert plan.press_after is not None
            self.asked_for_callback += 1
            return await self._callers.dial_and_press_1(
                number,
                plan.number,
                press_after_ms=int(plan.press_after * 1000),
                scenario=PRESS_1_SCENARIO,
            )
        return await self._callers.dial(number, plan.number)

    async def _live(self, plan: CallerPlan, call: CallerCall) -> None:
        if plan.kind is CallerKind.IMPATIENT:
            assert plan.patience is not None
            await asyncio.sleep(plan.patience)
            with contextlib.suppress(DaemonError, aiohttp.ClientError):
                if await self._hang_up_if_waiting(plan.number):
                    self.gave_up += 1
        await call.outcome(within=CALL_LIMIT)

    async def _hang_up_if_waiting(self, caller_number: str) -> bool:
        page = await self._api("GET", "/api/calls/?status=incoming&limit=1000")
        waiting = [
            item["channel_id"]
            for item in page["items"]
            if digits(item["caller_number"]) == digits(caller_number)
        ]
        if not waiting:
            return False  # an operator has it (or it ended)
        async with (
            aiohttp.ClientSession(headers=self._sandbox.ari_headers) as session,
            session.delete(f"{self._sandbox.ari_url}/channels/{waiting[0]}") as response,
        ):
            return response.status == 204

    async def stop(self) -> None:
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        await self._callers.stop_all()
