"""Live events to 1,000 WebSocket clients: delivery latency, event-loop lag, memory.

The daemon runs **in this process** (the real app on an aiohttp AppRunner, 127.0.0.1, a
temporary state folder) so the bench can publish on its event bus directly; the clients run
in a **separate process** (multiprocessing), on raw asyncio protocols (see `LoadClient`), so
receiving 50,000 frames/s does not share the daemon's event loop and costs as little as it
can. Each run:

1. connects C clients (admin tokens: they see every event, the most work per event);
2. publishes R events/s for D seconds on the bus (`call_started`-like data plus the wall-clock
   publish time), while a task in the daemon sleeps 10 ms in a loop and records its oversleep
   (the event-loop lag routing would suffer);
3. reports delivery latency (publish -> client receive, p50/p95/p99/max), events delivered vs
   expected, the loop lag (p50/p99/max) and the daemon's RSS before and with the clients.

A baseline run with 1 client gives the ratio. `--compare-designs` also times, without sockets,
the two fan-out designs for N clients: one bus subscription per client (each filtering and
serialising its events) versus the stream's single fan-out (filter once per client, serialise
once per event).

    python bench/ws_fanout.py [--clients 1000] [--rate 50] [--seconds 20] [--compare-designs]
        [--flush-seconds 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenterd import keys
from callcenterd.app import create_app
from callcenterd.domain.users import Role
from callcenterd.events.bus import EventBus
from callcenterd.events.filters import AudienceTracker, Viewer, may_see
from callcenterd.events.stream import EventStream, StreamSettings, frame_of
from callcenterd.logs import configure_logging
from callcenterd.settings import EventsSettings, Settings

ADMIN_PASSWORD = "bench-admin-pw"
LAG_TICK = 0.010


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the clients (child process) ---------------------------------------------------------------
class LoadClient(asyncio.Protocol):
    """A minimal WebSocket client (RFC 6455) on a raw asyncio protocol.

    1,000 aiohttp clients in one process cost ~25 us per received frame in task switches and
    parsing: at 50,000 frames/s the clients, not the daemon, set the latency. This one parses
    frame headers in `data_received` (many frames per TCP read), answers pings, and takes the
    publish time out of each event frame: every frame is still read and timed.
    """

    def __init__(self, host: str, target: str, ready: asyncio.Event, latencies: list[float]):
        self._host, self._target = host, target
        self._ready, self._latencies = ready, latencies
        self._buffer = bytearray()
        self._upgraded = False
        self.received = 0
        self.closed: tuple[int, str] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self._target} HTTP/1.1\r\nHost: {self._host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self._buffer
        buffer += data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            assert buffer.startswith(b"HTTP/1.1 101"), bytes(buffer[:200])
            del buffer[: end + 4]
            self._upgraded = True
        at = 0
        while len(buffer) - at >= 2:
            opcode, size, head = buffer[at] & 0x0F, buffer[at + 1] & 0x7F, 2
            if size == 126:
                if len(buffer) - at < 4:
                    break
                size, head = int.from_bytes(buffer[at + 2 : at + 4], "big"), 4
            elif size == 127:
                if len(buffer) - at < 10:
                    break
                size, head = int.from_bytes(buffer[at + 2 : at + 10], "big"), 10
            if len(buffer) - at < head + size:
                break
            self._frame(opcode, bytes(buffer[at + head : at + head + size]), now)
            at += head + size
        del buffer[:at]

    def _frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x1:
            marker = payload.rfind(b'"sent_at":')
            if marker < 0:  # a control frame: auth_ok
                self._ready.set()
                return
            sent = float(payload[marker + 10 : payload.index(b"}", marker)])
            self._latencies.append(now - sent)
            self.received += 1
        elif opcode == 0x9 and self.transport is not None:  # ping: a masked pong (zero key)
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + bytes(4) + payload)
        elif opcode == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 0
            self.closed = (code, payload[2:].decode(errors="replace"))


async def _clients_main(url: str, token: str, count: int, conn: Connection) -> None:
    parsed = urlsplit(url)
    assert parsed.hostname is not None and parsed.port is not None
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    clients: list[LoadClient] = []
    for _ in range(count):
        ready = asyncio.Event()
        _, client = await loop.create_connection(
            lambda ready=ready: LoadClient(  # type: ignore[misc]
                parsed.netloc, f"{parsed.path}?token={token}", ready, latencies
            ),
            parsed.hostname,
            parsed.port,
        )
        await asyncio.wait_for(ready.wait(), 30)
        clients.append(client)
    conn.send("connected")
    await loop.run_in_executor(None, conn.recv)  # "stop"
    await asyncio.sleep(1.0)  # the last events in flight
    closed = [client.closed for client in clients if client.closed is not None]
    assert not closed, f"{len(closed)} clients closed by the server, e.g. {closed[0]}"
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    received = sum(client.received for client in clients)
    conn.send({"received": received, "latencies": latencies, "cpu": time.process_time()})


def clients_process(url: str, token: str, count: int, conn: Connection) -> None:
    asyncio.run(_clients_main(url, token, count, conn))


# --- the daemon side ---------------------------------------------------------------------------
@dataclass
class RunResult:
    clients: int
    published: int
    received: int
    latencies: list[float]
    lag: list[float]
    rss_before: float
    rss_with: float
    written: list[float]  # publish -> the frame written to every client's socket (server side)
    client_cpu: float  # seconds of CPU the client process used
    seconds: float


async def _login(base: str) -> str:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{base}/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        body = await response.json()
        return str(body["access_token"])


async def _lag_probe(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(LAG_TICK)
        lags.append(time.perf_counter() - started - LAG_TICK)


async def run(clients: int, rate: float, seconds: float, flush_seconds: float) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as state:
        settings = Settings.model_validate(
            {
                "state_dir": state,
                "admin_password": ADMIN_PASSWORD,
                "auth": {"bcrypt_rounds": 4},
                "rate_limits": {"enabled": False},
                "ari": {"url": f"http://127.0.0.1:{free_port()}"},
                "log": {"level": "warning"},
                "events": {"queue_stats_seconds": 0, "flush_seconds": flush_seconds},
            }
        )
        port = free_port()
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            base = f"http://127.0.0.1:{port}"
            token = await _login(base)
            bus = app[keys.SERVICES].bus
            stream = app[keys.SERVICES].events_stream
            written: list[float] = []
            deliver = stream.deliver

            def timed(event: Any) -> None:
                deliver(event)
                sent_at = event.data.get("sent_at")
                if sent_at is not None:
                    written.append(time.time() - sent_at)

            stream.deliver = timed  # type: ignore[method-assign]
            rss_before = rss_mib()
            parent, child = mp.Pipe()
            process = mp.get_context("spawn").Process(
                target=clients_process, args=(f"{base}/ws/events", token, clients, child)
            )
            process.start()
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, parent.recv) == "connected"
            await asyncio.sleep(1.0)
            rss_with = rss_mib()
            stop, lags = asyncio.Event(), list[float]()
            probe = asyncio.create_task(_lag_probe(stop, lags))
            published = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                due = int(elapsed * rate) + 1
                while published < due:
                    published += 1
                    bus.publish(
                        "call_started",
                        {
                            "call_id": str(uuid.uuid4()),
                            "channel_id": f"{time.time():.6f}",
                            "caller_number": "+79001234567",
                            "called_number": "100",
                            "timestamp": datetime.now(UTC).isoformat(),
                            "sent_at": time.time(),
                        },
                    )
                await asyncio.sleep(max(0.0, start + published / rate - time.perf_counter()))
            rss_with = max(rss_with, rss_mib())
            stop.set()
            await probe
            parent.send("stop")
            outcome = await loop.run_in_executor(None, parent.recv)
            process.join(30)
            return RunResult(
                clients,
                published,
                outcome["received"],
                outcome["latencies"],
                lags,
                rss_before,
                rss_with,
                written,
                outcome["cpu"],
                seconds,
            )
        finally:
            await runner.cleanup()


def report(result: RunResult) -> None:
    ms = [x * 1000 for x in result.latencies]
    lag = [x * 1000 for x in result.lag]
    expected = result.published * result.clients
    print(f"--- {result.clients} client(s), {result.published} events published")
    print(
        f"  delivered   {result.received}/{expected}"
        f" ({100 * result.received / max(1, expected):.2f}%)"
    )
    print(
        f"  latency ms  p50 {pct(ms, 50):.2f}  p95 {pct(ms, 95):.2f}  p99 {pct(ms, 99):.2f}"
        f"  max {max(ms, default=float('nan')):.2f}"
    )
    print(
        f"  loop lag ms p50 {pct(lag, 50):.2f}  p99 {pct(lag, 99):.2f}"
        f"  max {max(lag, default=float('nan')):.2f}"
    )
    done = [x * 1000 for x in result.written]
    print(
        f"  written ms  p50 {pct(done, 50):.2f}  p95 {pct(done, 95):.2f}  p99 {pct(done, 99):.2f}"
        f"  max {max(done, default=float('nan')):.2f}  (publish -> on every socket, server side)"
    )
    print(f"  client process CPU {result.client_cpu / result.seconds * 100:.0f}% of one core")
    print(
        f"  daemon RSS  {result.rss_before:.1f} MiB before, {result.rss_with:.1f} MiB with clients"
    )


# --- the two designs, without sockets ----------------------------------------------------------
async def compare_designs(clients: int, events: int) -> None:
    def clock() -> datetime:
        return datetime.now(UTC)

    viewer = Viewer("u", Role.SUPERVISOR, group_id="g1")
    groups = {"op-1": "g1"}
    data = {"call_id": "c", "operator_id": "op-1", "caller_number": "+79001234567"}

    def tracker() -> AudienceTracker:
        return AudienceTracker(groups.get, lambda q: [], lambda c: None)

    # (a) one bus subscription per client: each consumer filters and serialises every event.
    bus = EventBus(clock)
    sent = [0]

    async def consumer(sub: Any, own: AudienceTracker) -> None:
        async for event in sub:
            if may_see(viewer, own.audience(event.type, event.data)):
                frame_of(event.as_json())
                sent[0] += 1

    subs = [bus.subscribe(events + 10) for _ in range(clients)]
    tasks = [asyncio.create_task(consumer(s, tracker())) for s in subs]
    await asyncio.sleep(0)
    started = time.process_time()
    for _ in range(events):
        bus.publish("call_ringing", data)
    while sent[0] < clients * events:  # noqa: ASYNC110 - yields to the consumers, not a wait
        await asyncio.sleep(0)
    per_client_design = (time.process_time() - started) / events
    for task in tasks:
        task.cancel()

    # (b) one fan-out: audience and frame once per event, a filter check per client.
    bus = EventBus(clock)

    async def none(user_id: str) -> str | None:
        return None

    # No flush window: this times the CPU per event, and the loop below waits 50 ms at most.
    settings = StreamSettings(client_queue_size=events + 10, flush_seconds=0)
    stream = EventStream(bus, tracker(), settings, none)
    attached = [stream.attach(viewer) for _ in range(clients)]

    async def writer(client: Any) -> None:
        while True:
            await client.ready.wait()
            client.take()

    tasks = [asyncio.create_task(writer(c)) for c in attached]
    stream.start()
    await asyncio.sleep(0)
    started = time.process_time()
    for _ in range(events):
        bus.publish("call_ringing", data)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    fan_out_design = (time.process_time() - started) / events
    await stream.stop()
    for task in tasks:
        task.cancel()
    print(f"--- designs, {clients} clients, CPU per published event (no sockets)")
    print(f"  one bus subscription per client: {per_client_design * 1000:.2f} ms")
    print(f"  one fan-out (this stream):       {fan_out_design * 1000:.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--compare-designs", action="store_true")
    parser.add_argument(
        "--flush-seconds",
        type=float,
        default=EventsSettings().flush_seconds,
        help="events.flush_seconds: events this close together go out in one write",
    )
    args = parser.parse_args()
    configure_logging("console", "warning")
    print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}, clients in a child process")
    if args.compare_designs:
        await compare_designs(args.clients, 200)
    print(f"events.flush_seconds {args.flush_seconds:g} (delivery waits up to that long)")
    baseline = await run(1, args.rate, args.seconds, args.flush_seconds)
    report(baseline)
    loaded = await run(args.clients, args.rate, args.seconds, args.flush_seconds)
    report(loaded)
    base_p99 = pct(baseline.latencies, 99)
    print(
        f"--- ratio {args.clients} clients / 1 client: latency p50 "
        f"{pct(loaded.latencies, 50) / max(1e-9, pct(baseline.latencies, 50)):.1f}x,"
        f" p99 {pct(loaded.latencies, 99) / max(1e-9, base_p99):.1f}x;"
        f" RSS +{loaded.rss_with - loaded.rss_before:.1f} MiB"
        f" ({(loaded.rss_with - loaded.rss_before) * 1024 / args.clients:.0f} KiB/client)"
    )
    print(f"  mean loop lag {statistics.fmean(loaded.lag) * 1000:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
