"""The daemon's layers, checked on the source (ast): a forbidden import is caught even on a
path no test runs, and inside functions or under TYPE_CHECKING as much as at the top.

Layers, from the wiring down to the pure core. A module may import its own package, a layer
below its own (a higher rank), and the foundation; never a layer above it, and within its
own rank only the pairs listed in SAME_RANK_ALLOWED (cli -> app, __main__ -> cli,
api -> keys, routing -> domain):

    rank 0  wiring:    app.py, cli.py, __main__.py (build and run everything)
    rank 1  api/       HTTP handlers
            web/       the wallboard and admin pages' static files (imports nothing of ours)
            keys.py    the typed app keys; `Services` names what create_app builds, so it
                       sits above services/, and handlers read it (api -> keys is listed)
    rank 2  services/  use cases;  metrics/ (Prometheus, fed from the events, links, engine)
    rank 3  store/ (SQLite), telephony/ (ARI, AMI), events/ (bus and live stream)
    rank 4  contract/  request and response models
    rank 5  domain/, routing/, analytics/: the pure core (also no I/O, no clock; see below)
    foundation: errors, settings, security, tasks, logs, systemd, callcenterd/__init__:
            importable by every layer; they import only the foundation and the pure core.

Handlers go through the services: api/ may not import store/ or telephony/ directly, though
both are below it (SKIP_REFUSED). A module or package missing from the table fails the test:
a new one has to be placed.

The pure core (domain/, routing/, analytics/) also stays pure: no I/O package, no clock, no
unseeded randomness.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import callcenterd

ROOT = Path(callcenterd.__file__).parent
PACKAGE = "callcenterd"

WIRING, API, SERVICES, ADAPTERS, CONTRACT, CORE = range(6)
LAYERS: dict[str, int] = {
    "callcenterd.app": WIRING,
    "callcenterd.cli": WIRING,
    "callcenterd.__main__": WIRING,
    "callcenterd.api": API,
    "callcenterd.keys": API,
    "callcenterd.web": API,  # the pages at / (static files only: they use the API as a client)
    "callcenterd.services": SERVICES,
    "callcenterd.metrics": SERVICES,
    "callcenterd.store": ADAPTERS,
    "callcenterd.telephony": ADAPTERS,
    "callcenterd.events": ADAPTERS,
    "callcenterd.notify": ADAPTERS,  # transports: the SMS gateway, SMTP, webhooks
    "callcenterd.contract": CONTRACT,
    "callcenterd.domain": CORE,
    "callcenterd.routing": CORE,
    "callcenterd.analytics": CORE,
}
FOUNDATION = frozenset(
    {
        "callcenterd",  # __init__: the version
        "callcenterd.errors",
        "callcenterd.settings",
        "callcenterd.security",
        "callcenterd.tasks",
        "callcenterd.logs",
        "callcenterd.systemd",
    }
)
# Same rank, different unit: refused unless listed here (importer, imported).
SAME_RANK_ALLOWED = frozenset(
    {
        ("callcenterd.__main__", "callcenterd.cli"),
        ("callcenterd.cli", "callcenterd.app"),  # `serve` runs the app create_app builds
        ("callcenterd.api", "callcenterd.keys"),  # handlers find the services by the key
        ("callcenterd.routing", "callcenterd.domain"),  # the engine works on domain types
    }
)
# Lower layers a unit may still not import: it goes through the layer between.
SKIP_REFUSED: dict[str, frozenset[str]] = {
    "callcenterd.api": frozenset({"callcenterd.store", "callcenterd.telephony"}),
}
PURE_UNITS = ("callcenterd.domain", "callcenterd.routing", "callcenterd.analytics")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(ROOT.rglob("*.py"))
KNOWN = {module_name(path) for path in MODULES}


def unit_of(module: str) -> str | None:
    """The table entry a module belongs to (its package, or itself), None if unplaced."""
    if module in FOUNDATION:
        return module
    for unit in sorted(LAYERS, key=len, reverse=True):
        if module == unit or module.startswith(unit + "."):
            return unit
    return None


def _describe(unit: str) -> str:
    short = unit.removeprefix(PACKAGE + ".") or PACKAGE
    return f"{short} (foundation)" if unit in FOUNDATION else f"{short} (rank {LAYERS[unit]})"


def refusal(importer: str, imported: str) -> str | None:
    """Why `importer`'s unit may not import `imported`'s, or None when it may."""
    source, target = unit_of(importer), unit_of(imported)
    if source is None:
        return f"{importer} is in no layer of the table"
    if target is None:
        return f"{imported} is in no layer of the table"
    if source == target or target in FOUNDATION:
        return None
    if source in FOUNDATION:
        if LAYERS[target] == CORE:
            return None
        return f"the foundation imports only itself and the pure core, not {_describe(target)}"
    if LAYERS[target] < LAYERS[source]:
        return f"{_describe(source)} may not import a higher layer, {_describe(target)}"
    if LAYERS[target] == LAYERS[source] and (source, target) not in SAME_RANK_ALLOWED:
        return f"{_describe(source)} may not import {_describe(target)}: same rank, not listed"
    if target in SKIP_REFUSED.get(source, frozenset()):
        return f"{_describe(source)} may not import {_describe(target)}: go through services/"
    return None


@dataclass(frozen=True, slots=True)
class Import:
    line: int
    module: str  # the callcenterd module imported (a submodule named in `from x import y`)
    text: str  # as written, for the message


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def own_imports(source: str, importer: str, is_package: bool = False) -> Iterator[Import]:
    """Every import of a callcenterd module, anywhere in the file."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    yield Import(node.lineno, alias.name, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, importer, is_package)
            if module != PACKAGE and not module.startswith(PACKAGE + "."):
                continue
            names = ", ".join(alias.name for alias in node.names)
            text = f"from {'.' * node.level}{node.module or ''} import {names}"
            # `from callcenterd import keys` imports the module callcenterd.keys.
            subs = (f"{module}.{alias.name}" for alias in node.names)
            for target in dict.fromkeys(sub if sub in KNOWN else module for sub in subs):
                yield Import(node.lineno, target, text)


def layer_violations(source: str, importer: str, where: str, is_package: bool = False) -> list[str]:
    found = []
    for imp in own_imports(source, importer, is_package):
        why = refusal(importer, imp.module)
        if why is not None:
            found.append(f"{where}:{imp.line}: `{imp.text}`: {why}")
    return found


def test_every_module_is_placed() -> None:
    unplaced = [module for module in sorted(KNOWN) if unit_of(module) is None]
    assert unplaced == [], "modules in no layer of the table (add them to LAYERS): " + ", ".join(
        unplaced
    )


def test_the_table_names_only_existing_units() -> None:
    assert set(LAYERS) | FOUNDATION <= KNOWN


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_imports_only_what_its_layer_may(path: Path) -> None:
    where = path.relative_to(ROOT.parent).as_posix()
    found = layer_violations(
        path.read_text(), module_name(path), where, is_package=path.name == "__init__.py"
    )
    assert not found, "layer violations:\n  " + "\n  ".join(found)


@pytest.mark.parametrize(
    ("importer", "source", "expected"),
    [
        ("callcenterd.api.calls", "from callcenterd.services.calls import CallService", 0),
        ("callcenterd.api.calls", "from callcenterd import keys", 0),
        ("callcenterd.api.calls", "from callcenterd.store.call_queries import CallRecord", 1),
        ("callcenterd.api.calls", "from callcenterd.telephony import ari_client", 1),
        ("callcenterd.api.ws", "from callcenterd.events.stream import EventStream", 0),
        ("callcenterd.events.stream", "from callcenterd.services.context import audit", 1),
        ("callcenterd.events.bus", "from callcenterd.store.db import Database", 1),
        ("callcenterd.events.bus", "from .filters import wants", 0),
        ("callcenterd.events.bus", "from ..services import users", 1),
        ("callcenterd.services.x", "def f():\n    from callcenterd.api import endpoints", 1),
        (
            "callcenterd.keys",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from callcenterd.api.endpoints import Endpoint",
            1,
        ),
        ("callcenterd.services.x", "from callcenterd.metrics import live", 1),
        ("callcenterd.contract.x", "from callcenterd.security import BCRYPT_MAX_BYTES", 0),
        ("callcenterd.security", "from callcenterd.domain.users import User", 0),
        ("callcenterd.security", "from callcenterd.contract import schemas", 1),
        ("callcenterd.domain.x", "from callcenterd.contract import schemas", 1),
        ("callcenterd.routing.x", "import callcenterd.domain.queues", 0),
        ("callcenterd.routing.x", "import callcenterd.analytics.kpis", 1),
        ("callcenterd.analytics.x", "from callcenterd.routing import RoutingEngine", 1),
        ("callcenterd.app", "from callcenterd.store.db import Database", 0),
        ("callcenterd.api.x", "from callcenterd.newthing import y", 1),
        ("callcenterd.newthing", "import json", 0),
    ],
)
def test_the_layer_checker_itself(importer: str, source: str, expected: int) -> None:
    found = layer_violations(source, importer, "probe.py")
    assert len(found) == expected, found


def test_a_refusal_names_the_import_and_the_layers() -> None:
    [message] = layer_violations(
        "from callcenterd.services.context import Principal", "callcenterd.events.stream", "e.py"
    )
    assert message == (
        "e.py:1: `from callcenterd.services.context import Principal`:"
        " events (rank 3) may not import a higher layer, services (rank 2)"
    )


# --- the pure core ----------------------------------------------------------------------------
PURE = sorted(path for path in MODULES if unit_of(module_name(path)) in PURE_UNITS)

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


def purity_violations(source: str, name: str) -> list[str]:
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
    assert {"analytics/erlang.py", "analytics/forecast.py", "analytics/periods.py"} <= names


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_is_pure(path: Path) -> None:
    assert purity_violations(path.read_text(), path.relative_to(ROOT.parent).as_posix()) == []


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
def test_the_purity_checker_itself(source: str, expected: int) -> None:
    found = purity_violations(source, "probe.py")
    assert len(found) == expected, found
