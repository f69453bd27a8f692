"""Auth API throughput and latency over loopback, against a bare aiohttp handler.

Starts, as separate processes on 127.0.0.1: the real daemon (temporary state folder,
rate limits off) and a bare aiohttp app answering a fixed JSON body. Then drives each with
the same closed-loop client (C concurrent connections for D seconds) and prints requests
per second and latency percentiles, and the ratio of each endpoint to the baseline.

The authenticated reads are driven in R interleaved rounds (bare, then each endpoint, again
and again): on a shared machine a burst of other work then weighs on all of them alike,
and the ratios stay comparable. Beside each line, the server's CPU time per request (user
and system, from /proc): what a request costs the daemon whatever the machine is doing.

    python bench/auth_api.py [--seconds 5] [--rounds 5] [--concurrency 16] [--bcrypt-rounds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

BARE_SERVER = """
import sys
from aiohttp import web
async def handle(request):
    return web.json_response({"id": "00000000-0000-0000-0000-000000000000", "username": "admin"})
app = web.Application()
app.router.add_get("/bare", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a process so far (Linux; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: float | None = 0.0

    def add(self, other: Result) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms
        if self.cpu_seconds is not None and other.cpu_seconds is not None:
            self.cpu_seconds += other.cpu_seconds
        else:
            self.cpu_seconds = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per request."""
        return (self.cpu_seconds or 0.0) / max(1, self.requests) * 1e6

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Request = Callable[[aiohttp.ClientSession], Awaitable[int]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def log_in(session: aiohttp.ClientSession, base: str, credentials: dict[str, str]) -> str:
    async with session.post(f"{base}/api/auth/login", json=credentials) as response:
        if response.status != 200:
            raise RuntimeError(f"logging in as {credentials['username']}: {response.status}")
        return str((await response.json())["access_token"])


async def drive(
    name: str, request: Request, seconds: float, concurrency: int, server_pid: int
) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await request(session)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors += 1

        cpu_before = cpu_seconds(server_pid)
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        cpu_after = cpu_seconds(server_pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Result(name, len(latencies), errors, elapsed, latencies, cpu)


def show(result: Result, baseline: Result | None) -> None:
    ratio = f"{result.rps / baseline.rps:6.3f}x" if baseline else "  base "
    cpu = "   n/a" if result.cpu_seconds is None else f"{result.cpu_us:6.0f}"
    print(
        f"{result.name:<30} {result.rps:8.1f} req/s  p50 {result.pct(0.50):7.2f} ms  "
        f"p99 {result.pct(0.99):7.2f} ms  max {max(result.latencies_ms):7.2f} ms  "
        f"server cpu {cpu} us/req  errors {result.errors:<4} vs bare {ratio}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per endpoint, all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    args = parser.parse_args()

    bare_port, daemon_port = free_port(), free_port()
    state = tempfile.mkdtemp(prefix="ccd-bench-")
    env = {
        **os.environ,
        "CALLCENTERD_STATE_DIR": state,
        "CALLCENTERD_HTTP_PORT": str(daemon_port),
        "CALLCENTERD_ADMIN_PASSWORD": "bench-password",
        "CALLCENTERD_AUTH_BCRYPT_ROUNDS": str(args.bcrypt_rounds),
        "CALLCENTERD_RATE_LIMITS_ENABLED": "false",
        "CALLCENTERD_LOG_LEVEL": "warning",
        "CALLCENTERD_ARI_URL": f"http://127.0.0.1:{free_port()}",
    }
    servers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", BARE_SERVER, str(bare_port)),
        await asyncio.create_subprocess_exec(sys.executable, "-m", "callcenterd", "run", env=env),
    ]
    try:
        base = f"http://127.0.0.1:{daemon_port}"
        await wait_ready(f"http://127.0.0.1:{bare_port}/bare")
        await wait_ready(f"{base}/healthz")
        credentials = {"username": "admin", "password": "bench-password"}
        operator = {"username": "bench-operator", "password": "bench-password"}
        async with aiohttp.ClientSession() as session:
            admin_token = await log_in(session, base, credentials)
            # An operator's /me carries their operator row too (its status, calls today).
            created = {
                **operator,
                "email": "operator@bench.invalid",
                "name": "Bench Operator",
                "role": "operator",
                "extension": "1001",
            }
            async with session.post(
                f"{base}/api/admin/users", json=created, headers=bearer(admin_token)
            ) as response:
                if response.status != 201:
                    raise RuntimeError(f"creating the operator: {response.status}")
            operator_token = await log_in(session, base, operator)

        def get(url: str, headers: dict[str, str]) -> Request:
            async def request(session: aiohttp.ClientSession) -> int:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    return response.status

            return request

        async def login(session: aiohttp.ClientSession) -> int:
            async with session.post(f"{base}/api/auth/login", json=credentials) as response:
                await response.read()
                return response.status

        # The first is the baseline; the others are compared with it.
        targets: list[tuple[str, Request, int]] = [
            ("bare aiohttp GET", get(f"http://127.0.0.1:{bare_port}/bare", {}), servers[0].pid),
            ("GET /api/auth/me", get(f"{base}/api/auth/me", bearer(admin_token)), servers[1].pid),
            (
                "GET /api/auth/me (operator)",
                get(f"{base}/api/auth/me", bearer(operator_token)),
                servers[1].pid,
            ),
            (
                "GET /api/dashboard/realtime",
                get(f"{base}/api/dashboard/realtime", bearer(admin_token)),
                servers[1].pid,
            ),
        ]
        print(
            f"# loopback, {args.concurrency} connections, {args.seconds:g} s each in"
            f" {args.rounds} interleaved rounds, bcrypt rounds {args.bcrypt_rounds},"
            f" {os.cpu_count()} cores"
        )
        results = [Result(name) for name, _, _ in targets]
        for _ in range(args.rounds):
            for result, (name, request, pid) in zip(results, targets, strict=True):
                slice_seconds = args.seconds / args.rounds
                result.add(await drive(name, request, slice_seconds, args.concurrency, pid))
        baseline = results[0]
        show(baseline, None)
        for result in results[1:]:
            show(result, baseline)
        logins = await drive(
            "POST /api/auth/login", login, args.seconds, args.concurrency, servers[1].pid
        )
        show(logins, baseline)
        print("# login is bcrypt-bound by design: one hash check per attempt, off the event loop")
        print("# dashboard: one answer a second per viewer scope, shared (SharedAnswers)")
    finally:
        for server in servers:
            server.terminate()
            await asyncio.wait_for(server.wait(), 15)


if __name__ == "__main__":
    asyncio.run(main())
