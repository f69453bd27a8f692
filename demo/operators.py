"""The simulated operators: a sipp phone each (human ring and talk times), and their day as
plan.operator_schedule draws it, carried out through the daemon's API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.sandbox import AsteriskSandbox, OperatorPhone, OperatorPhones, PhoneBehaviour

from .daemon import DaemonError
from .plan import OperatorChange, OperatorProfile, Presence
from .provision import Api

Say = Callable[[str], None]
# A person finishes the call they are on before logging off: at most this long.
FINISH_CALL_WITHIN = 150.0


def phone_behaviour(profile: OperatorProfile) -> PhoneBehaviour:
    return PhoneBehaviour.human(profile.answer_ms, profile.talk_ms, profile.busy_ratio)


class DemoOperators:
    """Starts every phone, then follows the schedule until cancelled."""

    def __init__(
        self,
        sandbox: AsteriskSandbox,
        log_dir: Path,
        profiles: tuple[OperatorProfile, ...],
        extra_phones: dict[str, PhoneBehaviour],
    ) -> None:
        self._sandbox = sandbox
        self._phones = OperatorPhones(sandbox, log_dir)
        self._behaviours = {p.extension: phone_behaviour(p) for p in profiles} | extra_phones
        self._running: dict[str, OperatorPhone] = {}

    async def start_phones(self) -> None:
        """Every phone listening and seen online by Asterisk."""
        self._running = await self._phones.start(self._behaviours)

    async def follow(
        self,
        schedule: Iterator[OperatorChange],
        operator_ids: dict[str, str],
        api: Api,
        began: float,
        say: Say,
    ) -> None:
        # One chain of changes per operator: logging off waits for the call in progress, and
        # that must hold up only this operator's next change, not the others'.
        chains: dict[str, asyncio.Task[None]] = {}
        try:
            for change in schedule:
                await asyncio.sleep(max(0.0, began + change.at - time.monotonic()))
                previous = chains.get(change.extension)
                chains[change.extension] = asyncio.create_task(
                    self._after(previous, change, operator_ids[change.extension], api, say)
                )
        finally:
            for task in chains.values():
                task.cancel()
            await asyncio.gather(*chains.values(), return_exceptions=True)

    async def _after(
        self,
        previous: asyncio.Task[None] | None,
        change: OperatorChange,
        operator_id: str,
        api: Api,
        say: Say,
    ) -> None:
        if previous is not None:
            await previous
        try:
            await self._apply(change, operator_id, api, say)
        except DaemonError as error:  # the demo goes on; the line says what was refused
            say(f"operator {change.extension}: {error}")

    async def _apply(self, change: OperatorChange, operator_id: str, api: Api, say: Say) -> None:
        phone = self._running[change.extension]
        status_path = f"/api/operators/{operator_id}/status"
        if change.presence is Presence.ONLINE:
            if phone.behaviour.scenario is not None and not phone.running:
                await phone.start()
                await self._sandbox.cli_async(f"pjsip qualify {change.extension}")
            await api("PUT", status_path, {"status": "online"})
            say(f"operator {change.extension} is back online")
        elif change.presence is Presence.PAUSED:
            await api("PUT", status_path, {"status": "busy", "reason": change.reason})
            say(f"operator {change.extension} pauses ({change.reason})")
        else:
            await api("PUT", status_path, {"status": "offline"})
            say(f"operator {change.extension} logs off")
            if not change.phone_on:
                await self._finish_call(phone)
                await phone.stop()
                await self._sandbox.cli_async(f"pjsip qualify {change.extension}")

    @staticmethod
    async def _finish_call(phone: OperatorPhone) -> None:
        deadline = time.monotonic() + FINISH_CALL_WITHIN
        while time.monotonic() < deadline:
            if all(call.state.is_final for call in phone.calls()):
                return
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        await self._phones.stop_all()
