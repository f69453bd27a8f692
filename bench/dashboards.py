"""Dashboards over a million calls: latency through HTTP, and the SQL against a full scan.

Builds a database of N calls (default 1,000,000) spread over the last 90 days (busier in
office hours and on weekdays), 8 queues, 60 operators in 4 groups, the usual mix of
outcomes; bulk-inserted in one transaction with executemany. Then serves the real app
in-process on 127.0.0.1 and times each statistics endpoint, one request at a time, and
beside it the same aggregate SQL run directly, once on its index and once with
`calls NOT INDEXED` (a full scan of the table: what the dashboards would cost without
migration 0004's covering index). Prints a table.

    python bench/dashboards.py [--calls 1000000] [--requests 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from callcenterd.analytics.periods import period_bounds
from callcenterd.app import create_app
from callcenterd.settings import Settings
from callcenterd.store.analytics import StatsScope, figures_query
from callcenterd.store.call_stats import Grouping, Thresholds

DAYS = 90
QUEUES = 8
GROUPS = 4
OPERATORS = 60
CALLERS = 200_000
PASSWORD = "bench-password"
# Relative call volume per hour of day: quiet nights, a morning and an afternoon peak.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 19, 15, 16, 19, 18, 15, 11, 8, 6, 4, 3, 2, 1]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the database ------------------------------------------------------------------------------
def people(conn: sqlite3.Connection, now: datetime) -> tuple[list[str], list[str], list[str]]:
    """Groups, operators (users too), queues with members; returns their ids."""
    at = stamp(now - timedelta(days=DAYS + 1))
    groups = [f"group-{g}" for g in range(GROUPS)]
    conn.executemany(
        "INSERT INTO groups (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
        [(g, g, at, at) for g in groups],
    )
    operators = [f"op-{n:04d}" for n in range(OPERATORS)]
    conn.executemany(
        "INSERT INTO users (id, username, email, name, password_hash, role, group_id,"
        " password_changed_at, created_at, updated_at, username_key, email_key)"
        " VALUES (?, ?, ?, ?, 'x', 'operator', ?, ?, ?, ?, ?, ?)",
        [
            (
                f"u-{op}",
                op,
                f"{op}@bench",
                f"Operator {n}",
                groups[n % GROUPS],
                at,
                at,
                at,
                op,
                f"{op}@bench",
            )
            for n, op in enumerate(operators)
        ],
    )
    conn.executemany(
        "INSERT INTO operators (id, user_id, extension, group_id, status, presence,"
        " last_activity, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                op,
                f"u-{op}",
                str(2000 + n),
                groups[n % GROUPS],
                "online" if n % 3 else "offline",
                "online" if n % 3 else "offline",
                at,
                at,
                at,
            )
            for n, op in enumerate(operators)
        ],
    )
    queues = [f"queue-{q}" for q in range(QUEUES)]
    conn.executemany(
        "INSERT INTO queues (id, name, asterisk_name, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(q, f"Queue {n}", f"q{n}", at, at) for n, q in enumerate(queues)],
    )
    conn.executemany(
        "INSERT INTO queue_members (queue_id, operator_id, position) VALUES (?, ?, ?)",
        [(queues[n % QUEUES], op, n) for n, op in enumerate(operators)],
    )
    return groups, operators, queues


def call_times(count: int, now: datetime, rng: random.Random) -> list[datetime]:
    """`count` start times over the last DAYS days, weighted by hour and weekday."""
    first = (now - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    hours: list[datetime] = []
    weights: list[float] = []
    moment = first
    while moment < now:
        hours.append(moment)
        weekend = moment.weekday() >= 5
        weights.append(HOUR_WEIGHTS[moment.hour] * (0.4 if weekend else 1.0))
        moment += timedelta(hours=1)
    picked = rng.choices(hours, weights=weights, k=count)
    times = [hour + timedelta(seconds=rng.random() * 3600) for hour in picked]
    return sorted(t for t in times if t < now - timedelta(minutes=15))


def calls(
    count: int, now: datetime, operators: list[str], queues: list[str], rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    members = {
        q: [op for n, op in enumerate(operators) if n % QUEUES == i] for i, q in enumerate(queues)
    }
    for n, start in enumerate(call_times(count, now, rng)):
        queue = queues[min(int(rng.expovariate(0.5)), QUEUES - 1)]
        roll = rng.random()
        wait = rng.expovariate(1 / 25)
        operator = rng.choice(members[queue])
        tried = [operator]
        status, reason, answer, end, duration, rating = "completed", None, None, None, None, None
        if roll < 0.86:
            answer = start + timedelta(seconds=wait)
            duration = int(rng.expovariate(1 / 200)) + 5
            end = answer + timedelta(seconds=duration)
            reason = "caller_hangup" if rng.random() < 0.6 else "operator_hangup"
            rating = rng.randint(1, 5) if rng.random() < 0.2 else None
            if rng.random() < 0.1:
                tried.insert(0, rng.choice(members[queue]))
        else:
            status, operator = "missed", None
            reason = rng.choices(
                ["abandoned", "timeout", "no_operator", "rejected"], weights=[8, 3, 2, 1]
            )[0]
            wait = rng.uniform(0, 4) if rng.random() < 0.3 and reason == "abandoned" else wait
            end = start + timedelta(seconds=wait)
            duration = 0
        yield (
            f"{start.strftime('%Y%m%d%H%M%S%f')}-{n:08d}",
            f"{1700000000 + n}.{n % 1000}",
            f"+4930{rng.randrange(CALLERS):07d}",
            "100",
            operator,
            queue,
            status,
            reason,
            stamp(start),
            stamp(answer) if answer else None,
            stamp(end) if end else None,
            duration,
            round(wait, 3),
            rating,
            json.dumps(sorted(set(tried)) if status == "completed" else []),
            stamp(start),
            stamp(end or start),
        )


async def first_start(settings: Settings) -> None:
    """Start and stop the app once: migrations, and the `admin` user the bench logs in as."""
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await runner.cleanup()


def build(
    settings: Settings, count: int, now: datetime
) -> tuple[float, list[str], list[str], list[str]]:
    asyncio.run(first_start(settings))
    path = settings.database_path
    rng = random.Random(6)
    began = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    with conn:
        groups, operators, queues = people(conn, now)
        conn.executemany(
            "INSERT INTO calls (id, channel_id, caller_number, called_number, operator_id,"
            " queue_id, status, reason, start_time, answer_time, end_time, duration,"
            " wait_seconds, rating, operators_tried, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            calls(count, now, operators, queues, rng),
        )
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - began, groups, operators, queues


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    window: tuple[datetime, datetime]  # for the SQL columns
    queries: list[tuple[Grouping, StatsScope]]  # the aggregates behind the endpoint
    who: str = "admin"


# --- timing ------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sql_ms(conn: sqlite3.Connection, sql: str, params: list[Any], repeat: int) -> float:
    """Median ms of running one query to completion."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        conn.execute(sql, params).fetchall()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


async def http_ms(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], requests: int
) -> list[float]:
    samples = []
    for _ in range(requests):
        began = time.perf_counter()
        async with session.get(url, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {await response.text()}")
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def serve_and_time(
    settings: Settings,
    cases: list[Case],
    requests: int,
    supervisor_group: str,
) -> dict[str, list[float]]:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    base = f"http://127.0.0.1:{port}/api"
    results: dict[str, list[float]] = {}
    try:
        async with aiohttp.ClientSession() as session:
            credentials = {"username": "admin", "password": PASSWORD}
            async with session.post(f"{base}/auth/login", json=credentials) as response:
                admin = {"Authorization": f"Bearer {(await response.json())['access_token']}"}
            supervisor = await supervisor_token(session, base, admin, supervisor_group)
            for case in cases:
                headers = supervisor if case.who == "supervisor" else admin
                await http_ms(session, base + case.path, headers, 2)  # warm the page cache
                results[case.name] = await http_ms(session, base + case.path, headers, requests)
    finally:
        await runner.cleanup()
    return results


async def supervisor_token(
    session: aiohttp.ClientSession, base: str, admin: dict[str, str], group_id: str
) -> dict[str, str]:
    body = {
        "username": "bench-supervisor",
        "email": "supervisor@bench.example.com",
        "name": "Bench Supervisor",
        "password": PASSWORD,
        "role": "supervisor",
        "group_id": group_id,
    }
    async with session.post(f"{base}/admin/users", json=body, headers=admin) as response:
        if response.status not in (201, 409):  # 409: made by an earlier run on this database
            raise RuntimeError(await response.text())
    credentials = {"username": "bench-supervisor", "password": PASSWORD}
    async with session.post(f"{base}/auth/login", json=credentials) as response:
        return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--sql-repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="state folder to keep (reused if built)")
    args = parser.parse_args()

    state = args.keep or Path(tempfile.mkdtemp(prefix="ccd-dash-"))
    state.mkdir(parents=True, exist_ok=True)
    path = state / "callcenterd.sqlite3"
    now = datetime.now(UTC)
    settings = Settings.model_validate(
        {
            "state_dir": str(state),
            "admin_password": PASSWORD,
            "auth": {"bcrypt_rounds": 4},
            "rate_limits": {"enabled": False},
            "log": {"level": "warning"},
            "ari": {"url": f"http://127.0.0.1:{free_port()}"},
        }
    )
    if path.exists():
        print(f"# reusing {path}")
        began = time.perf_counter()
        asyncio.run(first_start(settings))
        print(f"# app start-up on it (migrations, rollups): {time.perf_counter() - began:.1f} s")
        conn = sqlite3.connect(path)
        groups = [r[0] for r in conn.execute("SELECT id FROM groups ORDER BY id")]
        queues = [r[0] for r in conn.execute("SELECT id FROM queues ORDER BY id")]
        operators = [r[0] for r in conn.execute("SELECT id FROM operators ORDER BY id")]
        conn.close()
    else:
        took, groups, operators, queues = build(settings, args.calls, now)
        print(f"# built {args.calls:,} calls over {DAYS} days in {took:.1f} s ({path})")
    conn = sqlite3.connect(path)
    stored = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    size = path.stat().st_size / 1e6
    print(f"# {stored:,} calls stored, database {size:.0f} MB")

    thresholds = Thresholds(20, 5)
    tz = settings.tz
    today = period_bounds("today", now, tz)
    week = period_bounds("week", now, tz)
    month = period_bounds("month", now, tz)
    group = groups[0]
    group_scope = StatsScope(
        tuple(q for n, q in enumerate(queues) if n % GROUPS == 0),
        tuple(op for n, op in enumerate(operators) if n % GROUPS == 0),
    )
    q0, op0 = queues[0], operators[0]
    all_calls = StatsScope()
    forecast = (period_bounds("today", now, tz)[0] - timedelta(days=28), today[0])
    cases = [
        Case(
            "dashboard/stats today", "/dashboard/stats?period=today", today, [("hour", all_calls)]
        ),
        Case("dashboard/stats week", "/dashboard/stats?period=week", week, [("hour", all_calls)]),
        Case(
            "dashboard/stats month", "/dashboard/stats?period=month", month, [("hour", all_calls)]
        ),
        Case(
            "dashboard/stats week (supervisor)",
            "/dashboard/stats?period=week",
            week,
            [("hour", group_scope)],
            who="supervisor",
        ),
        Case(
            "call-analytics today",
            "/dashboard/call-analytics?period=today",
            today,
            [("hour", all_calls), ("queue", all_calls), ("operator", all_calls)],
        ),
        Case(
            "call-analytics week",
            "/dashboard/call-analytics?period=week",
            week,
            [("hour", all_calls), ("queue", all_calls), ("operator", all_calls)],
        ),
        Case(
            "calls/stats week",
            "/calls/stats?period=week",
            week,
            [("hour", all_calls), ("operator", all_calls)],
        ),
        Case(
            "queues/{id}/stats week",
            f"/queues/{q0}/stats?period=week",
            week,
            [("hour", StatsScope(queue_ids=(q0,)))],
        ),
        Case(
            "operators/{id}/stats week",
            f"/operators/{op0}/stats?period=week",
            week,
            [("operator", StatsScope(operator_ids=(op0,)))],
        ),
        Case("dashboard/realtime", "/dashboard/realtime", today, []),
        Case(
            "dashboard/operator-activity",
            "/dashboard/operator-activity",
            today,
            [("operator", all_calls)],
        ),
        Case(
            "queues/{id}/forecast (4 weeks)",
            f"/queues/{q0}/forecast",
            forecast,
            [("hour", StatsScope(queue_ids=(q0,)))],
        ),
    ]

    http = asyncio.run(serve_and_time(settings, cases, args.requests, group))

    header = (
        f"{'endpoint':<34} {'calls':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'served':>7} {'index':>7} {'scan':>8} {'scan/served':>11}"
    )
    print(
        f"# {args.requests} sequential requests each over HTTP on 127.0.0.1. SQL: medians of "
        f"{args.sql_repeat} runs of the aggregates behind the endpoint: served = as the app "
        "runs them (rollup where it can), index = the covering index, scan = calls NOT INDEXED"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        name, (start, end) = case.name, case.window
        calls_in = conn.execute(
            "SELECT COUNT(*) FROM calls WHERE start_time >= ? AND start_time < ?",
            (stamp(start), stamp(end)),
        ).fetchone()[0]
        timings = {"auto": 0.0, "index": 0.0, "scan": 0.0}
        for grouping, scope in case.queries:
            for source in timings:
                sql, params = figures_query(grouping, start, end, scope, thresholds, source)
                repeat = args.sql_repeat if source != "scan" else max(1, args.sql_repeat // 2)
                timings[source] += sql_ms(conn, sql, params, repeat)
        samples = http[name]
        served = timings["auto"]
        ratio = f"{timings['scan'] / served:10.0f}x" if served else f"{'-':>11}"
        print(
            f"{name:<34} {calls_in:>8,} {pct(samples, 0.5):7.1f} {pct(samples, 0.95):7.1f} "
            f"{served:7.1f} {timings['index']:7.1f} {timings['scan']:8.1f} {ratio}"
        )
    conn.close()


if __name__ == "__main__":
    main()
