"""`python -m demo`: the sandbox Asterisk, the daemon, simulated operators and callers.

Start: the sandbox (built on first use; skipped, with the reason, when this machine cannot host
it), the daemon pointed at it, the call center provisioned through the REST API, the phones,
then the callers and the operators' schedule. Stop (Ctrl-C, SIGTERM, or --minutes): callers,
phones, the daemon (SIGTERM, its graceful stop), Asterisk, in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from tests.sandbox import AsteriskSandbox, PhoneBehaviour, ProvisioningError

from .callers import DemoCallers
from .daemon import DaemonConfig, DaemonError, DaemonProcess
from .operators import DemoOperators
from .options import DemoOptions, parse_options
from .plan import CallerMix, caller_stream, operator_schedule
from .provision import Provisioned, provision
from .report import Figures, minute_line, read_figures
from .roster import DEMO_ROSTER, Roster

STATE_MARKER = ".callcenterd-demo"
CALLBACK_CALLER_ID = "7000"  # what a dialed-back caller sees: the support line's number
REPORT_EVERY = 60.0
HANG_UP_WITHIN = 10.0  # at the end, for Asterisk's channels to be gone


def say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        prepare_state(options.state_dir)
    except RuntimeError as error:
        say(f"demo: {error}")
        return 2
    if not port_free(options.port):
        say(f"demo: port {options.port} is in use; choose another: make demo DEMO_PORT=8011")
        return 2
    sandbox: AsteriskSandbox | None = None
    try:
        if options.with_sandbox:
            with sigterm_as_interrupt():
                sandbox = start_sandbox()
        else:
            say("demo: --no-sandbox: the daemon alone, as `make run`")
    except ProvisioningError as error:
        say(f"demo: no sandbox Asterisk here ({error}); running the daemon alone, as `make run`")
    except KeyboardInterrupt:
        say("demo: stopped while starting Asterisk")
        return 130
    try:
        return asyncio.run(Demo(options, DEMO_ROSTER, sandbox).run())
    finally:
        if sandbox is not None:
            sandbox.close()
            say("demo: Asterisk stopped")


def prepare_state(state_dir: Path) -> None:
    """An empty state folder: the demo's own from a previous run is deleted, anything else is
    left alone."""
    if state_dir.exists():
        if not (state_dir / STATE_MARKER).exists() and any(state_dir.iterdir()):
            raise RuntimeError(f"{state_dir} is not empty and not a demo's state; not touching it")
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    (state_dir / STATE_MARKER).write_text("made by `make demo`; deleted at its next start\n")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While blocking calls run (the sandbox's build and start), SIGTERM interrupts them as
    Ctrl-C does, so their clean-up runs."""

    def interrupt(signal_number: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def start_sandbox() -> AsteriskSandbox:
    say("demo: preparing the sandbox Asterisk (the first time it builds its root filesystem)")
    sandbox = AsteriskSandbox.provision()
    try:
        seconds = sandbox.start()
    except BaseException:
        sandbox.close()
        raise
    say(f"demo: Asterisk ready in {seconds:.1f} s (logs in {sandbox.log_dir})")
    return sandbox


class Demo:
    def __init__(self, options: DemoOptions, roster: Roster, sandbox: AsteriskSandbox | None):
        self.options = options
        self.roster = roster
        self.sandbox = sandbox
        self.daemon = DaemonProcess(
            DaemonConfig(
                state_dir=options.state_dir,
                port=options.port,
                admin_password=options.admin_password,
                log_file=options.state_dir / "daemon.log",
                telephony_env=self._telephony_env(),
            )
        )
        self.operators: DemoOperators | None = None
        self.callers: DemoCallers | None = None
        self._stop = asyncio.Event()

    def _telephony_env(self) -> dict[str, str]:
        sandbox = self.sandbox
        if sandbox is None:
            return {}
        callee_port = sandbox.phone_ports[self.roster.callback_phone]
        return {
            "CALLCENTERD_ARI_URL": sandbox.http_url,
            "CALLCENTERD_ARI_USERNAME": sandbox.ari_username,
            "CALLCENTERD_ARI_PASSWORD": sandbox.ari_password,
            "CALLCENTERD_ARI_APP": sandbox.ari_app,
            # Callers are dialed back through the sandbox phone 1020 used as a trunk towards
            # a sipp answering as every caller (as tests/e2e/test_callbacks.py does).
            "CALLCENTERD_CALLBACKS_ENDPOINT": (
                f"PJSIP/{self.roster.callback_phone}/sip:{{number}}@127.0.0.1:{callee_port}"
            ),
            "CALLCENTERD_CALLBACKS_CALLER_ID": CALLBACK_CALLER_ID,
            "CALLCENTERD_CALLBACKS_RETRY_DELAY": "30",
        }

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        session = asyncio.current_task()
        assert session is not None
        started = False

        def on_signal() -> None:
            if self._stop.is_set():
                say("demo: already stopping")
                return
            say("demo: stopping: callers, phones, the daemon, Asterisk")
            self._stop.set()
            if not started:
                session.cancel()

        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, on_signal)
        try:
            async with contextlib.AsyncExitStack() as stack:
                stack.push_async_callback(self._stop_daemon)
                await self.daemon.start(want_ari=self.sandbox is not None)
                provisioned = await provision(
                    self.daemon.api, self.roster, self.options.admin_password
                )
                activity = await self._start_activity(stack, provisioned)
                started = True
                self._print_welcome(provisioned)
                await self._wait_for_the_end()
                for task in activity:
                    task.cancel()
                await asyncio.gather(*activity, return_exceptions=True)
                await self._final_report()
        except asyncio.CancelledError:
            return 130
        except DaemonError as error:
            say(f"demo: {error}")
            return 1
        finally:
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signal_number)
        return 0

    async def _start_activity(
        self, stack: contextlib.AsyncExitStack, provisioned: Provisioned
    ) -> list[asyncio.Task[None]]:
        """Phones, then the operators' day and the callers; returns their tasks."""
        if self.sandbox is None:
            return []  # no calls: nothing to report either
        tasks = [asyncio.create_task(self._report_every_minute())]
        rng = random.Random(self.options.seed)
        log_dir = self.options.state_dir / "sipp"
        supervisor_phone = PhoneBehaviour.answer(after_ms=2000)
        callee_phone = PhoneBehaviour.answer(after_ms=3000)
        operators = DemoOperators(
            self.sandbox,
            log_dir,
            self.roster.operators,
            {
                self.roster.supervisor.extension: supervisor_phone,
                self.roster.callback_phone: callee_phone,
            },
        )
        stack.push_async_callback(self._stop_phones, operators)
        await operators.start_phones()
        callers = DemoCallers(self.sandbox, log_dir, self.daemon.api)
        stack.push_async_callback(self._close_the_day, self.sandbox, provisioned)
        stack.push_async_callback(self._stop_callers, callers)
        self.operators, self.callers = operators, callers
        mix = CallerMix(
            rate_per_minute=self.options.rate_per_minute,
            queue_weights={q.asterisk_name: q.weight for q in self.roster.queues},
            abandon_share=self.options.abandon_share,
            callback_share=self.options.callback_share,
            offer_after={q.asterisk_name: q.callback_offer_after for q in self.roster.queues},
        )
        schedule = operator_schedule(rng, self.roster.operators, provisioned.pause_reasons)
        began = time.monotonic()
        tasks.append(
            asyncio.create_task(
                operators.follow(schedule, provisioned.operator_ids, self.daemon.api, began, say)
            )
        )
        tasks.append(asyncio.create_task(callers.follow(caller_stream(rng, mix), began)))
        return tasks

    def _print_welcome(self, provisioned: Provisioned) -> None:
        base = self.daemon.config.base_url
        users = ", ".join(
            [self.roster.supervisor.username] + [op.username for op in self.roster.operators]
        )
        queues = ", ".join(self.roster_queue_numbers())
        say("")
        say(f"  wallboard    {base}/")
        say(f"  API docs     {base}/docs")
        say(f"  log in as    admin / {self.options.admin_password}")
        say(f"  other users  {users} (supervisor, then operators): the same password")
        say(f"  state        {self.options.state_dir} (daemon.log, sipp/), emptied at each start")
        if self.sandbox is not None:
            operators = len(provisioned.operator_ids)
            say(
                f"  calls        {self.options.rate_per_minute:g} a minute into {queues}; "
                f"{operators} operators (seed {self.options.seed})"
            )
            say(f"  SIP trunk    127.0.0.1:{self.sandbox.sip_port} (dial it with sipp too)")
        limit = f"after {self.options.minutes:g} min or " if self.options.minutes else ""
        say(f"  stop         {limit}Ctrl-C")
        say("")

    def roster_queue_numbers(self) -> list[str]:
        if self.sandbox is None:
            return [q.asterisk_name for q in self.roster.queues]
        return [
            f"{q.asterisk_name} ({self.sandbox.queue_number(q.asterisk_name)})"
            for q in self.roster.queues
        ]

    async def _wait_for_the_end(self) -> None:
        limit = self.options.minutes * 60 if self.options.minutes else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), limit)

    async def _report_every_minute(self) -> None:
        before = Figures()
        minute = 0
        while True:
            await asyncio.sleep(REPORT_EVERY)
            minute += 1
            try:
                now = await read_figures(self.daemon.api)
            except DaemonError as error:
                say(f"[min {minute}] the daemon did not answer: {error}")
                continue
            say(minute_line(minute, self._placed(), before, now))
            before = now

    def _placed(self) -> int:
        return self.callers.placed if self.callers is not None else 0

    async def _final_report(self) -> None:
        if self.callers is None:
            return
        with contextlib.suppress(DaemonError):
            now = await read_figures(self.daemon.api)
            say(minute_line(-1, self._placed(), Figures(), now).replace("[min -1]", "[total]"))

    async def _stop_callers(self, callers: DemoCallers) -> None:
        await callers.stop()
        say(
            f"demo: callers stopped ({callers.placed} calls placed, {callers.gave_up} hung up"
            f" while waiting, {callers.asked_for_callback} pressed 1 for a callback)"
        )

    async def _close_the_day(self, sandbox: AsteriskSandbox, provisioned: Provisioned) -> None:
        """Every operator logs off (no callback is started now), then every call still up in
        Asterisk is hung up, so the daemon closes its records before it stops."""
        for operator_id in provisioned.operator_ids.values():
            with contextlib.suppress(DaemonError):
                await self.daemon.api(
                    "PUT", f"/api/operators/{operator_id}/status", {"status": "offline"}
                )
        with contextlib.suppress(TimeoutError):  # Asterisk stops soon anyway
            # In a thread: its CLI calls block, and the loop must go on reading the daemon.
            await asyncio.to_thread(sandbox.hangup_all, HANG_UP_WITHIN)

    async def _stop_phones(self, operators: DemoOperators) -> None:
        await operators.stop()
        say("demo: phones stopped")

    async def _stop_daemon(self) -> None:
        code = await self.daemon.stop()
        outcome = "exit code 0" if code == 0 else f"exit code {code}"
        say(f"demo: daemon stopped ({outcome})")


if __name__ == "__main__":
    sys.exit(main())
