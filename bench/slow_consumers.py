"""Does anything slow on the side slow down ringing? Routing latency under four conditions.

Same set-up as `bench/routing_sandbox.py` (whose `Bench` helpers this reuses): one Asterisk
sandbox, sipp operator phones answering after 150 ms, sipp bulk callers into one queue, and the
latency from the caller's INVITE to the first INVITE an operator phone received (p50/p95/max).
The daemon runs **in this process** (aiohttp AppRunner on a TCP port), with a fresh state
folder per condition, because condition (b) needs its event bus:

a. baseline;
b. a stalled event-bus consumer: `services.bus.subscribe(max_pending=...)`, never read; the
   bus must drop it, not slow anything;
b'. stalled WebSocket clients: 10 clients of `/ws/events` (admin: every event) with a 4 KiB
   receive buffer that authenticate and then never read, and 3,000 events (6 MB for each)
   published before the calls to fill their buffers; the stream must queue for them
   (bounded) and drop them (4008), never slow routing;
c. a slow dashboard: a separate process runs concurrent `GET /api/calls/?limit=1000` requests
   in a loop, against a database pre-filled with 100,000 call rows (inserted with sqlite3
   between a first start, which creates the schema, and the start measured);
d. a slow disk: a separate process holds SQLite's write lock (`BEGIN IMMEDIATE`) for 2 s at a
   time, in a loop, so every record write waits; ringing must stay fast, and once the lock is
   released every call must end up recorded and none left open.

The load generators of (c) and (d) are this same file run as a child process
(`--hammer` / `--hold-lock`), so their work is not on the daemon's event loop. Calls recorded
are read from the daemon's SQLite file (the bench's caller number only), after the condition
ended and its lock holder was stopped.

    sudo python bench/slow_consumers.py [--calls 40] [--rate 4] [--phones 40]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

# From a checkout: callcenterd and tests (the repo), routing_sandbox (this folder).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from routing_sandbox import (
    ADMIN_PASSWORD,
    CALLER_NUMBER,
    Bench,
    Phase,
    free_port,
    pct,
    ready_and_logged_in,
    run_bench,
)

from callcenterd import keys
from callcenterd.app import create_app
from callcenterd.events.bus import Subscription
from callcenterd.logs import configure_logging
from callcenterd.settings import Settings
from tests.sandbox import AsteriskSandbox

PREFILL_ROWS = 100_000
HAMMER_CONCURRENCY = 8
LOCK_HOLD_SECONDS = 2.0
LOCK_GAP_SECONDS = 0.1
STALLED_MAX_PENDING = 50
STALLED_SOCKETS = 10
FILLER_EVENTS = 3000
# 6 MB per socket: more than the kernel buffers (up to 4 MB) and the daemon's direct writes
# (256 KB) take, so the rest queues in the stream until the client is dropped.
FILLER_BYTES = 2000
ISO = "%Y-%m-%dT%H:%M:%S.%fZ"
THIS_FILE = str(Path(__file__).resolve())


@dataclass
class Outcome:
    condition: str
    phase: Phase
    recorded: Counter[str]
    notes: list[str] = field(default_factory=list)

    @property
    def recorded_total(self) -> int:
        return sum(self.recorded.values())


# ---- child processes: the load generators ----------------------------------------------------


def _stop_on_sigterm() -> None:
    def stop(*_: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def hold_lock(database: str, hold: float, gap: float) -> None:
    """Hold SQLite's write lock `hold` s at a time until SIGTERM; print what was done."""
    _stop_on_sigterm()
    conn = sqlite3.connect(database, isolation_level=None, timeout=60)
    cycles = 0
    held = 0.0
    try:
        while True:
            conn.execute("BEGIN IMMEDIATE")
            began = time.monotonic()
            try:
                time.sleep(hold)
            finally:
                conn.execute("COMMIT")
                held += time.monotonic() - began
            cycles += 1
            time.sleep(gap)
    finally:
        conn.close()
        print(json.dumps({"cycles": cycles, "held_s": round(held, 1)}), flush=True)


async def hammer(base: str, token: str, concurrency: int) -> None:
    """`GET /api/calls/?limit=1000` from `concurrency` loops until SIGTERM; print the tally."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                async with session.get(f"{base}/api/calls/?limit=1000") as response:
                    await response.read()
                    if response.status != 200:
                        errors[str(response.status)] += 1
                        continue
            except aiohttp.ClientError as err:
                errors[type(err).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            latencies.append((time.monotonic() - began) * 1000)

    async with aiohttp.ClientSession(headers=headers) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(concurrency)]
        await stop.wait()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    tally = {
        "requests": len(latencies),
        "errors": dict(errors),
        "p50_ms": round(pct(latencies, 0.5), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
    }
    print(json.dumps(tally), flush=True)


async def spawn_child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, THIS_FILE, *args, stdout=asyncio.subprocess.PIPE
    )


async def stop_child(process: asyncio.subprocess.Process) -> dict[str, Any]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()
        return {"error": "did not stop"}
    lines = stdout.decode().strip().splitlines()
    answer: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": "no output"}
    return answer


def stalled_websockets(base: str, token: str, count: int) -> list[socket.socket]:
    """`count` authenticated /ws/events connections that will never be read again."""
    host, port = base.removeprefix("http://").split(":")
    opened = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        sock.connect((host, int(port)))
        sock.sendall(
            f"GET /ws/events?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        answer = b""
        while b"auth_ok" not in answer:  # the upgrade, then the auth_ok frame
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 101"), answer[:100]
        opened.append(sock)
    return opened


def prefill(database: Path, rows: int) -> float:
    """Insert `rows` finished calls directly (other caller numbers than the bench's)."""
    began = time.monotonic()
    start = datetime.now(UTC) - timedelta(days=30)
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("BEGIN")
        batch = []
        for i in range(rows):
            at = start + timedelta(seconds=20 * i)
            iso = at.strftime(ISO)
            end = (at + timedelta(seconds=65)).strftime(ISO)
            batch.append(
                (
                    str(uuid.uuid4()),
                    f"prefill.{i}",
                    f"7{i:09d}",
                    "900",
                    "completed" if i % 5 else "missed",
                    "operator_hangup" if i % 5 else "abandoned",
                    iso,
                    end,
                    60,
                    5.0,
                    iso,
                    end,
                )
            )
        conn.executemany(
            "INSERT INTO calls (id, channel_id, caller_number, called_number, status, reason,"
            " start_time, end_time, duration, wait_seconds, routed_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ari', ?, ?)",
            batch,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return time.monotonic() - began


def recorded_calls(database: Path) -> Counter[str]:
    """Statuses of the bench's calls, read straight from the daemon's SQLite file."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT status, count(*) FROM calls WHERE caller_number = ? GROUP BY status",
            (CALLER_NUMBER,),
        ).fetchall()
    finally:
        conn.close()
    return Counter({str(status): int(count) for status, count in rows})


# ---- the bench -------------------------------------------------------------------------------


class SlowConsumersBench(Bench):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self.settings: Settings | None = None
        self.outcomes: list[Outcome] = []

    # ---- the in-process daemon ---------------------------------------------------------------

    def make_settings(self, sandbox: AsteriskSandbox) -> Settings:
        state = tempfile.mkdtemp(prefix="ccd-bench-slow-")
        return Settings.model_validate(
            {
                "state_dir": state,
                "http": {"host": "127.0.0.1", "port": free_port()},
                "ari": {
                    "url": sandbox.http_url,
                    "username": sandbox.ari_username,
                    "password": sandbox.ari_password,
                    "app": sandbox.ari_app,
                },
                "admin_password": ADMIN_PASSWORD,
                "auth": {"bcrypt_rounds": 4},
                "rate_limits": {"enabled": False},
                "log": {"level": "warning"},
            }
        )

    async def start_in_process(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, settings.http.host, settings.http.port).start()
        self.base = f"http://{settings.http.host}:{settings.http.port}"
        self.headers = await ready_and_logged_in(
            self.base, lambda: True, lambda: "the in-process daemon"
        )

    async def stop_in_process(self, sandbox: AsteriskSandbox) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.runner = None
        self.app = None
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession(headers=sandbox.ari_headers) as session:
            while True:
                async with session.get(f"{sandbox.ari_url}/applications") as response:
                    names = {app["name"] for app in await response.json()}
                if sandbox.ari_app not in names:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Stasis app {sandbox.ari_app} still registered")
                await asyncio.sleep(0.1)

    @property
    def database(self) -> Path:
        assert self.settings is not None
        return self.settings.database_path

    async def settled_records(self, placed: int, within: float = 30.0) -> Counter[str]:
        """The bench's records once `placed` exist and none is open (or the last count)."""
        deadline = time.monotonic() + within
        while True:
            counts = await asyncio.to_thread(recorded_calls, self.database)
            done = sum(counts.values()) >= placed
            if done and not counts.get("incoming") and not counts.get("answered"):
                return counts
            if time.monotonic() > deadline:
                return counts
            await asyncio.sleep(0.2)

    # ---- conditions ----------------------------------------------------------------------------

    async def condition(self, name: str, sandbox: AsteriskSandbox) -> Outcome:
        settings = self.make_settings(sandbox)
        notes: list[str] = []
        if name == "slow dashboard":
            await self.start_in_process(settings)  # creates the schema
            await self.stop_in_process(sandbox)
            took = await asyncio.to_thread(prefill, settings.database_path, PREFILL_ROWS)
            notes.append(f"prefilled {PREFILL_ROWS} rows in {took:.1f} s")
        await self.start_in_process(settings)
        await self.configure_daemon()
        assert self.app is not None
        stalled: Subscription | None = None
        sockets: list[socket.socket] = []
        child: asyncio.subprocess.Process | None = None
        if name == "stalled bus consumer":
            stalled = self.app[keys.SERVICES].bus.subscribe(max_pending=STALLED_MAX_PENDING)
        elif name == "stalled websockets":
            token = self.headers["Authorization"].removeprefix("Bearer ")
            sockets = await asyncio.to_thread(stalled_websockets, self.base, token, STALLED_SOCKETS)
            # Enough events to fill their sockets and the daemon's buffers for them, so their
            # send queues fill too (before the calls, whose latency is measured).
            bus = self.app[keys.SERVICES].bus
            for n in range(FILLER_EVENTS):
                bus.publish("queue_stats", {"queues": [], "filler": n, "pad": "x" * FILLER_BYTES})
                if n % 50 == 0:
                    await asyncio.sleep(0.01)  # a burst, not one the bus drops the stream for
            await asyncio.sleep(2.0)
        elif name == "slow dashboard":
            token = self.headers["Authorization"].removeprefix("Bearer ")
            child = await spawn_child("--hammer", self.base, token, str(HAMMER_CONCURRENCY))
            await asyncio.sleep(1.0)  # let the hammering start
        elif name == "slow disk":
            child = await spawn_child(
                "--hold-lock", str(self.database), str(LOCK_HOLD_SECONDS), str(LOCK_GAP_SECONDS)
            )
            await asyncio.sleep(0.5)
        try:
            phase = await self.run_phase(name, sandbox)
        finally:
            if child is not None:
                tally = await stop_child(child)
                what = "hammer" if name == "slow dashboard" else "lock holder"
                notes.append(f"{what}: {json.dumps(tally)}")
        recorded = await self.settled_records(phase.placed)
        if sockets:
            stream = self.app[keys.SERVICES].events_stream
            still = stream.clients()
            queued = max((client.pending() for client in still), default=0)
            notes.append(
                f"{len(sockets)} stalled sockets: {len(sockets) - len(still)} closed by the"
                f" daemon, {len(still)} still attached with at most {queued} events queued"
            )
            for sock in sockets:
                sock.close()
        if stalled is not None:
            notes.append(
                f"stalled subscriber: closed_reason={stalled.closed_reason!r}, "
                f"{stalled.queue.qsize()} events pending (max {STALLED_MAX_PENDING})"
            )
        await self.stop_in_process(sandbox)
        return Outcome(name, phase, recorded, notes)

    async def run(self) -> None:
        args = self.args
        print(
            f"# in-process callcenterd + sandbox Asterisk + sipp; {args.calls} calls per "
            f"condition at {args.rate:g} calls/s; {args.phones} phones"
        )
        sandbox = await self.start_sandbox()
        conditions = (
            "baseline",
            "stalled bus consumer",
            "stalled websockets",
            "slow dashboard",
            "slow disk",
        )
        for name in conditions:
            outcome = await self.condition(name, sandbox)
            self.outcomes.append(outcome)
            lat = outcome.phase.latencies_ms
            print(
                f"# {name}: done, p50 {pct(lat, 0.5) if lat else float('nan'):.1f} ms; "
                + "; ".join(outcome.notes),
                flush=True,
            )
        self.report()

    def report(self) -> None:
        base = self.outcomes[0].phase.latencies_ms or [float("nan")]
        b50, b95, bmax = pct(base, 0.5), pct(base, 0.95), max(base)
        print(
            f"{'condition':<22} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
            f"{'x p50':>6} {'x p95':>6} {'x max':>6} {'placed':>6} {'failed':>6} "
            f"{'never rung':>10} {'recorded':>8}  statuses"
        )
        for outcome in self.outcomes:
            phase = outcome.phase
            lat = phase.latencies_ms or [float("nan")]
            p50, p95, top = pct(lat, 0.5), pct(lat, 0.95), max(lat)
            print(
                f"{outcome.condition:<22} {p50:8.1f} {p95:8.1f} {top:8.1f} "
                f"{p50 / b50:6.2f} {p95 / b95:6.2f} {top / bmax:6.2f} {phase.placed:>6} "
                f"{phase.failed:>6} {phase.never_rung:>10} {outcome.recorded_total:>8}  "
                f"{dict(sorted(outcome.recorded.items()))}"
            )
        for outcome in self.outcomes:
            for note in outcome.notes:
                print(f"# {outcome.condition}: {note}")

    async def close(self, keep_logs: bool = False) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await super().close(keep_logs)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="calls per condition")
    parser.add_argument("--rate", type=float, default=4.0, help="calls per second")
    parser.add_argument("--phones", type=int, default=40, help="operator phones 1001..")
    args = parser.parse_args()
    if not 1 <= args.phones <= 99:
        parser.error("--phones: 1 to 99 (extensions 1001..1099)")
    configure_logging("console", "warning")
    await run_bench(SlowConsumersBench(args))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--hold-lock"]:
        hold_lock(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1:2] == ["--hammer"]:
        asyncio.run(hammer(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            raise SystemExit(130) from None
