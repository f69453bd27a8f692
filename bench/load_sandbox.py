"""Does dashboard and WebSocket load slow down ringing? Routing latency idle vs loaded.

Same set-up as `bench/routing_sandbox.py` (whose `Bench` this extends): one Asterisk sandbox,
sipp operator phones answering after 150 ms, sipp bulk callers at a fixed rate into one queue,
and the latency from the caller's INVITE to the first INVITE an operator phone received. The
daemon runs as a subprocess with **rate limits on** (the shipped defaults) and its default log
level (info: a line per write, error or slow answer; quick successful reads at debug). It is
first started with limits off to create the users and log them in (login is limited to 5 a
minute per address), then restarted on the same state folder with limits on; both phases run
on that one daemon and Asterisk:

1. idle: N calls at R calls/s, nothing else;
2. loaded: the same N calls at R calls/s while, from two separate processes (so the daemon's
   figure is the daemon's):
   - A wallboard clients (half supervisors of the operators' group, half managers, each its
     own user and token) poll GET /api/dashboard/stats?period=today, /api/dashboard/realtime,
     /api/queues/, /api/operators/ and /api/calls/?limit=20 every P seconds (24 dashboard and
     36 general requests a minute: within the 60 and 100 a minute per user);
   - E over-eager clients (supervisors, their own users) poll /api/dashboard/realtime every
     0.1 s (600 a minute): they must get 429 with Retry-After, the wallboards never;
   - W WebSocket clients on /ws/events (the managers' tokens: they see every event) read every
     frame; each must receive every event published while it was connected, and none may be
     disconnected.
   Both generator processes run under Linux's SCHED_IDLE policy (`--client-sched idle`, the
   default; `nice` runs them at niceness 10 instead): the bench's machine is also the daemon's,
   Asterisk's and sipp's, and the generators (~0.8 of a core for 1,000 sockets and ~200
   requests/s) would otherwise take CPU from what they measure, as clients on their own
   machines would not. A generator starved that way offers less load, so the run also checks
   the load offered: the wallboards' requests must be at least 95% of their nominal rate
   (clients x endpoints / poll seconds), or the run fails.

Reported: routing latency p50/p95/p99 idle and loaded and the p99 ratio (target loaded p99 <=
1.2 x idle p99), failed calls, the daemon's CPU per phase, API requests and errors by kind (any
non-2xx other than the over-eager clients' 429s, any exception), events published (bus ids,
and the daemon's callcenterd_events_total) vs received per WebSocket client, and the
over-eager clients' 200s, 429s and 429s without Retry-After. Before the restart, `--prefill`
call rows (default 100,000: 23 days of history, ending a week ago) are written into the
database, so the dashboards have a history to aggregate.

    sudo python bench/load_sandbox.py [--calls 200] [--rate 5] [--api-clients 200]
        [--ws-clients 1000] [--eager-clients 5] [--poll-seconds 5] [--profile FILE] [--quick]

``--quick`` places 30 calls per phase (a smoke run with the full client counts). Exits 1 if a
target was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import resource
import signal
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

# From a checkout: callcenterd and tests (the repo), the other benches (this folder).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from routing_sandbox import Bench, Phase, cpu_seconds, pct, run_bench
from slow_consumers import prefill
from ws_fanout import LoadClient

from tests.sandbox import AsteriskSandbox

WALLBOARD_PATHS = (
    "/api/dashboard/stats?period=today",
    "/api/dashboard/realtime",
    "/api/queues/",
    "/api/operators/",
    "/api/calls/?limit=20",
)
EAGER_PATH = "/api/dashboard/realtime"
OFFERED_SHARE = 0.95  # of the wallboards' nominal request rate, or the load was not offered
EAGER_INTERVAL = 0.1  # 600 requests a minute; the dashboard limit is 60
USER_PASSWORD = "load-bench-pw"
LATENCY_SAMPLE_CLIENTS = 10  # WebSocket clients that also time each event (publish -> receive)
TARGET_RATIO = 1.2
# The daemon's own view (its /metrics): StasisStart to the first operator leg dialed, and
# how late its event loop woke from a 0.1 s sleep.
HISTOGRAMS = ("callcenterd_routing_latency_seconds", "callcenterd_event_loop_lag_seconds")


def raise_fd_limit() -> None:
    """Soft limit to the hard one: 1,000 sockets in the client process, as many in the
    daemon (a child: it inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---- child process 1: WebSocket clients ------------------------------------------------------


class EventReader(LoadClient):
    """ws_fanout's raw-protocol client, keeping the id of every event frame it reads."""

    def __init__(self, host: str, target: str, ready: asyncio.Event, latencies: list[float]):
        super().__init__(host, target, ready, latencies)
        self.ids = array("q")
        self.timed = False
        self.lost: str | None = None  # the connection ended before the bench closed it
        self.closing = False

    def _frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x1 and payload.startswith(b'{"id":'):
            self.ids.append(int(payload[6 : payload.index(b",", 6)]))
            if self.timed:
                at = payload.find(b'"timestamp":"')
                stamp = payload[at + 13 : payload.index(b'"', at + 13)].decode()
                self._latencies.append(now - datetime.fromisoformat(stamp).timestamp())
            return
        super()._frame(opcode, payload, now)  # auth_ok, pings, a close frame

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.lost = repr(exc) if exc else "closed by the server"


async def _ws_clients_main(url: str, tokens: list[str], count: int, conn: Connection) -> None:
    parsed = urlsplit(url)
    assert parsed.hostname is not None and parsed.port is not None
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    clients: list[EventReader] = []
    for n in range(count):
        ready = asyncio.Event()
        target = f"{parsed.path}?token={tokens[n % len(tokens)]}"
        _, client = await loop.create_connection(
            lambda ready=ready, target=target: EventReader(  # type: ignore[misc]
                parsed.netloc, target, ready, latencies
            ),
            parsed.hostname,
            parsed.port,
        )
        client.timed = n < LATENCY_SAMPLE_CLIENTS
        await asyncio.wait_for(ready.wait(), 30)
        clients.append(client)
    conn.send("connected")
    await loop.run_in_executor(None, conn.recv)  # "stop"
    await asyncio.sleep(1.0)  # the last events in flight
    for client in clients:
        client.closing = True
        if client.transport is not None:
            client.transport.close()
    conn.send(
        {
            "ids": [client.ids.tolist() for client in clients],
            "lost": [client.lost or f"close {client.closed}" for client in clients if client.lost],
            "latencies": latencies,
            "cpu": time.process_time(),
        }
    )


def as_load_generator(sched: str) -> None:
    """More sockets than the default limit, and the CPU after the daemon, Asterisk and sipp:
    on a small machine the generators compete with what they measure. SCHED_IDLE runs them
    only on CPU nothing else wants; niceness 10 still takes a share (~10% of a busy core)."""
    raise_fd_limit()
    if sched == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    elif sched == "nice":
        os.nice(10)


def ws_clients_process(
    url: str, tokens: list[str], count: int, sched: str, conn: Connection
) -> None:
    as_load_generator(sched)
    asyncio.run(_ws_clients_main(url, tokens, count, conn))


# ---- child process 2: API clients ------------------------------------------------------------


@dataclass
class ApiTally:
    statuses: Counter[str]  # "path status"
    exceptions: Counter[str]
    latencies: dict[str, list[float]]

    def record(self, path: str, status: int, seconds: float) -> None:
        self.statuses[f"{path.split('?')[0]} {status}"] += 1
        self.latencies.setdefault(path.split("?")[0], []).append(seconds * 1000)


async def wallboard(
    session: aiohttp.ClientSession, base: str, token: str, poll: float, tally: ApiTally
) -> None:
    """One wallboard: every `poll` seconds, each of WALLBOARD_PATHS in turn."""
    headers = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    await asyncio.sleep(random.uniform(0, poll))  # wallboards do not refresh in step
    next_at = loop.time()
    while True:
        for path in WALLBOARD_PATHS:
            began = time.perf_counter()
            try:
                async with session.get(base + path, headers=headers) as response:
                    await response.read()
                    tally.record(path, response.status, time.perf_counter() - began)
            except (aiohttp.ClientError, TimeoutError) as error:
                tally.exceptions[f"{path.split('?')[0]} {type(error).__name__}"] += 1
        next_at += poll
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def eager_client(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    tally: ApiTally,
    no_retry_after: list[int],
) -> None:
    """Polls far above the dashboard limit; every 429 must say when to come back."""
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        began = time.perf_counter()
        try:
            async with session.get(base + EAGER_PATH, headers=headers) as response:
                await response.read()
                tally.record(EAGER_PATH, response.status, time.perf_counter() - began)
                if response.status == 429 and not response.headers.get("Retry-After", "").isdigit():
                    no_retry_after[0] += 1
        except (aiohttp.ClientError, TimeoutError) as error:
            tally.exceptions[f"{EAGER_PATH} {type(error).__name__}"] += 1
        await asyncio.sleep(EAGER_INTERVAL)


async def _api_clients_main(
    base: str, tokens: list[str], eager_tokens: list[str], poll: float, conn: Connection
) -> None:
    loop = asyncio.get_running_loop()
    good = ApiTally(Counter(), Counter(), {})
    eager = ApiTally(Counter(), Counter(), {})
    no_retry_after = [0]
    connector = aiohttp.TCPConnector(limit=0)  # a connection per wallboard, as browsers
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(wallboard(session, base, t, poll, good)) for t in tokens]
        tasks += [
            asyncio.create_task(eager_client(session, base, t, eager, no_retry_after))
            for t in eager_tokens
        ]
        conn.send("started")
        began = loop.time()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        polled = loop.time() - began
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(  # plain data: the parent cannot unpickle this process's __mp_main__ classes
        {
            "good": vars(good),
            "eager": vars(eager),
            "no_retry_after": no_retry_after[0],
            "seconds": polled,
            "cpu": time.process_time(),
        }
    )


def api_clients_process(
    base: str,
    tokens: list[str],
    eager_tokens: list[str],
    poll: float,
    sched: str,
    conn: Connection,
) -> None:
    as_load_generator(sched)
    asyncio.run(_api_clients_main(base, tokens, eager_tokens, poll, conn))


class Child:
    """A load generator in its own process, driven over a pipe."""

    def __init__(self, target: Any, *args: Any) -> None:
        self.parent, child = mp.Pipe()
        self.process = mp.get_context("spawn").Process(target=target, args=(*args, child))

    async def start(self, expect: str, within: float = 120.0) -> None:
        self.process.start()
        answer = await asyncio.wait_for(asyncio.to_thread(self.parent.recv), within)
        if answer != expect:
            raise RuntimeError(f"load generator: {answer!r}")

    async def stop(self) -> Any:
        self.parent.send("stop")
        outcome = await asyncio.wait_for(asyncio.to_thread(self.parent.recv), 120)
        await asyncio.to_thread(self.process.join, 30)
        return outcome

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()


# ---- the bench -------------------------------------------------------------------------------


@dataclass
class Load:
    api: dict[str, Any]
    ws: dict[str, Any]
    events_counted: float  # the daemon's callcenterd_events_total over the clients' time
    seconds: float


class LoadBench(Bench):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.rate_limits = False
        self.children: list[Child] = []
        self.failed_targets = True  # until a report says otherwise
        # phase -> the daemon's own histograms over it (HISTOGRAMS): bucket bound -> count
        self.histograms: dict[str, dict[str, dict[float, float]]] = {}

    def daemon_env(self, sandbox: AsteriskSandbox, state: str, port: int) -> dict[str, str]:
        env = super().daemon_env(sandbox, state, port)
        env["CALLCENTERD_LOG_LEVEL"] = self.args.log_level
        env["CALLCENTERD_RATE_LIMITS_ENABLED"] = "true" if self.rate_limits else "false"
        return env

    # ---- users -------------------------------------------------------------------------------

    async def create_users(self) -> tuple[list[str], list[str], list[str]]:
        """(wallboard tokens, over-eager tokens, WebSocket tokens): one user each, logged in."""
        group = await self.api(
            "POST", "/api/admin/groups", {"name": "Floor", "description": "load"}, status=201
        )
        operators = await self.api("GET", "/api/admin/users?role=operator&limit=1000")
        for user in operators:  # the supervisors' group: every operator of the queue
            await self.api("PUT", f"/api/admin/users/{user['id']}", {"group_id": group["id"]})
        wallboards = [
            await self.user(f"wall{n}", "supervisor" if n % 2 else "manager", group["id"])
            for n in range(self.args.api_clients)
        ]
        eager = [
            await self.user(f"eager{n}", "supervisor", group["id"])
            for n in range(self.args.eager_clients)
        ]
        managers = [t for n, t in enumerate(wallboards) if n % 2 == 0] or [
            await self.user("wsmanager", "manager", group["id"])
        ]
        return wallboards, eager, managers

    async def user(self, username: str, role: str, group_id: str) -> str:
        body = {
            "username": username,
            "email": f"{username}@example.com",
            "name": f"Load {username}",
            "password": USER_PASSWORD,
            "role": role,
            "group_id": group_id if role == "supervisor" else None,
        }
        await self.api("POST", "/api/admin/users", body, status=201)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.base}/api/auth/login",
                json={"username": username, "password": USER_PASSWORD},
            ) as response,
        ):
            return str((await response.json())["access_token"])

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as session, session.get(f"{self.base}/metrics") as r:
            return await r.text()

    async def events_total(self) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in (await self.metrics()).splitlines()
            if line.startswith("callcenterd_events_total{")
        )

    # ---- phases ------------------------------------------------------------------------------

    async def measured(self, name: str, sandbox: AsteriskSandbox) -> tuple[Phase, float]:
        """A phase of calls and the daemon's CPU seconds over it."""
        assert self.daemon is not None
        pid = self.daemon.pid
        before, metrics_before = cpu_seconds(pid), await self.metrics()
        phase = await self.run_phase(name, sandbox)
        if self.daemon.returncode is not None:
            raise RuntimeError(f"daemon exited during {name}:\n{self.daemon_log_tail()}")
        self.histograms[name] = {
            metric: histogram_delta(metrics_before, await self.metrics(), metric)
            for metric in HISTOGRAMS
        }
        return phase, cpu_seconds(pid) - before

    async def loaded(
        self, sandbox: AsteriskSandbox, tokens: tuple[list[str], list[str], list[str]]
    ) -> tuple[Phase, float, Load]:
        wallboards, eager, managers = tokens
        args = self.args
        ws_url = self.base.replace("http://", "ws://") + "/ws/events"
        counted_from = await self.events_total()
        ws = Child(ws_clients_process, ws_url, managers, args.ws_clients, args.client_sched)
        api = Child(
            api_clients_process, self.base, wallboards, eager, args.poll_seconds, args.client_sched
        )
        self.children = [ws, api]
        began = time.monotonic()
        await ws.start("connected")
        print(
            f"# {args.ws_clients} WebSocket clients connected in {time.monotonic() - began:.1f} s"
        )
        await api.start("started")
        await asyncio.sleep(args.poll_seconds + 1)  # every wallboard polling
        profiler = await self.profiler()
        phase, cpu = await self.measured("loaded", sandbox)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            await profiler.wait()
        api_outcome = await api.stop()
        ws_outcome = await ws.stop()
        seconds = time.monotonic() - began
        counted = await self.events_total() - counted_from
        return phase, cpu, Load(api_outcome, ws_outcome, counted, seconds)

    async def profiler(self) -> asyncio.subprocess.Process | None:
        """`--profile FILE`: py-spy samples the daemon over the loaded phase (collapsed
        stacks, without pausing it), to find what the load costs."""
        if self.args.profile is None or self.daemon is None:
            return None
        return await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(self.args.profile),
            "--pid",
            str(self.daemon.pid),
            stdout=asyncio.subprocess.DEVNULL,
        )

    # ---- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        args = self.args
        print(
            f"# sandbox Asterisk + sipp on loopback, {os.cpu_count()} cores; {args.calls} calls "
            f"per phase at {args.rate:g} calls/s; {args.phones} phones; loaded: "
            f"{args.api_clients} wallboards polling {len(WALLBOARD_PATHS)} endpoints every "
            f"{args.poll_seconds:g} s, {args.eager_clients} over-eager clients every "
            f"{EAGER_INTERVAL:g} s, {args.ws_clients} WebSocket clients (generators: "
            f"{args.client_sched}); rate limits on, log level {args.log_level}"
        )
        started = time.monotonic()
        sandbox = await self.start_sandbox()
        await self.start_daemon(sandbox)
        await self.configure_daemon()
        tokens = await self.create_users()
        print(f"# sandbox, daemon, users and tokens ready in {time.monotonic() - started:.1f} s")
        await self.stop_daemon(sandbox)
        assert self.state_dir is not None
        if args.prefill:
            database = self.state_dir / "callcenterd.sqlite3"
            took = await asyncio.to_thread(prefill, database, args.prefill)
            print(f"# prefilled {args.prefill} call rows in {took:.1f} s")
        self.rate_limits = True
        await self.start_daemon(sandbox, str(self.state_dir))
        idle, idle_cpu = await self.measured("idle", sandbox)
        loaded, loaded_cpu, load = await self.loaded(sandbox, tokens)
        self.failed_targets = report(args, (idle, idle_cpu), (loaded, loaded_cpu), load)
        for metric in HISTOGRAMS:
            figures = [
                f"{phase} p50 {bucket_quantile(h[metric], 0.5)} ms, "
                f"p99 {bucket_quantile(h[metric], 0.99)} ms"
                for phase, h in self.histograms.items()
            ]
            print(f"daemon's {metric.removeprefix('callcenterd_')}: {'; '.join(figures)}")

    async def close(self, keep_logs: bool = False) -> None:
        for child in self.children:
            child.kill()
        await super().close(keep_logs)


def histogram_delta(before: str, after: str, metric: str) -> dict[float, float]:
    """Cumulative bucket counts (upper bound in s -> count) between two /metrics texts."""

    def buckets(text: str) -> dict[float, float]:
        found: dict[float, float] = {}
        for line in text.splitlines():
            if line.startswith(metric + "_bucket{"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                found[float(bound)] = float(line.rsplit(" ", 1)[1])
        return found

    first = buckets(before)
    return {bound: n - first.get(bound, 0.0) for bound, n in buckets(after).items()}


def bucket_quantile(cumulative: dict[float, float], q: float) -> str:
    """The bucket bound under which a share `q` of the samples fell, in ms ("<= x")."""
    total = cumulative.get(float("inf"), 0.0)
    if not total:
        return "n/a"
    for bound in sorted(cumulative):
        if cumulative[bound] >= q * total:
            return f"<= {bound * 1000:g}" if bound != float("inf") else "> top bucket"
    return "n/a"


# ---- the report ------------------------------------------------------------------------------


def latency_row(phase: Phase, cpu: float) -> str:
    lat = phase.latencies_ms or [float("nan")]
    return (
        f"{phase.name:<8} {phase.placed:>6} {phase.failed:>6} {pct(lat, 0.5):8.1f} "
        f"{pct(lat, 0.95):8.1f} {pct(lat, 0.99):8.1f} {max(lat):8.1f} {phase.never_rung:>10} "
        f"{phase.retries:>8} {cpu:9.2f} {phase.seconds:8.1f}"
    )


def ws_figures(ws: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(events published while every client was connected, fewest and most of them received
    by one client, clients missing any, ids no client received), from the bus's ids."""
    per_client: list[list[int]] = ws["ids"]
    if not per_client or not any(per_client):
        return 0, 0, 0, 0, 0
    # Bus ids are consecutive and managers see every event: from the first event the last
    # client to connect received, each client must have every id up to the last one published.
    first = max(ids[0] for ids in per_client if ids)
    last = max(ids[-1] for ids in per_client if ids)
    window = last - first + 1
    seen: set[int] = set()
    counts = []
    for ids in per_client:
        inside = {i for i in ids if i >= first}
        seen |= inside
        counts.append(len(inside))
    missing_clients = sum(1 for c in counts if c < window)
    return window, min(counts), max(counts), missing_clients, window - len(seen)


def report(
    args: argparse.Namespace, idle: tuple[Phase, float], loaded: tuple[Phase, float], load: Load
) -> bool:
    """Print the table; True if a target was missed."""
    print(
        f"{'phase':<8} {'placed':>6} {'failed':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} never rung  retries  daemon CPU s  seconds"
    )
    for phase, cpu in (idle, loaded):
        print(latency_row(phase, cpu))
    idle_p99 = pct(idle[0].latencies_ms or [float("nan")], 0.99)
    loaded_p99 = pct(loaded[0].latencies_ms or [float("nan")], 0.99)
    ratio = loaded_p99 / idle_p99 if idle_p99 else float("inf")
    latency_ok = ratio <= TARGET_RATIO and idle[0].failed == 0 and loaded[0].failed == 0

    good = ApiTally(**load.api["good"])
    eager = ApiTally(**load.api["eager"])
    requests = sum(good.statuses.values())
    errors = Counter({k: v for k, v in good.statuses.items() if not k.endswith((" 200",))})
    errors.update(good.exceptions)
    errors.update(eager.exceptions)
    errors.update(
        {f"eager {k}": v for k, v in eager.statuses.items() if not k.endswith((" 200", " 429"))}
    )
    window, fewest, most, missing_clients, unseen = ws_figures(load.ws)
    lost = load.ws["lost"]
    eager_200 = sum(v for k, v in eager.statuses.items() if k.endswith(" 200"))
    eager_429 = sum(v for k, v in eager.statuses.items() if k.endswith(" 429"))
    limits_ok = eager_429 > 0 and load.api["no_retry_after"] == 0
    limits_ok = limits_ok and not any(k.endswith(" 429") for k in good.statuses)
    ws_ok = not lost and missing_clients == 0 and unseen == 0 and window > 0

    print(
        f"routing p99 loaded / idle: {loaded_p99:.1f} / {idle_p99:.1f} ms = {ratio:.2f}x "
        f"(target <= {TARGET_RATIO}x, no failed call: {'met' if latency_ok else 'NOT met'})"
    )
    polled = load.api["seconds"]
    per_s = requests / polled if polled else 0.0
    # The wallboards start polling within their first period, then keep to it.
    nominal = args.api_clients * len(WALLBOARD_PATHS) / args.poll_seconds
    offered_ok = per_s >= OFFERED_SHARE * nominal
    print(
        f"API: {requests} wallboard requests in {polled:.0f} s ({per_s:.0f}/s, "
        f"{per_s / nominal:.0%} of the nominal {nominal:.0f}/s: "
        f"{'offered' if offered_ok else 'NOT offered'}) from {args.api_clients} clients; "
        f"errors {sum(errors.values())} {dict(sorted(errors.items()))}"
    )
    for path, samples in sorted(good.latencies.items()):
        print(
            f"  {path:<24} {len(samples):>7} requests  p50 {pct(samples, 0.5):7.1f} ms  "
            f"p99 {pct(samples, 0.99):7.1f} ms  max {max(samples):7.1f} ms"
        )
    print(
        f"rate limits: {args.eager_clients} over-eager clients got {eager_200} x 200, "
        f"{eager_429} x 429 ({load.api['no_retry_after']} without Retry-After); wallboards "
        f"got {sum(v for k, v in good.statuses.items() if k.endswith(' 429'))} x 429: "
        f"{'holding' if limits_ok else 'NOT holding'}"
    )
    ws_lat = [x * 1000 for x in load.ws["latencies"]] or [float("nan")]
    print(
        f"WebSocket: {args.ws_clients} clients; {window} events published while all were "
        f"connected (bus ids; {load.events_counted:.0f} counted by the daemon over the "
        f"clients' {load.seconds:.0f} s); received per client min {fewest} max {most}; "
        f"clients missing events {missing_clients}; events no client got {unseen}; "
        f"disconnected {len(lost)} {lost[:3]}"
    )
    print(
        f"  delivery (publish -> received, {LATENCY_SAMPLE_CLIENTS} clients): "
        f"p50 {pct(ws_lat, 0.5):.1f} ms  p99 {pct(ws_lat, 0.99):.1f} ms  max {max(ws_lat):.1f} ms"
    )
    print(
        f"client processes CPU: API {load.api['cpu']:.1f} s, WebSocket {load.ws['cpu']:.1f} s; "
        f"no errors: {'met' if not errors and ws_ok else 'NOT met'}"
    )
    return not (latency_ok and limits_ok and ws_ok and offered_ok and not errors)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per phase")
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second")
    parser.add_argument("--phones", type=int, default=40, help="operator phones 1001..")
    parser.add_argument("--api-clients", type=int, default=200, help="wallboards")
    parser.add_argument("--eager-clients", type=int, default=5, help="polling over the limit")
    parser.add_argument("--ws-clients", type=int, default=1000)
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="wallboard refresh")
    parser.add_argument("--prefill", type=int, default=100_000, help="call rows of history")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    parser.add_argument(
        "--client-sched",
        choices=("idle", "nice", "normal"),
        default="idle",
        help="load generators' CPU: SCHED_IDLE, niceness 10, or as the daemon",
    )
    parser.add_argument("--profile", type=Path, help="py-spy's collapsed stacks of the daemon")
    parser.add_argument("--quick", action="store_true", help="30 calls per phase")
    args = parser.parse_args()
    if args.quick:
        args.calls = 30
    if not 1 <= args.phones <= 99:
        parser.error("--phones: 1 to 99 (extensions 1001..1099)")
    raise_fd_limit()
    bench = LoadBench(args)
    await run_bench(bench)
    return 1 if bench.failed_targets else 0


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main()))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
