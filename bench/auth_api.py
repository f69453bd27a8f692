"""Auth API throughput and latency over loopback, against a bare aiohttp handler.

Starts, as separate processes on 127.0.0.1: the real daemon (temporary state folder,
rate limits off) and a bare aiohttp app answering a fixed JSON body. Then drives each with
the same closed-loop client (C concurrent connections for D seconds) and prints requests
per second and latency percentiles, and the ratio of each endpoint to the baseline.

    python bench/auth_api.py [--seconds 5] [--concurrency 16] [--bcrypt-rounds 12]
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
from dataclasses import dataclass

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


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Request = Callable[[aiohttp.ClientSession], Awaitable[int]]


async def drive(name: str, request: Request, seconds: float, concurrency: int) -> Result:
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

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(name, len(latencies), errors, elapsed, latencies)


def show(result: Result, baseline: Result | None) -> None:
    ratio = f"{result.rps / baseline.rps:6.3f}x" if baseline else "  base "
    print(
        f"{result.name:<22} {result.rps:9.1f} req/s  p50 {result.pct(0.50):7.2f} ms  "
        f"p99 {result.pct(0.99):7.2f} ms  max {max(result.latencies_ms):7.2f} ms  "
        f"errors {result.errors:<4} vs bare {ratio}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
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
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base}/api/auth/login", json=credentials) as response,
        ):
            token = (await response.json())["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        async def bare(session: aiohttp.ClientSession) -> int:
            async with session.get(f"http://127.0.0.1:{bare_port}/bare") as response:
                await response.read()
                return response.status

        async def me(session: aiohttp.ClientSession) -> int:
            async with session.get(f"{base}/api/auth/me", headers=auth) as response:
                await response.read()
                return response.status

        async def login(session: aiohttp.ClientSession) -> int:
            async with session.post(f"{base}/api/auth/login", json=credentials) as response:
                await response.read()
                return response.status

        print(
            f"# loopback, {args.concurrency} connections, {args.seconds:g} s each, "
            f"bcrypt rounds {args.bcrypt_rounds}, {os.cpu_count()} cores"
        )
        baseline = await drive("bare aiohttp GET", bare, args.seconds, args.concurrency)
        show(baseline, None)
        show(await drive("GET /api/auth/me", me, args.seconds, args.concurrency), baseline)
        show(await drive("POST /api/auth/login", login, args.seconds, args.concurrency), baseline)
        print("# login is bcrypt-bound by design: one hash check per attempt, off the event loop")
    finally:
        for server in servers:
            server.terminate()
            await asyncio.wait_for(server.wait(), 15)


if __name__ == "__main__":
    asyncio.run(main())
