"""The daemon's CPU per routed call on the real Asterisk, split by thread (issue 17).

Same set-up as `bench/routing_sandbox.py` (whose `Bench` this extends): one Asterisk sandbox,
sipp operator phones that answer after 150 ms and hang up 1 s later, the daemon as a
subprocess (`callcenterd run`, at its shipped log level, info) linked to it over ARI and AMI
(as deployed: the fallback's AMI link is up too), one queue, and
sipp bulk callers at a fixed rate into that queue. Two phases on the same daemon and Asterisk:

1. calls: N calls at R calls/s, each routed, answered, talked briefly and ended, until every
   channel is gone and the phones rested;
2. idle: as long again with the daemon connected and no calls (its timers, pings, the link).

The daemon's CPU (utime + stime of /proc/<pid>/stat, and of each /proc/<pid>/task/<tid>/stat,
named by its comm, and by its Python thread name where py-spy can read it) is read around both.
Reported: CPU ms per routed call = (calls - idle) / routed calls, by thread; routed calls per
second one core could carry at that cost; and whether every call has a complete record (the
call list through the API: all N completed by an operator; each call's timeline has started,
queued, ringing, answered and ended, and an answered and ended leg), read after both phases.

``--profile`` samples the daemon over the call phase with py-spy (the `bench` extra:
``pip install -e '.[bench]'``; raw collapsed stacks, not pausing the daemon) and prints the
functions with the most own time. Where py-spy cannot attach (no ptrace), the daemon runs
under cProfile instead (main thread only, the whole run, with its overhead in the CPU figures)
and the top entries by tottime are printed when it stops.

    sudo python bench/cost_per_call.py [--calls 200] [--rate 4] [--phones 40] [--profile]
        [--top 25] [--quick]

``--quick`` places 30 calls (a smoke run). Exits 1 if a call has no complete record.

Figures (2 shared cores, 200 calls at 4/s, 2026-12-07; runs on this machine vary by +-25 %,
so compare runs made back to back): before issue 17's call-path work 20.3 ms per routed
call (event loop 16.5, SQLite writer thread 3.6; 49 calls/s per core), after it 15.9 ms
(12.8 and 2.9; 63 calls/s per core). The target is 1.5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benches

from routing_sandbox import Bench, Phase, cpu_seconds, run_bench

from tests.sandbox import AsteriskSandbox

TIMELINE = ("started", "queued", "ringing", "answered", "ended")
PY_SPY = Path(sys.executable).with_name("py-spy")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---- CPU per thread --------------------------------------------------------------------------


def thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (comm, utime + stime in clock ticks) of every thread alive now."""
    found: dict[int, tuple[str, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            comm = (task / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
        fields = stat.rpartition(")")[2].split()
        found[int(task.name)] = (comm, int(fields[11]) + int(fields[12]))
    return found


@dataclass
class CpuWindow:
    """The daemon's CPU over one phase: the process's, and each thread's."""

    seconds: float  # wall clock
    total: float  # CPU seconds, every thread (ended ones too)
    threads: dict[int, tuple[str, float]]  # tid -> (comm, CPU seconds), threads alive at the end

    @property
    def gone(self) -> float:
        """CPU of threads that ended within the window (the process's total keeps it)."""
        return max(0.0, self.total - sum(cpu for _, cpu in self.threads.values()))


class CpuMeter:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._began = time.monotonic()
        self._total = cpu_seconds(pid)
        self._threads = thread_ticks(pid)

    def read(self) -> CpuWindow:
        now = thread_ticks(self.pid)
        threads = {
            tid: (comm, (ticks - self._threads.get(tid, (comm, 0))[1]) / CLOCK_TICKS)
            for tid, (comm, ticks) in now.items()
        }
        return CpuWindow(
            time.monotonic() - self._began, cpu_seconds(self.pid) - self._total, threads
        )


def python_thread_names(pid: int) -> dict[int, str]:
    """tid -> Python thread name, from `py-spy dump --json` ({} without py-spy)."""
    if not PY_SPY.exists():
        return {}
    try:
        dumped = subprocess.run(
            [str(PY_SPY), "dump", "--json", "--nonblocking", "--pid", str(pid)],
            capture_output=True,
            timeout=30,
            check=True,
        )
        traces = json.loads(dumped.stdout)
    except (subprocess.SubprocessError, OSError, ValueError):
        return {}
    return {
        int(t["os_thread_id"]): str(t.get("thread_name") or "?")
        for t in traces
        if t.get("os_thread_id") is not None
    }


def thread_label(pid: int, tid: int, comm: str, names: dict[int, str]) -> str:
    name = names.get(tid)
    kind = "event loop" if tid == pid else name or comm
    return f"{kind} ({comm})" if kind != comm else comm


# ---- profiles --------------------------------------------------------------------------------

# A frame of py-spy's raw format: "function (path/to/file.py:line)".
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def own_time(raw: Path) -> tuple[Counter[str], int]:
    """(samples per leaf frame, samples in all) of py-spy's raw collapsed stacks (its files
    already shortened), line numbers dropped: each function's own time."""
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        match = _FRAME.match(leaf)
        if match:
            leaf = f"{match['function']} ({match['file']})"
        own[leaf] += int(count)
        total += int(count)
    return own, total


def py_spy_attaches() -> str | None:
    """None if py-spy can sample a process of ours here, else why not."""
    if not PY_SPY.exists():
        return "py-spy is not installed (pip install -e '.[bench]')"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        probe = subprocess.run(
            [str(PY_SPY), "dump", "--pid", str(sleeper.pid)], capture_output=True, timeout=30
        )
        if probe.returncode != 0:
            return probe.stderr.decode(errors="replace").strip().splitlines()[-1:][0]
        return None
    finally:
        sleeper.kill()
        sleeper.wait()


# ---- the bench -------------------------------------------------------------------------------


class CostBench(Bench):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.profile_dir = Path(tempfile.mkdtemp(prefix="ccd-bench-cost-"))
        self.cprofile: Path | None = None  # set when the daemon runs under cProfile
        self.sampler: asyncio.subprocess.Process | None = None
        self.incomplete = True  # until the records are checked

    def daemon_env(self, sandbox: AsteriskSandbox, state: str, port: int) -> dict[str, str]:
        env = super().daemon_env(sandbox, state, port)
        env["CALLCENTERD_LOG_LEVEL"] = self.args.log_level
        # As deployed: the AMI link up too (the fallback's), with the events it is sent.
        env["CALLCENTERD_AMI_HOST"] = sandbox.ami_host
        env["CALLCENTERD_AMI_PORT"] = str(sandbox.ami_port)
        env["CALLCENTERD_AMI_USERNAME"] = sandbox.ami_username
        env["CALLCENTERD_AMI_SECRET"] = sandbox.ami_secret
        return env

    def daemon_command(self) -> list[str]:
        command = super().daemon_command()
        if self.cprofile is None:
            return command
        return [command[0], "-m", "cProfile", "-o", str(self.cprofile), *command[1:]]

    async def start_sampler(self) -> None:
        assert self.daemon is not None
        if not self.args.profile or self.cprofile is not None:
            return
        self.sampler = await asyncio.create_subprocess_exec(
            str(PY_SPY),
            "record",
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            str(self.args.sample_rate),
            "--output",
            str(self.profile_dir / "calls.raw"),
            "--pid",
            str(self.daemon.pid),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop_sampler(self) -> None:
        if self.sampler is None:
            return
        self.sampler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
        await self.sampler.wait()
        self.sampler = None

    async def call_phase(self, sandbox: AsteriskSandbox) -> tuple[CpuWindow, Phase]:
        """The calls, until every channel is gone and the phones rested."""
        assert self.daemon is not None
        meter = CpuMeter(self.daemon.pid)
        await self.start_sampler()
        calls = await self.run_phase("calls", sandbox)
        await self.stop_sampler()
        return self.still_running(meter.read(), "calls"), calls

    async def idle_phase(self, seconds: float) -> CpuWindow:
        assert self.daemon is not None
        meter = CpuMeter(self.daemon.pid)
        await asyncio.sleep(seconds)
        return self.still_running(meter.read(), "idle")

    def still_running(self, window: CpuWindow, phase: str) -> CpuWindow:
        if self.daemon is None or self.daemon.returncode is not None:
            raise RuntimeError(f"daemon exited during {phase}:\n{self.daemon_log_tail()}")
        return window

    async def check_records(self) -> tuple[int, list[str]]:
        """(calls answered and ended by an operator, problems found in the records)."""
        page = await self.api("GET", f"/api/calls/?limit={min(1000, self.args.calls + 10)}")
        items = page["items"]
        problems = []
        if page["total"] != self.args.calls:
            problems.append(f"{page['total']} calls recorded, {self.args.calls} placed")
        statuses = Counter(item["status"] for item in items)
        routed = [i for i in items if i["status"] == "completed" and i["operator_id"]]
        if len(routed) != self.args.calls:
            problems.append(f"{len(routed)} completed by an operator; statuses {dict(statuses)}")
        for item in items:
            detail = await self.api("GET", f"/api/calls/{item['id']}")
            kinds = [event["kind"] for event in detail["events"]]
            missing = [kind for kind in TIMELINE if kind not in kinds]
            legs = [leg for leg in detail["legs"] if leg["answered_at"] and leg["ended_at"]]
            if missing or not legs or not detail["end_time"]:
                problems.append(
                    f"call {item['id']}: timeline {kinds}, missing {missing}, "
                    f"{len(legs)} answered and ended legs, end {detail['end_time']}"
                )
        return len(routed), problems

    async def stop_profiled_daemon(self, sandbox: AsteriskSandbox) -> None:
        """cProfile writes its file when the daemon stops (SIGTERM: a graceful stop)."""
        if self.cprofile is not None:
            await self.stop_daemon(sandbox)

    async def run(self) -> None:
        args = self.args
        if args.profile and (why := await asyncio.to_thread(py_spy_attaches)) is not None:
            print(f"# py-spy cannot sample here ({why}): the daemon runs under cProfile")
            self.cprofile = self.profile_dir / "daemon.pstats"
        print(
            f"# sandbox Asterisk + sipp on loopback, {os.cpu_count()} cores; {args.calls} calls "
            f"at {args.rate:g} calls/s into one queue; {args.phones} phones answer after 150 ms "
            f"and hang up 1 s later; daemon log level {args.log_level}"
            + ("; py-spy sampling the call phase" if args.profile and not self.cprofile else "")
            + ("; daemon under cProfile" if self.cprofile else "")
        )
        started = time.monotonic()
        sandbox = await self.start_sandbox()
        await self.start_daemon(sandbox)
        await self.configure_daemon()
        assert self.daemon is not None
        pid = self.daemon.pid
        await asyncio.sleep(2)  # set-up's after-effects (endpoint probes, writes) die down
        print(f"# sandbox, daemon and call center ready in {time.monotonic() - started:.1f} s")
        busy, calls = await self.call_phase(sandbox)
        idle = await self.idle_phase(busy.seconds)
        names = await asyncio.to_thread(python_thread_names, pid)
        routed, problems = await self.check_records()
        self.incomplete = bool(problems)
        report(args, pid, names, busy, idle, calls, routed, problems)
        if args.profile and self.cprofile is None:
            print_py_spy_top(self.profile_dir / "calls.raw", args.top)
        await self.stop_profiled_daemon(sandbox)
        if self.cprofile is not None:
            print_cprofile_top(self.cprofile, args.top)


# ---- the report ------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    pid: int,
    names: dict[int, str],
    busy: CpuWindow,
    idle: CpuWindow,
    calls: Phase,
    routed: int,
    problems: list[str],
) -> None:
    per_call = (busy.total - idle.total) / routed * 1000 if routed else float("nan")
    print(
        f"calls: {calls.placed} placed, {calls.failed} failed, {routed} routed and completed, "
        f"{busy.seconds:.1f} s; idle phase {idle.seconds:.1f} s"
    )
    print(f"{'daemon thread':<36} {'calls CPU s':>11} {'idle CPU s':>10} {'ms per call':>11}")
    by_label: dict[str, list[float]] = {}
    for window, column in ((busy, 0), (idle, 1)):
        for tid, (comm, cpu) in window.threads.items():
            label = thread_label(pid, tid, comm, names)
            by_label.setdefault(label, [0.0, 0.0])[column] += cpu
        by_label.setdefault("threads ended meanwhile", [0.0, 0.0])[column] += window.gone
    rows = sorted(by_label.items(), key=lambda item: item[1][0], reverse=True)
    for label, (in_calls, in_idle) in rows:
        if in_calls or in_idle:
            share = (in_calls - in_idle) / routed * 1000 if routed else float("nan")
            print(f"{label:<36} {in_calls:11.3f} {in_idle:10.3f} {share:11.3f}")
    print(f"{'all':<36} {busy.total:11.3f} {idle.total:10.3f} {per_call:11.3f}")
    per_core = 1000 / per_call if per_call > 0 else float("inf")
    print(
        f"CPU per routed call: {per_call:.2f} ms (target <= 1.5 ms); one core: "
        f"{per_core:.0f} routed calls/s"
    )
    verdict = "complete" if not problems else f"{len(problems)} INCOMPLETE"
    print(f"records: {verdict}")
    for problem in problems[:10]:
        print(f"  {problem}")


def print_py_spy_top(raw: Path, top: int) -> None:
    if not raw.exists():
        print("# py-spy wrote no profile")
        return
    own, total = own_time(raw)
    print(f"py-spy, call phase: {total} samples of non-idle threads; top {top} by own time")
    for frame, samples in own.most_common(top):
        print(f"  {samples / total * 100:5.1f} %  {samples:>6}  {frame}")


def print_cprofile_top(stats_file: Path, top: int) -> None:
    if not stats_file.exists():
        print("# cProfile wrote no profile (the daemon did not stop gracefully)")
        return
    print(f"cProfile, main thread, the whole run: top {top} by tottime")
    pstats.Stats(str(stats_file), stream=sys.stdout).sort_stats("tottime").print_stats(top)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rate", type=float, default=4.0, help="calls per second")
    parser.add_argument("--phones", type=int, default=40, help="operator phones 1001..")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    parser.add_argument("--profile", action="store_true", help="py-spy (or cProfile) the daemon")
    parser.add_argument("--sample-rate", type=int, default=200, help="py-spy samples a second")
    parser.add_argument("--top", type=int, default=25, help="profile entries printed")
    parser.add_argument("--quick", action="store_true", help="30 calls")
    args = parser.parse_args()
    if args.quick:
        args.calls = 30
    if not 1 <= args.phones <= 99:
        parser.error("--phones: 1 to 99 (extensions 1001..1099)")
    bench = CostBench(args)
    await run_bench(bench)
    return 1 if bench.incomplete else 0


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main()))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
