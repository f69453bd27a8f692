"""Callers: sipp processes that dial the sandbox's trunk port like a provider would."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .instance import AsteriskSandbox
from .sipp import (
    NEVER_MS,
    Side,
    SipMessage,
    SippLogs,
    end_process,
    group_by_call,
    parse_message_log,
    run_sipp,
)


@dataclass(frozen=True)
class CallerOutcome:
    """One call as the caller saw it. Times are UTC wall clock (see sipp.monotonic_from_wall)."""

    exit_code: int | None  # sipp's: 0 when every call went as planned; None while running
    call_id: str
    invite_sent_at: datetime | None
    ringing_at: datetime | None  # first 180/183
    answered_at: datetime | None  # the 200 OK to the INVITE
    final_status: int | None  # the INVITE's final response (200, 486, 487, ...)
    cancelled_at: datetime | None  # when the caller sent CANCEL
    hung_up_by: Side | None  # THIS_END: the caller sent BYE; FAR_END: Asterisk did

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


def caller_outcome(messages: Sequence[SipMessage], exit_code: int | None) -> CallerOutcome:
    def first(predicate: Callable[[SipMessage], bool]) -> SipMessage | None:
        return next((m for m in messages if predicate(m)), None)

    invite = first(lambda m: m.is_request("INVITE", sent=True))
    ringing = first(lambda m: not m.sent and m.status in (180, 183) and m.cseq_method == "INVITE")
    answer = first(lambda m: m.is_response(200, "INVITE", sent=False))
    final = first(
        lambda m: (
            not m.sent and m.status is not None and m.status >= 200 and m.cseq_method == "INVITE"
        )
    )
    cancel = first(lambda m: m.is_request("CANCEL", sent=True))
    hung_up_by: Side | None = None
    if any(m.is_response(200, "BYE", sent=False) for m in messages):
        hung_up_by = Side.THIS_END
    elif any(m.is_request("BYE", sent=False) for m in messages):
        hung_up_by = Side.FAR_END
    return CallerOutcome(
        exit_code=exit_code,
        call_id=invite.call_id if invite else "",
        invite_sent_at=invite.wall_time if invite else None,
        ringing_at=ringing.wall_time if ringing else None,
        answered_at=answer.wall_time if answer else None,
        final_status=final.status if final else None,
        cancelled_at=cancel.wall_time if cancel else None,
        hung_up_by=hung_up_by,
    )


class CallerCall:
    """A running caller (one sipp, one call). `await call.outcome()` waits for it to finish."""

    def __init__(self, logs: SippLogs, process: asyncio.subprocess.Process) -> None:
        self.logs = logs
        self._process = process

    def snapshot(self) -> CallerOutcome:
        """The call so far (exit_code None while sipp still runs)."""
        calls = group_by_call(parse_message_log(self.logs.messages))
        # Its own call: the port may get a BYE (re)sent to an earlier test's caller first.
        mine = (m for m in calls.values() if any(x.is_request("INVITE", sent=True) for x in m))
        return caller_outcome(next(mine, []), self._process.returncode)

    async def outcome(self, within: float = 30.0) -> CallerOutcome:
        """Wait for sipp to exit (killed after `within` s: exit code -9), report the call."""
        try:
            await asyncio.wait_for(self._process.wait(), within)
        except TimeoutError:
            await end_process(self._process, grace=0)
        return self.snapshot()

    async def stop(self) -> None:
        await end_process(self._process, grace=0)


@dataclass(frozen=True)
class BulkCallResult:
    exit_code: int
    calls: list[CallerOutcome]
    stats_file: Path  # sipp's -trace_stat CSV: counts, call setup times


class Callers:
    """The `caller` fixture: places calls at the sandbox's trunk from sipp on 127.0.0.1."""

    def __init__(self, sandbox: AsteriskSandbox, log_dir: Path) -> None:
        self._sandbox = sandbox
        self._log_dir = log_dir
        self._names = itertools.count(1)
        self._running: list[CallerCall] = []

    def _target(self, number: str) -> list[str]:
        # No -p: sipp takes 5060, or the next free port, so concurrent callers never clash.
        # -aa: 200 OK to what Asterisk may send mid-call outside the scenario (UPDATE, INFO...).
        return [f"127.0.0.1:{self._sandbox.sip_port}", "-s", number, "-aa"]

    async def dial(
        self,
        number: str,
        caller_number: str = "5550100",
        *,
        hang_up_after_ms: int | None = None,
        cancel_after_ms: int | None = None,
        scenario: str | None = None,
    ) -> CallerCall:
        """Dial `number` from `caller_number`. After the answer, hang up after `hang_up_after_ms`
        or (None) wait for the far end's BYE. With `cancel_after_ms`, CANCEL that long after
        the INVITE instead (an answer before then fails the call: exit code 1). `scenario`: a
        variant of caller.xml to run instead (media.caller_with_media)."""
        logs = SippLogs(self._log_dir, f"caller-{next(self._names)}-{caller_number}")
        if cancel_after_ms is not None:
            scenario, timing = "caller_cancel.xml", {"cancel_ms": str(cancel_after_ms)}
        else:
            hang_up = NEVER_MS if hang_up_after_ms is None else hang_up_after_ms
            scenario, timing = scenario or "caller.xml", {"hangup_ms": str(hang_up)}
        process = await run_sipp(
            scenario,
            logs,
            [*self._target(number), "-m", "1"],
            {"caller_number": caller_number, **timing},
        )
        call = CallerCall(logs, process)
        self._running.append(call)
        return call

    async def dial_and_press_1(
        self,
        number: str,
        caller_number: str,
        *,
        press_after_ms: int,
        scenario: str = "caller_dtmf.xml",
    ) -> CallerCall:
        """Dial `number`; `press_after_ms` after the answer press 1 (RFC 4733 DTMF), then wait
        for the far end to hang up (a callback booked: confirmed, then hung up). `scenario`:
        a variant taking the same variables (caller_press_1_until_served.xml presses again
        every few seconds and waits without a timeout)."""
        logs = SippLogs(self._log_dir, f"caller-{next(self._names)}-{caller_number}-dtmf")
        process = await run_sipp(
            scenario,
            logs,
            [*self._target(number), "-m", "1"],
            {"caller_number": caller_number, "press_ms": str(press_after_ms)},
        )
        call = CallerCall(logs, process)
        self._running.append(call)
        return call

    async def burst(
        self,
        number: str,
        caller_numbers: Sequence[str],
        *,
        hang_up_after_ms: int | None = None,
    ) -> list[CallerCall]:
        """Start one caller per number in `caller_numbers`, all at once."""
        return list(
            await asyncio.gather(
                *(
                    self.dial(number, caller, hang_up_after_ms=hang_up_after_ms)
                    for caller in caller_numbers
                )
            )
        )

    async def bulk(
        self,
        number: str,
        *,
        calls_per_second: float,
        total_calls: int,
        max_concurrent: int | None = None,
        caller_number: str = "5550200",
        hang_up_after_ms: int = 1000,
        within: float = 300.0,
    ) -> BulkCallResult:
        """One sipp placing `total_calls` at a rate (-r/-m/-l), for benchmarks."""
        logs = SippLogs(self._log_dir, f"bulk-{next(self._names)}")
        arguments = [
            *self._target(number),
            "-r",
            str(calls_per_second),
            "-m",
            str(total_calls),
            "-trace_stat",
            "-stf",
            str(logs.stats),
        ]
        if max_concurrent is not None:
            arguments += ["-l", str(max_concurrent)]
        process = await run_sipp(
            "caller.xml",
            logs,
            arguments,
            {"caller_number": caller_number, "hangup_ms": str(hang_up_after_ms)},
        )
        exit_code = (await CallerCall(logs, process).outcome(within)).exit_code
        assert exit_code is not None  # outcome() waited for the process
        calls = group_by_call(parse_message_log(logs.messages))
        outcomes = [caller_outcome(messages, exit_code) for messages in calls.values()]
        return BulkCallResult(exit_code, outcomes, logs.stats)

    async def stop_all(self) -> None:
        await asyncio.gather(*(call.stop() for call in self._running))
        self._running.clear()
