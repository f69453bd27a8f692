"""`domain/` and `routing/` stay pure: no I/O package, no clock, no unseeded randomness.

Checked on the source (ast), so a forbidden import is caught even on a path no test runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import callcenterd

ROOT = Path(callcenterd.__file__).parent
PURE = sorted([*ROOT.glob("domain/*.py"), *ROOT.glob("routing/*.py")])

FORBIDDEN_MODULES = {
    # the event loop and I/O
    "asyncio",
    "aiohttp",
    "aiosqlite",
    "sqlite3",
    "structlog",
    "logging",
    "socket",
    "ssl",
    "select",
    "selectors",
    "http",
    "urllib",
    "requests",
    "httpx",
    "websockets",
    "panoramisk",
    "io",
    "os",
    "sys",
    "pathlib",
    "shutil",
    "subprocess",
    "threading",
    "multiprocessing",
    "concurrent",
    "signal",
    # the clock and unseeded randomness
    "time",
    "uuid",
    "secrets",
    # the daemon's own I/O layers
    "callcenterd.api",
    "callcenterd.app",
    "callcenterd.cli",
    "callcenterd.keys",
    "callcenterd.logs",
    "callcenterd.services",
    "callcenterd.settings",
    "callcenterd.store",
    "callcenterd.systemd",
    "callcenterd.telephony",
}
# Reading the clock or the global random generator, written as `<name>.<attribute>(...)`.
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
}
RANDOM_ALLOWED = {"Random"}  # a seeded generator is fine; the module-level one is not


def _forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES)


def violations(source: str, name: str) -> list[str]:
    tree = ast.parse(source, filename=name)
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _forbidden(node.module):
                found.append(f"{where} from {node.module} import ...")
            elif node.module == "random":
                found += [
                    f"{where} from random import {a.name}"
                    for a in node.names
                    if a.name not in RANDOM_ALLOWED
                ]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            pair = (node.value.id, node.attr)
            if pair in FORBIDDEN_CALLS:
                found.append(f"{where} {node.value.id}.{node.attr}")
            if node.value.id == "random" and node.attr not in RANDOM_ALLOWED:
                found.append(f"{where} random.{node.attr} (the unseeded global generator)")
    return found


def test_the_pure_packages_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PURE}
    assert {"routing/engine.py", "routing/state.py", "routing/strategies.py"} <= names
    assert {"domain/events.py", "domain/commands.py", "domain/queues.py"} <= names


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(), path.relative_to(ROOT.parent).as_posix()) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import asyncio", 1),
        ("import aiohttp.web", 1),
        ("from structlog import get_logger", 1),
        ("from time import monotonic", 1),
        ("import socket as s", 1),
        ("from callcenterd.store import db", 1),
        ("from datetime import datetime\nx = datetime.now()", 1),
        ("import random\nx = random.random()", 1),
        ("from random import choice", 1),
        ("import random\nr = random.Random(4)", 0),
        ("from datetime import UTC, datetime", 0),
        ("import heapq, bisect", 0),
        ("from callcenterd.domain import events", 0),
    ],
)
def test_the_checker_itself(source: str, expected: int) -> None:
    found = violations(source, "probe.py")
    assert len(found) == expected, found
