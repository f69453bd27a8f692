"""Soak: calls at a steady rate for minutes, one fault a minute, and not one call record lost.

Provisions one Asterisk sandbox (needs root) with sipp operator phones and the daemon as a
subprocess on one state folder (tests/e2e/daemon_process.py), configured like
bench/routing_sandbox.py (its Bench sets up phones, operators and queue q1). Then it places one
sipp caller per call at `--rate` calls/s for `--minutes`, each with its own caller number, so
every call is matched to its record and to the operator INVITE it caused. Half-way through
each minute one fault, in rotation:

1. daemon SIGKILL, then started again on the same state (re-adoption, lost records closed);
2. Asterisk restarted (`core stop now`, start; the app must be back within ~1 s);
3. the ARI WebSocket cut (`ss -K` on Asterisk's HTTP port: every TCP connection to it dies);
4. the daemon stalled: SIGSTOP for 3 s, then SIGCONT.

A call whose INVITE went out while no daemon app was connected (between a fault and the app's
return, 0.5 s of margin either side) is served by the dialplan's Queue() and has no record by
design: counted as "fallback". Every other call must have exactly one record ("lost" otherwise)
and no record may stay `incoming`/`answered` once the calls are over ("stuck"). Routing latency
is the caller's INVITE to the first INVITE an operator phone received with its number, as in
bench/routing_sandbox.py.

    sudo python bench/soak.py [--minutes 3] [--rate 2] [--phones 20] [--quick]

``--quick`` runs one minute (one fault: the daemon kill). Exits 1 if a call was lost or a
record stuck.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench and tests, from a checkout

from bench.routing_sandbox import (
    ANSWER_MS,
    CALLER_HANGS_UP_AFTER_MS,
    PHONE_HANGS_UP_AFTER_MS,
    QUEUE,
    Bench,
    pct,
)
from tests.e2e.daemon_process import (
    OPEN_STATUSES,
    DaemonProcess,
    cut_ari_connections,
    wait_app,
)
from tests.sandbox import AsteriskSandbox, ProvisioningError
from tests.sandbox.callers import CallerCall, CallerOutcome

FAULTS = ("daemon-kill", "asterisk-restart", "ws-cut", "daemon-stall")
STALL_SECONDS = 3.0
WINDOW_MARGIN = timedelta(seconds=0.5)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Fault:
    name: str
    at_s: float  # since the first call
    began: datetime
    app_back: datetime | None = None  # the daemon's app registered again
    note: str = ""

    @property
    def down_window(self) -> tuple[datetime, datetime] | None:
        """When new calls could not reach the daemon (stall: they wait in Stasis instead)."""
        if self.name == "daemon-stall" or self.app_back is None:
            return None
        return self.began - WINDOW_MARGIN, self.app_back + WINDOW_MARGIN


@dataclass
class Placed:
    number: str
    call: CallerCall
    outcome: CallerOutcome | None = None


@dataclass
class Report:
    faults: list[Fault] = field(default_factory=list)
    placed: list[Placed] = field(default_factory=list)


class Soak(Bench):
    """routing_sandbox's Bench (sandbox, phones, REST set-up, settle) with a daemon that is
    killed and restarted on the same state."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.proc: DaemonProcess | None = None
        self.report = Report()
        self.failed_checks = True  # until a report says otherwise

    async def start_daemon(self, sandbox: AsteriskSandbox) -> None:
        if self.proc is None:
            run = sandbox.run_dir / "tests" / "bench-soak"
            self.proc = DaemonProcess(sandbox, run / "state", run / "daemon.log")
            self.daemon_log = self.proc.log_file
        await self.proc.start()
        self.daemon = self.proc.process
        self.base, self.headers = self.proc.base, self.proc.headers

    # ---- faults -------------------------------------------------------------------------

    async def inject(self, name: str, sandbox: AsteriskSandbox, at_s: float) -> Fault:
        assert self.proc is not None and self.phones is not None
        fault = Fault(name, at_s, now())
        if name == "daemon-kill":
            await self.proc.kill()
            await self.start_daemon(sandbox)
        elif name == "asterisk-restart":
            sandbox.restart()  # on this thread: Asterisk dies with the thread that started it
        elif name == "ws-cut":
            fault.note = f"{await cut_ari_connections(sandbox)} connections cut"
        elif name == "daemon-stall":
            self.proc.pause()
            await asyncio.sleep(STALL_SECONDS)
            self.proc.resume()
        await wait_app(sandbox, registered=True, within=30)
        fault.app_back = now()
        if name == "asterisk-restart":
            await self.phones.sync_with_asterisk()
        return fault

    async def faults(self, sandbox: AsteriskSandbox, started: float, minutes: int) -> None:
        for minute in range(minutes):
            at = started + minute * 60 + 30
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            name = FAULTS[minute % len(FAULTS)]
            fault = await self.inject(name, sandbox, time.monotonic() - started)
            self.report.faults.append(fault)
            down = (fault.app_back - fault.began).total_seconds() if fault.app_back else 0
            print(
                f"# {fault.at_s:6.1f} s  {name:<17} app back after {down:5.2f} s  {fault.note}",
                flush=True,
            )

    # ---- calls --------------------------------------------------------------------------

    async def place_calls(self, sandbox: AsteriskSandbox, started: float, total: int) -> None:
        assert self.callers is not None
        for index in range(total):
            await asyncio.sleep(max(0.0, started + index / self.args.rate - time.monotonic()))
            number = f"5559{index:04d}"
            call = await self.callers.dial(
                sandbox.queue_number(QUEUE), number, hang_up_after_ms=CALLER_HANGS_UP_AFTER_MS
            )
            self.report.placed.append(Placed(number, call))

    async def outcomes(self) -> None:
        async def one(placed: Placed) -> None:
            placed.outcome = await placed.call.outcome(within=120)

        await asyncio.gather(*(one(p) for p in self.report.placed))

    async def settled_records(self, within: float = 60.0) -> list[dict[str, Any]]:
        assert self.proc is not None
        deadline = time.monotonic() + within
        while True:
            items = await self.proc.calls(limit=1000)
            if not any(c["status"] in OPEN_STATUSES for c in items):
                return items
            if time.monotonic() > deadline:
                return items  # what is still open is reported as stuck
            await asyncio.sleep(0.5)

    # ---- the run ------------------------------------------------------------------------

    async def run(self) -> None:
        args = self.args
        total = int(args.rate * 60 * args.minutes)
        print(
            f"# soak: {args.minutes} min at {args.rate:g} calls/s ({total} calls) into {QUEUE}; "
            f"{args.phones} phones answer after {ANSWER_MS} ms, hang up "
            f"{PHONE_HANGS_UP_AFTER_MS} ms later; faults each minute at +30 s: "
            f"{', '.join(FAULTS[: args.minutes] if args.minutes < len(FAULTS) else FAULTS)}",
            flush=True,
        )
        sandbox = await self.start_sandbox()
        await self.start_daemon(sandbox)
        await self.configure_daemon()
        started = time.monotonic()
        began = now()
        await asyncio.gather(
            self.place_calls(sandbox, started, total), self.faults(sandbox, started, args.minutes)
        )
        await self.outcomes()
        seconds = time.monotonic() - started
        try:
            await self.settle(sandbox, within=90)
        except RuntimeError as error:
            print(f"# not settled: {error}")
        records = await self.settled_records()
        self.print_report(records, began, seconds, sandbox)

    def print_report(
        self,
        records: list[dict[str, Any]],
        began: datetime,
        seconds: float,
        sandbox: AsteriskSandbox,
    ) -> None:
        placed = [p for p in self.report.placed if p.outcome and p.outcome.invite_sent_at]
        not_placed = len(self.report.placed) - len(placed)
        windows = [w for f in self.report.faults if (w := f.down_window) is not None]
        by_number: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_number.setdefault(record["caller_number"], []).append(record)
        first_ring: dict[str, datetime] = {}
        for phone in self.phone_list:
            for ring in phone.calls():
                if ring.invited_at < began:
                    continue
                seen = first_ring.get(ring.caller_number)
                if seen is None or ring.invited_at < seen:
                    first_ring[ring.caller_number] = ring.invited_at

        lost: list[str] = []
        fallback = 0
        latencies: list[float] = []
        for p in placed:
            assert p.outcome is not None and p.outcome.invite_sent_at is not None
            invite = p.outcome.invite_sent_at
            if p.number in by_number:
                rung_at = first_ring.get(p.number)
                if rung_at is not None:
                    latencies.append((rung_at - invite).total_seconds() * 1000)
            elif any(start <= invite <= end for start, end in windows):
                fallback += 1
            else:
                lost.append(p.number)
        stuck = [r for r in records if r["status"] in OPEN_STATUSES]
        duplicates = {n: len(rs) for n, rs in by_number.items() if len(rs) > 1}
        statuses = Counter(r["status"] for r in records)
        reasons = Counter(f"{r['status']}/{r['reason']}" for r in records)
        exits = Counter(p.outcome.exit_code for p in placed if p.outcome)
        unanswered = sum(1 for p in placed if p.outcome and not p.outcome.answered)
        lat = latencies or [float("nan")]
        print(f"# {seconds:.0f} s of calls; faults: {len(self.report.faults)}")
        print(f"calls placed:     {len(placed)} (sipp could not start: {not_placed})")
        print(f"  sipp exit codes {dict(sorted(exits.items(), key=str))}; unanswered {unanswered}")
        print(f"calls recorded:   {sum(1 for p in placed if p.number in by_number)}")
        print(f"  fallback to Queue() while the app was down (no record by design): {fallback}")
        print(f"  statuses {dict(sorted(statuses.items()))}")
        print(f"  status/reason {dict(sorted(reasons.items()))}")
        print(f"calls lost:       {len(lost)} {lost[:20]}")
        print(f"stuck records:    {len(stuck)} {[r['caller_number'] for r in stuck][:20]}")
        print(f"duplicate records: {len(duplicates)} {dict(list(duplicates.items())[:10])}")
        print(
            f"routing latency (caller INVITE -> operator INVITE), {len(latencies)} calls: "
            f"p50 {pct(lat, 0.5):.1f} ms, p95 {pct(lat, 0.95):.1f} ms, "
            f"p99 {pct(lat, 0.99):.1f} ms, max {max(lat):.1f} ms"
        )
        self.failed_checks = bool(lost or stuck or duplicates)

    async def close(self, keep_logs: bool = False) -> None:
        if self.proc is not None:
            await self.proc.close()
        await super().close(keep_logs)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2.0, help="calls per second")
    parser.add_argument("--phones", type=int, default=20, help="operator phones 1001..")
    parser.add_argument("--quick", action="store_true", help="one minute, one fault")
    args = parser.parse_args()
    if args.quick:
        args.minutes = 1
    if not 1 <= args.phones <= 99:
        parser.error("--phones: 1 to 99 (extensions 1001..1099)")
    args.calls = int(args.rate * 60 * args.minutes)  # for Bench
    soak = Soak(args)
    crashed = True
    try:
        await soak.run()
        crashed = False
    except ProvisioningError as error:
        raise SystemExit(f"sandbox unavailable: {error}") from error
    finally:
        await soak.close(keep_logs=crashed or soak.failed_checks)
    return 1 if soak.failed_checks else 0


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main()))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
