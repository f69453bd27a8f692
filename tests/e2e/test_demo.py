"""`python -m demo` on the real sandbox, as `make demo` runs it: within a bounded run, calls are
routed and answered, a caller abandons, one books a callback (all read from the daemon's API),
and after SIGINT nothing of that run is left: no Asterisk, sipp or daemon process.

The demo builds its own sandbox instance (ports of its own) beside the session's; the
`asterisk` fixture is asked for only so the test is skipped, or fails, the way every e2e test
is when the sandbox cannot be provisioned.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port
from tests.eventually import eventually
from tests.sandbox import AsteriskSandbox

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "e2e-demo-password"


def process_tree(root: int) -> dict[int, str]:
    """Every live descendant of `root`: pid -> command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = command_line(pid)
                frontier.append(pid)
    return found


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def alive(pid: int, was: str) -> bool:
    """Still there as the same program, and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and command_line(pid) == was


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    log = tmp_path / "demo.out"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "demo",
            # Busy on purpose: 20 calls a minute for 6 operators, so callers wait long enough
            # to give up or be offered a callback within the first minute.
            *("--rate", "20", "--minutes", "4", "--seed", "2026"),
            *("--abandon-share", "0.3", "--callback-share", "0.3"),
            *("--port", str(free_port()), "--state", str(tmp_path / "demo-state")),
            *("--password", PASSWORD),
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    yield process, log
    if process.returncode is None:
        process.kill()
        await process.wait()


async def printed(log: Path, prefix: str, within: float) -> str:
    def line() -> str:
        lines = log.read_text(errors="replace").splitlines()
        found = [ln.strip() for ln in lines if ln.strip().startswith(prefix)]
        assert found, f"no {prefix!r} line yet:\n" + "\n".join(lines[-10:])
        return found[0]

    return await eventually(line, within)


@pytest.mark.timeout(420)
async def test_the_demo_routes_calls_some_abandon_some_book_a_callback_and_sigint_cleans_up(
    asterisk: AsteriskSandbox, demo: tuple[asyncio.subprocess.Process, Path]
) -> None:
    process, log = demo
    base = (await printed(log, "wallboard", within=120)).split()[1].rstrip("/")
    assert (await printed(log, "log in as", within=1)) == f"log in as    admin / {PASSWORD}"

    async with aiohttp.ClientSession(base_url=base) as session:
        credentials = {"username": "admin", "password": PASSWORD}
        async with session.post("/api/auth/login", json=credentials) as response:
            assert response.status == 200
            token = (await response.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        async def get(path: str) -> Any:
            async with session.get(path, headers=headers) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        async def everything_happened() -> tuple[list[Any], list[Any], list[Any]]:
            await asyncio.sleep(2)  # a look every few seconds: the rate limiter counts them
            calls = (await get("/api/calls/?limit=1000"))["items"]
            answered = [c for c in calls if c["answer_time"] and c["operator_id"]]
            abandoned = [c for c in calls if c["reason"] == "abandoned"]
            booked = (await get("/api/callbacks/"))["items"]
            assert answered and abandoned and booked, (len(answered), len(abandoned), booked)
            return answered, abandoned, booked

        answered, abandoned, booked = await eventually(everything_happened, within=150)
        queues = {q["id"]: q["asterisk_name"] for q in await get("/api/queues/")}
        operators = {op["id"]: op["extension"] for op in await get("/api/operators/")}

    # Routed: by a demo queue to a demo operator, whose phone answered.
    assert {queues[c["queue_id"]] for c in answered} <= {"support", "sales"}
    assert {operators[c["operator_id"]] for c in answered} <= {f"100{n}" for n in range(1, 7)}
    assert all(c["wait_seconds"] is not None for c in abandoned)
    assert all(cb["number"].isdigit() and queues[cb["queue_id"]] for cb in booked)

    running = process_tree(process.pid)
    kinds = {kind for kind in ("asterisk", "sipp", "callcenterd run") if kind in str(running)}
    assert kinds == {"asterisk", "sipp", "callcenterd run"}, running

    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), 90) == 0, log.read_text()
    output = log.read_text()
    for line in (
        "demo: callers stopped",
        "demo: phones stopped",
        "demo: daemon stopped (exit code 0)",
    ):
        assert line in output, output
    assert output.rstrip().endswith("demo: Asterisk stopped"), output
    left = {pid: cmd for pid, cmd in running.items() if alive(pid, cmd)}
    assert left == {}, left
