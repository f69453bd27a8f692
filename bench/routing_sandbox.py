"""Time to ring an operator on the real Asterisk: callcenterd against Asterisk's own Queue().

Provisions and starts one Asterisk sandbox (needs root) with sipp operator phones that answer
after 150 ms and hang up 1 s later, runs the daemon as a subprocess, creates the operators and
a queue over its REST API, then places sipp bulk calls at a fixed rate into that queue's
number (each caller hangs up 1.5 s after the answer, unless the phone hung up first):

1. callcenterd: the dialplan's Stasis() hands every call to the daemon, which rings a phone;
2. app_queue: the daemon is stopped (SIGTERM, until its Stasis app is gone from ARI), so the
   same dialplan falls back to Queue() on the same number, queue and phones.

For each call it measures the time from the caller's INVITE to the first INVITE an operator
phone received for it (p50/p95/max), counts failed calls, and reads the daemon's CPU time
(utime + stime of /proc/<pid>/stat) around phase 1. Every caller of a run has the same number
(the harness's bulk caller sets one), so calls are matched to rings in order: each ring goes
to the earliest caller still waiting whose INVITE went out before it. Both routers serve the
queue first in, first out, and a phone that does not answer leaves its caller waiting (a retry
is not a first ring).

The queue template of the shipped queues.conf has ``wrapuptime=5``: app_queue rests a phone 5 s
after each call. At 5 calls/s with ~1.2 s calls about 31 phones are busy or resting at any
time, so the default is 40 phones (the sandbox's queues list exactly these phones), and the
daemon's queue gets the same strategy (rrmemory), ring timeout (15 s) and wrap-up (5 s): both
routers always find an idle phone, and the figure is routing latency, not time in line.

    sudo python bench/routing_sandbox.py [--calls 100] [--rate 5] [--phones 40] [--quick]

``--quick`` places 20 calls per phase (a smoke run, about 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, from a checkout

from tests.sandbox import (
    AsteriskSandbox,
    BulkCallResult,
    Callers,
    OperatorPhone,
    OperatorPhones,
    PhoneBehaviour,
    ProvisioningError,
    ReceivedCall,
    SandboxSettings,
)

QUEUE = "q1"  # a sandbox queue whose number no test relies on here
CALLER_NUMBER = "5550200"
ANSWER_MS = 150
PHONE_HANGS_UP_AFTER_MS = 1000
CALLER_HANGS_UP_AFTER_MS = 1500
# As the [callcenterd-queue] template of etc/asterisk/queues.conf, so both routers match.
STRATEGY = "rrmemory"
RING_TIMEOUT = 15
WRAPUP_SECONDS = 5
ADMIN_PASSWORD = "bench-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After "pid (comm)": state is field 3, utime 14 and stime 15 -> indexes 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Phase:
    name: str
    requested: int
    placed: int
    sipp_exit: int
    sipp_failed: int  # sipp's FailedCall(C) counter
    unanswered: int  # callers whose INVITE got no 200 OK
    latencies_ms: list[float]
    never_rung: int  # callers no phone received an INVITE for
    retries: int  # rings after a first ring that was not answered
    wrong_caller_id: int  # rings whose From user is not the caller's number
    seconds: float

    @property
    def failed(self) -> int:
        # Calls sipp never placed fail; so do callers answered (the daemon answers to play hold
        # music) who hung up before any phone rang: the call never reached an operator.
        missing = self.requested - self.placed
        return max(self.sipp_failed, self.unanswered + missing, self.never_rung + missing)


def sipp_failed_calls(stats_file: Path) -> int:
    """The last FailedCall(C) of sipp's -trace_stat CSV (';'-separated, one row per period)."""
    if not stats_file.exists():
        return -1
    rows = list(csv.DictReader(stats_file.read_text().splitlines(), delimiter=";"))
    return int(rows[-1]["FailedCall(C)"]) if rows else -1


def sipp_error(logs_stem: Path) -> str:
    """The last line sipp wrote to stderr (the harness keeps it in <name>.out)."""
    output = logs_stem.with_name(logs_stem.name + ".out")
    lines = output.read_text(errors="replace").splitlines() if output.exists() else []
    return lines[-1].strip() if lines else "(no output)"


def match_first_rings(
    invites: list[datetime], rings: list[ReceivedCall]
) -> tuple[list[float], int, int]:
    """(first-ring latencies in ms, callers never rung, retry rings), matching in order."""
    waiting = sorted(invites)
    latencies: list[float] = []
    retries = 0
    rung_once: set[int] = set()
    head = 0  # callers before `head` were answered by a phone
    for ring in sorted(rings, key=lambda r: r.invited_at):
        if head >= len(waiting) or waiting[head] > ring.invited_at:
            retries += 1  # nobody waiting sent an INVITE before this ring: not a first ring
            continue
        if head in rung_once:
            retries += 1
        else:
            rung_once.add(head)
            latencies.append((ring.invited_at - waiting[head]).total_seconds() * 1000)
        if ring.answered:
            head += 1
    return latencies, len(waiting) - len(rung_once), retries


async def ready_and_logged_in(
    base: str, alive: Callable[[], bool], diagnosis: Callable[[], str], within: float = 30.0
) -> dict[str, str]:
    """Wait until the daemon at `base` has ARI connected, then log in as admin: the headers."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError(f"daemon not ready (ARI not connected); {diagnosis()}")
            try:
                async with session.get(f"{base}/readyz") as response:
                    if (await response.json()).get("ari", {}).get("state") == "connected":
                        break
            except (aiohttp.ClientError, ValueError):
                pass
            await asyncio.sleep(0.1)
        credentials = {"username": "admin", "password": ADMIN_PASSWORD}
        async with session.post(f"{base}/api/auth/login", json=credentials) as response:
            token = (await response.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.extensions = [str(1001 + i) for i in range(args.phones)]
        self.sandbox: AsteriskSandbox | None = None
        self.phones: OperatorPhones | None = None
        self.phone_list: list[OperatorPhone] = []
        self.callers: Callers | None = None
        self.daemon: asyncio.subprocess.Process | None = None
        self.daemon_log: Path | None = None
        self.state_dir: Path | None = None
        self.base = ""
        self.headers: dict[str, str] = {}

    # ---- setup ------------------------------------------------------------------------------

    async def start_sandbox(self) -> AsteriskSandbox:
        settings = SandboxSettings(operator_extensions=tuple(self.extensions))
        sandbox = await asyncio.to_thread(AsteriskSandbox.provision, settings)
        self.sandbox = sandbox
        await asyncio.to_thread(sandbox.start)
        log_dir = sandbox.run_dir / "tests" / "bench-routing"
        self.phones = OperatorPhones(sandbox, log_dir)
        self.callers = Callers(sandbox, log_dir)
        behaviour = PhoneBehaviour.answer(ANSWER_MS, hang_up_after_ms=PHONE_HANGS_UP_AFTER_MS)
        started = await self.phones.start({ext: behaviour for ext in self.extensions})
        self.phone_list = list(started.values())
        return sandbox

    def daemon_env(self, sandbox: AsteriskSandbox, state: str, port: int) -> dict[str, str]:
        """The daemon's configuration (a subclass may change it, e.g. turn rate limits on)."""
        return {
            **os.environ,
            "CALLCENTERD_STATE_DIR": state,
            "CALLCENTERD_HTTP_PORT": str(port),
            "CALLCENTERD_ARI_URL": sandbox.http_url,
            "CALLCENTERD_ARI_USERNAME": sandbox.ari_username,
            "CALLCENTERD_ARI_PASSWORD": sandbox.ari_password,
            "CALLCENTERD_ARI_APP": sandbox.ari_app,
            "CALLCENTERD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CALLCENTERD_AUTH_BCRYPT_ROUNDS": "4",  # operators are created by the dozen
            "CALLCENTERD_RATE_LIMITS_ENABLED": "false",
            "CALLCENTERD_LOG_LEVEL": "warning",
        }

    def daemon_command(self) -> list[str]:
        """How the daemon is started (a subclass may wrap it, e.g. in a profiler)."""
        return [sys.executable, "-m", "callcenterd", "run"]

    async def start_daemon(self, sandbox: AsteriskSandbox, state: str | None = None) -> None:
        """Start the daemon on `state` (a new temporary folder if None) and log in as admin."""
        port = free_port()
        state = state or tempfile.mkdtemp(prefix="ccd-bench-routing-")
        env = self.daemon_env(sandbox, state, port)
        self.state_dir = Path(state)
        self.daemon_log = Path(state) / "daemon.log"
        with self.daemon_log.open("ab") as output:
            self.daemon = await asyncio.create_subprocess_exec(
                *self.daemon_command(),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
            )
        self.base = f"http://127.0.0.1:{port}"
        daemon = self.daemon
        self.headers = await ready_and_logged_in(
            self.base, lambda: daemon.returncode is None, lambda: self.daemon_log_tail()
        )

    def daemon_log_tail(self, lines: int = 30) -> str:
        if self.daemon_log is None or not self.daemon_log.exists():
            return "(no log)"
        return "\n".join(self.daemon_log.read_text(errors="replace").splitlines()[-lines:])

    async def api(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async with (
            aiohttp.ClientSession(headers=self.headers) as session,
            session.request(method, f"{self.base}{path}", json=body) as response,
        ):
            text = await response.text()
            if response.status != status:
                raise RuntimeError(f"{method} {path}: {response.status} {text}")
            return await response.json()

    async def configure_daemon(self) -> None:
        for ext in self.extensions:
            user = await self.api(
                "POST",
                "/api/admin/users",
                {
                    "username": f"op{ext}",
                    "email": f"op{ext}@example.com",
                    "name": f"Operator {ext}",
                    "password": "secret-pw",
                    "role": "operator",
                    "extension": ext,
                },
                status=201,
            )
            operator = await self.api("GET", f"/api/admin/users/{user['id']}/operator")
            await self.api("PUT", f"/api/operators/{operator['id']}/status", {"status": "online"})
        await self.api(
            "POST",
            "/api/queues/",
            {
                "name": QUEUE.title(),
                "description": "routing benchmark",
                "asterisk_name": QUEUE,
                "max_wait_time": 60,
                "priority": 1,
                "strategy": STRATEGY,
                "ring_timeout": RING_TIMEOUT,
                "wrapup_seconds": WRAPUP_SECONDS,
                "members": self.extensions,
            },
            status=201,
        )

    async def stop_daemon(self, sandbox: AsteriskSandbox) -> None:
        """SIGTERM, then wait until Asterisk no longer lists the Stasis app."""
        if self.daemon is None:
            return
        if self.daemon.returncode is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.daemon.wait(), 20)
            except TimeoutError:
                self.daemon.kill()
                await self.daemon.wait()
        self.daemon = None
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

    # ---- phases -----------------------------------------------------------------------------

    async def settle(self, sandbox: AsteriskSandbox, within: float = 60.0) -> None:
        """Wait until every call is over and the phones rest (app_queue's wrap-up included)."""
        deadline = time.monotonic() + within
        while await asyncio.to_thread(sandbox.active_channel_count) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError("channels still up:\n" + sandbox.cli("core show channels"))
            await asyncio.sleep(0.2)
        await asyncio.sleep(WRAPUP_SECONDS + 1)

    def rings_since(self, since: datetime) -> list[ReceivedCall]:
        return [
            call for phone in self.phone_list for call in phone.calls() if call.invited_at >= since
        ]

    async def run_phase(self, name: str, sandbox: AsteriskSandbox) -> Phase:
        assert self.callers is not None
        began = time.monotonic()
        since = datetime.now().astimezone()
        for attempt in range(3):
            result: BulkCallResult = await self.callers.bulk(
                sandbox.queue_number(QUEUE),
                calls_per_second=self.args.rate,
                total_calls=self.args.calls,
                caller_number=CALLER_NUMBER,
                hang_up_after_ms=CALLER_HANGS_UP_AFTER_MS,
                within=self.args.calls / self.args.rate + 120,
            )
            # sipp's -2 (254): "fatal error binding a socket", before any call; with no -p it
            # races other sipps on this host for 5060 and up, and for its media port.
            if result.exit_code != 254 or result.calls or attempt == 2:
                break
            output = result.stats_file.with_name(result.stats_file.name[: -len(".stats.csv")])
            print(f"# {name}: sipp could not bind a socket, again: {sipp_error(output)}")
            await asyncio.sleep(1)
        seconds = time.monotonic() - began
        await self.settle(sandbox)
        invites = [c.invite_sent_at for c in result.calls if c.invite_sent_at is not None]
        rings = self.rings_since(since)
        latencies, never_rung, retries = match_first_rings(invites, rings)
        return Phase(
            name=name,
            requested=self.args.calls,
            placed=len(result.calls),
            sipp_exit=result.exit_code,
            sipp_failed=sipp_failed_calls(result.stats_file),
            unanswered=sum(not c.answered for c in result.calls),
            latencies_ms=latencies,
            never_rung=never_rung,
            retries=retries,
            wrong_caller_id=sum(r.caller_number != CALLER_NUMBER for r in rings),
            seconds=seconds,
        )

    async def recorded_calls(self) -> tuple[int, Counter[str]]:
        page = await self.api("GET", f"/api/calls/?limit={min(1000, self.args.calls)}")
        return page["total"], Counter(item["status"] for item in page["items"])

    async def app_queue_members(self, sandbox: AsteriskSandbox) -> str:
        text = await sandbox.cli_async(f"queue show {QUEUE}")
        idle = text.count("(Not in use)")
        return f"{idle} of {len(self.extensions)} members not in use"

    # ---- the run ----------------------------------------------------------------------------

    async def run(self) -> None:
        args = self.args
        cores = os.cpu_count()
        print(
            f"# sandbox Asterisk + sipp on loopback, {cores} cores; {args.calls} calls per phase "
            f"at {args.rate:g} calls/s into queue {QUEUE}; {args.phones} phones answer after "
            f"{ANSWER_MS} ms, hang up {PHONE_HANGS_UP_AFTER_MS} ms later; "
            f"{STRATEGY}, wrap-up {WRAPUP_SECONDS} s on both"
        )
        started = time.monotonic()
        sandbox = await self.start_sandbox()
        print(f"# sandbox and {args.phones} phones up in {time.monotonic() - started:.1f} s")
        await self.start_daemon(sandbox)
        assert self.daemon is not None
        await self.configure_daemon()
        pid = self.daemon.pid
        cpu_before = cpu_seconds(pid)
        daemon_phase = await self.run_phase("callcenterd", sandbox)
        if self.daemon.returncode is not None:
            raise RuntimeError(f"daemon exited during phase 1:\n{self.daemon_log_tail()}")
        cpu_used = cpu_seconds(pid) - cpu_before
        recorded, statuses = await self.recorded_calls()
        await self.stop_daemon(sandbox)
        members = await self.app_queue_members(sandbox)
        queue_phase = await self.run_phase("app_queue", sandbox)
        summary = (await sandbox.cli_async(f"queue show {QUEUE}")).splitlines()[0].strip()

        print(f"# app_queue before phase 2: {members}; after: {summary}")
        print(
            f"{'router':<12} {'placed':>6} {'failed':>6} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'max ms':>8} {'min ms':>8}  never rung  retries  wrong caller id  sipp exit  seconds"
        )
        for phase in (daemon_phase, queue_phase):
            lat = phase.latencies_ms or [float("nan")]
            print(
                f"{phase.name:<12} {phase.placed:>6} {phase.failed:>6} {pct(lat, 0.5):8.1f} "
                f"{pct(lat, 0.95):8.1f} {max(lat):8.1f} {min(lat):8.1f}  "
                f"{phase.never_rung:>10} {phase.retries:>8} {phase.wrong_caller_id:>16} "
                f"{phase.sipp_exit:>10} {phase.seconds:8.1f}"
            )
        ratio = pct(queue_phase.latencies_ms or [0.0], 0.5) / max(
            pct(daemon_phase.latencies_ms or [0.0], 0.5), 1e-9
        )
        routed = statuses.get("completed", 0) + statuses.get("answered", 0)
        per_call = cpu_used / routed if routed else float("nan")
        target = "met" if ratio >= 20 and daemon_phase.failed == 0 else "NOT met"
        print(
            f"app_queue p50 / callcenterd p50: {ratio:.1f}x (target >= 20x, zero failed: {target})"
        )
        print(
            f"callcenterd CPU: {cpu_used:.2f} s over phase 1 ({daemon_phase.seconds:.1f} s), "
            f"{per_call * 1000:.1f} ms per routed call"
        )
        print(
            f"calls recorded by callcenterd: {recorded} of {daemon_phase.placed} placed; "
            f"statuses {dict(sorted(statuses.items()))}"
        )

    async def close(self, keep_logs: bool = False) -> None:
        if self.daemon is not None and self.daemon.returncode is None:
            self.daemon.kill()
            await self.daemon.wait()
        if self.callers is not None:
            await self.callers.stop_all()
        if self.phones is not None:
            await self.phones.stop_all()
        if self.sandbox is not None:
            await asyncio.to_thread(self.sandbox.close, keep_logs)
            if keep_logs:
                print(f"# sandbox logs kept in {self.sandbox.run_dir}", file=sys.stderr)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per phase")
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second")
    parser.add_argument("--phones", type=int, default=40, help="operator phones 1001..")
    parser.add_argument("--quick", action="store_true", help="20 calls per phase")
    args = parser.parse_args()
    if args.quick:
        args.calls = 20
    if not 1 <= args.phones <= 99:
        parser.error("--phones: 1 to 99 (extensions 1001..1099)")
    await run_bench(Bench(args))


async def run_bench(bench: Bench) -> None:
    """Run a bench, always cleaning up; the sandbox's logs are kept when it failed."""
    failed = True
    try:
        await bench.run()
        failed = False
    except ProvisioningError as error:
        raise SystemExit(f"sandbox unavailable: {error}") from error
    finally:
        await bench.close(keep_logs=failed)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
