"""Operator phones: one sipp process per extension, on the port Asterisk's aor points at."""

from __future__ import annotations

import asyncio
import enum
import itertools
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp

from .config import QUALIFY_TIMEOUT
from .instance import AsteriskSandbox
from .sipp import (
    NEVER_MS,
    Side,
    SipMessage,
    SippLogs,
    display_name_of,
    end_process,
    group_by_call,
    monotonic_from_wall,
    parse_message_log,
    run_sipp,
    user_of,
)


class PhoneCallState(enum.StrEnum):
    RINGING = "ringing"
    TALKING = "talking"
    COMPLETED = "completed"  # answered, then hung up by either side
    CANCELLED = "cancelled"  # CANCEL while ringing
    REJECTED = "rejected"  # busy (486)

    @property
    def is_final(self) -> bool:
        return self in {PhoneCallState.COMPLETED, PhoneCallState.CANCELLED, PhoneCallState.REJECTED}


@dataclass(frozen=True)
class PhoneBehaviour:
    """How a phone treats every INVITE. Build one with the class methods."""

    scenario: str | None  # a file of tests/sipp; None: no process, the port is unreachable
    sipp_variables: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def answer(cls, after_ms: int = 0, hang_up_after_ms: int | None = None) -> PhoneBehaviour:
        """180 Ringing, 200 OK after `after_ms`; BYE after `hang_up_after_ms` more, or, with
        None, talk until the far end hangs up."""
        hang_up = NEVER_MS if hang_up_after_ms is None else hang_up_after_ms
        return cls("phone.xml", {"answer_ms": str(after_ms), "hangup_ms": str(hang_up)})

    @classmethod
    def human(
        cls,
        answer_ms: tuple[int, int] = (1000, 6000),
        talk_ms: tuple[int, int] = (20_000, 120_000),
        busy_ratio: float = 0.0,
    ) -> PhoneBehaviour:
        """A person (the demo's): each call rings for a time drawn in `answer_ms` (low, high)
        and is talked for one drawn in `talk_ms`; `busy_ratio` of the calls (0..1) get 486
        Busy Here instead. sipp draws them per call (phone_human.xml)."""
        if not (0 <= answer_ms[0] <= answer_ms[1] and 0 <= talk_ms[0] <= talk_ms[1]):
            raise ValueError(f"bad ranges: answer {answer_ms}, talk {talk_ms}")
        if not 0 <= busy_ratio <= 1:
            raise ValueError(f"busy_ratio must be within 0..1, not {busy_ratio}")
        variables = {
            "answer_min_ms": str(answer_ms[0]),
            "answer_max_ms": str(answer_ms[1]),
            "talk_min_ms": str(talk_ms[0]),
            "talk_max_ms": str(talk_ms[1]),
            "busy_ratio": str(busy_ratio),
        }
        return cls("phone_human.xml", variables)

    @classmethod
    def ring_until_cancelled(cls) -> PhoneBehaviour:
        """180 Ringing and never answer; a CANCEL gets 200, then 487, then the ACK."""
        return cls("phone.xml", {"answer_ms": str(NEVER_MS), "hangup_ms": str(NEVER_MS)})

    @classmethod
    def transfer(
        cls, refer_to: str, after_ms: int = 0, refer_after_ms: int = 500
    ) -> PhoneBehaviour:
        """Answer after `after_ms`, then `refer_after_ms` later transfer the call (blind, SIP
        REFER) to the `refer_to` URI; answer the NOTIFYs, then hang up (BYE)."""
        timing = {"answer_ms": str(after_ms), "refer_ms": str(refer_after_ms)}
        return cls("phone_refer.xml", {**timing, "refer_to": refer_to})

    @classmethod
    def attended_transfer(
        cls, extension: str, consult_uri: str, consult_after_ms: int = 300, talk_ms: int = 800
    ) -> PhoneBehaviour:
        """Answer, then `consult_after_ms` later call `consult_uri` from this phone (the
        consultation), and `talk_ms` after it answers transfer the first call to it (REFER with
        Replaces); answer the NOTIFYs and BYEs, and hang up what Asterisk leaves up."""
        timing = {"answer_ms": "100", "consult_ms": str(consult_after_ms), "talk_ms": str(talk_ms)}
        return cls(
            "phone_attended.xml", {**timing, "consult_uri": consult_uri, "extension": extension}
        )

    @classmethod
    def busy(cls) -> PhoneBehaviour:
        """486 Busy Here to every INVITE."""
        return cls("phone_busy.xml")

    @classmethod
    def unreachable(cls) -> PhoneBehaviour:
        """Nothing listens on the phone's port."""
        return cls(None)


@dataclass(frozen=True)
class ReceivedCall:
    """One INVITE a phone received, and how that call went (so far)."""

    call_id: str
    caller_number: str  # the user part of the INVITE's From: the caller id Asterisk sent
    caller_name: str
    invited_at: datetime  # when the INVITE arrived, UTC wall clock
    answered_at: datetime | None  # when the phone sent 200 OK
    state: PhoneCallState
    hung_up_by: Side | None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def invited_at_monotonic(self) -> float:
        return monotonic_from_wall(self.invited_at)


def received_call(messages: Sequence[SipMessage]) -> ReceivedCall | None:
    """The phone's view of one Call-ID's messages; None if it holds no INVITE (e.g. OPTIONS)."""
    invite = next((m for m in messages if m.is_request("INVITE", sent=False)), None)
    if invite is None:
        return None
    answer = next((m for m in messages if m.is_response(200, "INVITE", sent=True)), None)
    hung_up_by: Side | None = None
    if any(m.is_response(486, "INVITE", sent=True) for m in messages):
        state = PhoneCallState.REJECTED
    elif any(m.is_request("CANCEL", sent=False) for m in messages):
        state = PhoneCallState.CANCELLED
    elif any(m.is_response(200, "BYE", sent=False) for m in messages):
        state, hung_up_by = PhoneCallState.COMPLETED, Side.THIS_END
    elif any(m.is_response(200, "BYE", sent=True) for m in messages):
        state, hung_up_by = PhoneCallState.COMPLETED, Side.FAR_END
    else:
        state = PhoneCallState.RINGING if answer is None else PhoneCallState.TALKING
    return ReceivedCall(
        call_id=invite.call_id,
        caller_number=user_of(invite.headers.get("from", "")),
        caller_name=display_name_of(invite.headers.get("from", "")),
        invited_at=invite.wall_time,
        answered_at=answer.wall_time if answer else None,
        state=state,
        hung_up_by=hung_up_by,
    )


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class OperatorPhone:
    """One extension's phone. `calls()` re-reads sipp's trace, so it is always current."""

    def __init__(self, extension: str, port: int, behaviour: PhoneBehaviour, log_dir: Path) -> None:
        self.extension = extension
        self.port = port
        self.behaviour = behaviour
        self.logs = SippLogs(log_dir, f"phone-{extension}")
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        """Its sipp is up (start() was awaited, stop() was not, and it has not exited)."""
        return self._process is not None and self._process.returncode is None

    async def start(self, within: float = 5.0) -> None:
        if self.behaviour.scenario is None:
            return
        self._process = await run_sipp(
            self.behaviour.scenario,
            self.logs,
            # -aa: 200 OK to Asterisk's OPTIONS (qualify) and UPDATEs outside the scenario.
            ["-p", str(self.port), "-aa"],
            self.behaviour.sipp_variables,
        )
        deadline = time.monotonic() + within
        while not _udp_port_taken(self.port):
            if self._process.returncode is not None or time.monotonic() > deadline:
                await self.stop()
                raise RuntimeError(f"sipp phone {self.extension} did not start: {self.logs.output}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._process is not None:
            await end_process(self._process)
            self._process = None

    def calls(self) -> list[ReceivedCall]:
        parsed = (
            received_call(msgs)
            for msgs in group_by_call(parse_message_log(self.logs.messages)).values()
        )
        return sorted(
            (call for call in parsed if call is not None), key=lambda call: call.invited_at
        )

    async def wait_for(
        self, condition: Callable[[list[ReceivedCall]], bool], within: float = 10.0
    ) -> list[ReceivedCall]:
        """Poll the trace until `condition(calls)` holds; TimeoutError shows what was seen."""
        deadline = time.monotonic() + within
        while not condition(calls := self.calls()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"phone {self.extension}: condition not met; calls: {calls}")
            await asyncio.sleep(0.05)
        return calls

    async def wait_for_calls(self, count: int, within: float = 10.0) -> list[ReceivedCall]:
        """Wait until `count` calls arrived and all of them ended."""
        return await self.wait_for(
            lambda calls: len(calls) >= count and all(call.state.is_final for call in calls),
            within,
        )


# A qualify Asterisk sent to a phone's port before the phone listened (the previous test's
# stop, or a periodic one) either reaches it by its retransmission 0.5 s after sending, or fails
# at its timeout (config.QUALIFY_TIMEOUT, 1 s) and marks the phone unreachable, at the latest
# 0.5 s after the phone started. Waiting that out before syncing means no stale failure lands
# in the middle of a test.
STALE_QUALIFY_WINDOW = QUALIFY_TIMEOUT - 0.5 + 0.1


class OperatorPhones:
    """The `operator_phones` fixture: starts phones with chosen behaviours, stops them all."""

    def __init__(self, sandbox: AsteriskSandbox, log_dir: Path) -> None:
        self._sandbox = sandbox
        self._log_dir = log_dir
        self._phones: dict[str, OperatorPhone] = {}

    async def start(self, behaviours: Mapping[str, PhoneBehaviour]) -> dict[str, OperatorPhone]:
        """Start one phone per extension and wait until Asterisk sees each as it should: online
        when a process answers, offline when the phone is unreachable."""
        started = {}
        for extension, behaviour in behaviours.items():
            if extension in self._phones:
                raise ValueError(f"phone {extension} is already running in this test")
            phone = OperatorPhone(
                extension, self._sandbox.phone_ports[extension], behaviour, self._log_dir
            )
            self._phones[extension] = started[extension] = phone
            await phone.start()
        await asyncio.sleep(STALE_QUALIFY_WINDOW)
        await self._sync_with_asterisk(started)
        return started

    async def sync_with_asterisk(self) -> None:
        """Wait until Asterisk sees every phone of this test as it is (after a restart, say)."""
        await self._sync_with_asterisk(self._phones)

    async def _sync_with_asterisk(self, phones: Mapping[str, OperatorPhone]) -> None:
        await asyncio.gather(
            *(
                self._wait_until_asterisk_sees(
                    extension, "offline" if phone.behaviour.scenario is None else "online"
                )
                for extension, phone in phones.items()
            )
        )

    async def stop_all(self) -> None:
        await asyncio.gather(*(phone.stop() for phone in self._phones.values()))
        if self._sandbox.is_running:
            # So Asterisk (and app_queue) notice within a second, not at the next 30 s
            # qualify, that they left.
            for extension in self._phones:
                await self._sandbox.cli_async(f"pjsip qualify {extension}")
        self._phones.clear()

    async def _wait_until_asterisk_sees(
        self, extension: str, state: str, within: float = 10.0
    ) -> None:
        # Qualify now: Asterisk otherwise learns that a phone came or went only every 30 s.
        url = f"{self._sandbox.ari_url}/endpoints/PJSIP/{extension}"
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(headers=self._sandbox.ari_headers) as session:
            for attempt in itertools.count():
                async with session.get(url) as response:
                    response.raise_for_status()
                    current = (await response.json())["state"]
                if current == state:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"endpoint PJSIP/{extension} is {current}, not {state}")
                # Again now and then: an unanswered qualify only ends after its 3 s timeout.
                if attempt % 10 == 0:
                    await self._sandbox.cli_async(f"pjsip qualify {extension}")
                await asyncio.sleep(0.1)
