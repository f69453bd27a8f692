"""The demo's command line; every option also has a DEMO_* environment variable."""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Calls a minute: one every 10 s on average, a little more than the 6 operators take.
DEFAULT_RATE = 6.0
DEFAULT_PORT = 8001
# The demo's users on a loopback-only daemon, printed at start: a documented fixed value.
DEFAULT_PASSWORD = "callcenter-demo"  # noqa: S105


@dataclass(frozen=True)
class DemoOptions:
    rate_per_minute: float
    minutes: float | None  # None: until Ctrl-C
    port: int
    state_dir: Path
    admin_password: str
    seed: int
    abandon_share: float
    callback_share: float
    with_sandbox: bool  # False: the daemon alone, even where the sandbox could run


def _env_default(env: Mapping[str, str], name: str, fallback: str) -> str:
    return env.get(name) or fallback


def parse_options(argv: Sequence[str] | None, env: Mapping[str, str] = os.environ) -> DemoOptions:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="A live call center on the sandbox Asterisk: the daemon, simulated "
        "operators and callers. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=float(_env_default(env, "DEMO_RATE", str(DEFAULT_RATE))),
        help=f"calls a minute, Poisson arrivals (DEMO_RATE; default {DEFAULT_RATE})",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=float(_env_default(env, "DEMO_MINUTES", "0")),
        help="stop after this long (DEMO_MINUTES; default 0: until Ctrl-C)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(_env_default(env, "DEMO_PORT", str(DEFAULT_PORT))),
        help=f"the daemon's HTTP port (DEMO_PORT; default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(_env_default(env, "DEMO_STATE", "demo-state")),
        help="the daemon's state folder, emptied at each start (DEMO_STATE; default ./demo-state)",
    )
    parser.add_argument(
        "--password",
        default=_env_default(env, "DEMO_ADMIN_PASSWORD", DEFAULT_PASSWORD),
        help=f"the password of admin and every demo user (DEMO_ADMIN_PASSWORD; default "
        f"{DEFAULT_PASSWORD})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(_env_default(env, "DEMO_SEED", str(random.SystemRandom().randrange(10**6)))),
        help="the random draws' seed, printed at start to repeat a run (DEMO_SEED)",
    )
    parser.add_argument(
        "--abandon-share",
        type=float,
        default=0.25,
        help="share of callers who give up waiting (default 0.25)",
    )
    parser.add_argument(
        "--callback-share",
        type=float,
        default=0.15,
        help="share of callers who press 1 for a callback (default 0.15)",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        default=bool(env.get("DEMO_NO_SANDBOX")),
        help="the daemon alone, with the call center but no calls (DEMO_NO_SANDBOX=1)",
    )
    arguments = parser.parse_args(argv)
    if arguments.rate <= 0:
        parser.error("--rate must be positive")
    if not 0 <= arguments.abandon_share + arguments.callback_share <= 1:
        parser.error("--abandon-share + --callback-share must be within 0..1")
    return DemoOptions(
        rate_per_minute=arguments.rate,
        minutes=arguments.minutes if arguments.minutes > 0 else None,
        port=arguments.port,
        state_dir=arguments.state.resolve(),
        admin_password=arguments.password,
        seed=arguments.seed,
        abandon_share=arguments.abandon_share,
        callback_share=arguments.callback_share,
        with_sandbox=not arguments.no_sandbox,
    )
