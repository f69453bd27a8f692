"""`python -m tests.sandbox up|down|status`: the e2e sandbox, by hand.

up      build if needed, start Asterisk (and --phones N answering phones), print where everything
        is, stay until Ctrl-C, then clean up. With --detach: print and leave it running.
down    stop instances started with `up --detach` (all, or the ids given).
status  list instances started with `up --detach` that are still running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from .build import ProvisioningError, sandbox_cache_dir
from .config import SandboxSettings
from .instance import AsteriskSandbox, detached_instances, stop_detached
from .phones import OperatorPhones, PhoneBehaviour


def _print_instance(info: dict[str, Any]) -> None:
    queues = ", ".join(f"{queue}={number}" for queue, number in info["queue_numbers"].items())
    events = f"{info['ari_events_url']}?app={info['ari_app']}&subscribeAll=false"
    print(f"instance {info['instance_id']} (Asterisk pid {info['pid']})")
    print(
        f"  ARI     {info['ari_url']}  user {info['ari_username']}  password {info['ari_password']}"
    )
    print(f"          events {events}")
    print(f"  AMI     {info['ami']}  user {info['ami_username']}  secret {info['ami_secret']}")
    print(f"  SIP     {info['sip']} UDP (any INVITE from 127.0.0.1 lands in [from-trunk])")
    print(f"  numbers {queues}; any other number: queue support")
    print(f"  logs    {info['run_dir']}/log")


async def _up(settings: SandboxSettings, phone_count: int, answer_after_ms: int) -> None:
    sandbox = AsteriskSandbox.provision(settings)
    phones = OperatorPhones(sandbox, sandbox.run_dir / "tests" / "cli")
    try:
        seconds = sandbox.start()
        extensions = settings.operator_extensions[:phone_count]
        behaviour = PhoneBehaviour.answer(after_ms=answer_after_ms)
        await phones.start(dict.fromkeys(extensions, behaviour))
        _print_instance(sandbox.describe())
        for extension in extensions:
            port = sandbox.phone_ports[extension]
            print(f"  phone   {extension} at 127.0.0.1:{port}, answers after {answer_after_ms} ms")
        print(f"ready in {seconds:.2f} s; Ctrl-C stops it", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await stop.wait()
    finally:
        await phones.stop_all()
        sandbox.close()


def _up_detached(settings: SandboxSettings) -> None:
    sandbox = AsteriskSandbox.provision(settings)
    seconds = sandbox.start(detached=True)
    _print_instance(sandbox.describe())
    print(f"ready in {seconds:.2f} s; stop it: python -m tests.sandbox down {sandbox.instance_id}")


def _down(instance_ids: list[str]) -> None:
    for state in detached_instances(sandbox_cache_dir()):
        if not instance_ids or state["instance_id"] in instance_ids:
            stop_detached(state)
            print(f"stopped {state['instance_id']}")


def _status() -> None:
    states = detached_instances(sandbox_cache_dir())
    if not states:
        print("no detached sandbox is running")
    for state in states:
        _print_instance(state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a sandbox")
    up.add_argument("--phones", type=int, default=0, help="answering phones 1001.. to start")
    up.add_argument("--answer-after-ms", type=int, default=1000)
    up.add_argument("--app", default="callcenterd", help="the ARI application name")
    up.add_argument("--detach", action="store_true", help="leave it running (no phones)")
    down = commands.add_parser("down", help="stop detached sandboxes")
    down.add_argument("instance_ids", nargs="*", help="default: all")
    commands.add_parser("status", help="list detached sandboxes")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    try:
        if arguments.command == "up":
            settings = SandboxSettings(ari_app=arguments.app)
            if arguments.detach:
                if arguments.phones:
                    parser.error("--detach starts no phones")
                _up_detached(settings)
            else:
                with contextlib.suppress(KeyboardInterrupt):
                    asyncio.run(_up(settings, arguments.phones, arguments.answer_after_ms))
        elif arguments.command == "down":
            _down(arguments.instance_ids)
        else:
            _status()
    except ProvisioningError as error:
        print(f"sandbox unavailable: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
