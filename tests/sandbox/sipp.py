"""Running sipp, and reading what it saw from its message trace (-trace_msg)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .processes import die_with_parent

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "sipp"
# A pause this long never ends within a test: "wait for the other side".
NEVER_MS = 24 * 3600 * 1000
_ENTRY_SEPARATOR = re.compile(r"^-{20,} (?=\d{4}-\d\d-\d\d )", re.MULTILINE)
_SIP_USER = re.compile(r"sips?:([^@;>]+)@")
_DISPLAY_NAME = re.compile(r'^\s*"([^"]*)"')


class Side(enum.StrEnum):
    """Who hung up, seen from the phone or the caller that reports it."""

    THIS_END = "this_end"
    FAR_END = "far_end"


@dataclass(frozen=True)
class SipMessage:
    wall_time: datetime
    sent: bool
    start_line: str
    headers: Mapping[str, str]  # lower-case name -> first value

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id", "")

    @property
    def method(self) -> str | None:
        """The request's method; None for a response."""
        return None if self.start_line.startswith("SIP/2.0") else self.start_line.split()[0]

    @property
    def status(self) -> int | None:
        """The response's status code; None for a request."""
        return int(self.start_line.split()[1]) if self.start_line.startswith("SIP/2.0") else None

    @property
    def cseq_method(self) -> str:
        parts = self.headers.get("cseq", "").split()
        return parts[-1] if parts else ""

    def is_request(self, method: str, *, sent: bool) -> bool:
        return self.sent is sent and self.method == method

    def is_response(self, status: int, cseq_method: str, *, sent: bool) -> bool:
        return self.sent is sent and self.status == status and self.cseq_method == cseq_method


def monotonic_from_wall(wall_time: datetime) -> float:
    """The time.monotonic() value of a wall-clock time seen in a sipp trace."""
    return wall_time.timestamp() - time.time() + time.monotonic()


def user_of(header: str) -> str:
    """'"Bob" <sip:5551234@127.0.0.1:5060>;tag=x' -> '5551234'."""
    match = _SIP_USER.search(header)
    return match.group(1) if match else ""


def display_name_of(header: str) -> str:
    match = _DISPLAY_NAME.match(header)
    return match.group(1) if match else ""


def parse_message_log(path: Path) -> list[SipMessage]:
    """Every complete SIP message of a sipp -trace_msg file, in order."""
    if not path.exists():
        return []
    messages = []
    for entry in _ENTRY_SEPARATOR.split(path.read_text(errors="replace"))[1:]:
        message = _parse_entry(entry)
        if message is not None:
            messages.append(message)
    return messages


def _parse_entry(entry: str) -> SipMessage | None:
    # "2026-11-28 17:28:46.823084\nUDP message received [468] bytes :\n\nINVITE sip:..."
    timestamp, _, rest = entry.partition("\n")
    direction, _, sip_text = rest.partition("\n\n")
    lines = sip_text.strip("\n").splitlines()
    if not lines or " message " not in direction:
        return None  # the entry sipp is still writing
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line.strip():
            break
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return SipMessage(
        # sipp runs with TZ=UTC (see run_sipp), so its local times are UTC.
        wall_time=datetime.strptime(timestamp.strip(), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC),
        sent=" sent" in direction,
        start_line=lines[0].strip(),
        headers=headers,
    )


def group_by_call(messages: Sequence[SipMessage]) -> dict[str, list[SipMessage]]:
    calls: dict[str, list[SipMessage]] = {}
    for message in messages:
        calls.setdefault(message.call_id, []).append(message)
    return calls


@dataclass(frozen=True)
class SippLogs:
    """The files one sipp process writes, named after it in a test's log folder."""

    folder: Path
    name: str

    @property
    def messages(self) -> Path:
        return self.folder / f"{self.name}.messages.log"

    @property
    def errors(self) -> Path:
        return self.folder / f"{self.name}.errors.log"

    @property
    def output(self) -> Path:
        return self.folder / f"{self.name}.out"

    @property
    def stats(self) -> Path:
        return self.folder / f"{self.name}.stats.csv"


async def run_sipp(
    scenario: str,
    logs: SippLogs,
    arguments: Sequence[str],
    global_variables: Mapping[str, str],
) -> asyncio.subprocess.Process:
    """Start sipp with a scenario of tests/sipp on 127.0.0.1; traces go to `logs`."""
    logs.folder.mkdir(parents=True, exist_ok=True)
    settings = [item for name, value in global_variables.items() for item in ("-set", name, value)]
    with logs.output.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            "sipp",
            "-sf",
            str(SCENARIO_DIR / scenario),
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(logs.messages),
            "-trace_err",
            "-error_file",
            str(logs.errors),
            *settings,
            *arguments,
            stdin=asyncio.subprocess.DEVNULL,
            # sipp redraws its statistics screen on stdout all the time: not worth keeping.
            stdout=asyncio.subprocess.DEVNULL,
            stderr=output,
            env={**os.environ, "TZ": "UTC"},
            preexec_fn=die_with_parent,
            start_new_session=True,
        )


async def end_process(process: asyncio.subprocess.Process, grace: float = 2.0) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    return await process.wait()
