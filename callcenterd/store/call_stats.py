"""The call figures' SQL, generated from one definition: per call, summed, rolled up.

`row_figures` says, for one call row, what it adds to each `CallCounts` field (following
analytics/kpis.py). From it come:

- the aggregate over calls (`raw_sql`): one range of the covering index `calls_stats`
  (migration 0004), for windows or scopes the rollups cannot answer;
- the triggers keeping the rollups `call_stats_queue` and `call_stats_operator` (migration
  0005) in step with `calls` (`trigger_sql`), and their rebuild (`rebuild_sql`);
- the read of the rollups (`rollup_sql`).

The thresholds are written into the generated SQL as literals: they are settings, so they
change only across restarts, and the daemon reinstalls the triggers and rebuilds the rollups
when the generated text changes (`definition_digest`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from callcenterd.analytics import kpis
from callcenterd.domain.clock import to_iso

STATS_INDEX = "calls_stats"
ROLLUP_TABLES = {"queue": "call_stats_queue", "operator": "call_stats_operator"}
# The same rollups by UTC day (migration 0006): whole days of a window read these.
DAY_TABLES = {"queue": "call_stats_queue_day", "operator": "call_stats_operator_day"}
TRIGGERS = ("call_stats_insert", "call_stats_update", "call_stats_delete")
Grouping = Literal["total", "hour", "queue", "operator"]
# The UTC quarter hour a call started in: 'YYYY-MM-DDTHH:MM'.
SLOT_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True, slots=True)
class Thresholds:
    answered_within: float  # seconds: the service level's threshold
    short_abandon: float  # seconds: abandons quicker than this are not counted against us


@dataclass(frozen=True, slots=True)
class Figure:
    column: str  # the CallCounts field
    expression: str  # what one call row adds
    combine: Literal["sum", "max"]


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def slot_expression(row: str = "") -> str:
    return (
        f"substr({row}start_time, 1, 14)"
        f" || printf('%02d', CAST(substr({row}start_time, 15, 2) AS INTEGER) / 15 * 15)"
    )


def hour_expression(column: str, utc_offset_minutes: int) -> str:
    """The local hour of day (0-23) of a 'YYYY-MM-DDTHH:MM...' UTC `column` at that offset."""
    minutes = (
        f"CAST(substr({column}, 12, 2) AS INTEGER) * 60 + CAST(substr({column}, 15, 2) AS INTEGER)"
    )
    return f"(({minutes} + {int(utc_offset_minutes) + 1440}) / 60) % 24"


def day_expression(row: str = "") -> str:
    """The UTC day a call started on, 'YYYY-MM-DD' (the day tables' slot)."""
    return f"substr({row}start_time, 1, 10)"


def row_figures(thresholds: Thresholds, row: str = "") -> list[Figure]:
    """What the call `row` ('' for a plain column, 'NEW.' or 'OLD.' in triggers) adds."""
    status, reason = f"{row}status", f"{row}reason"
    answered = f"{status} IN ({_quoted(kpis.ANSWERED_STATUSES)})"
    missed = f"{status} = '{kpis.MISSED_STATUS}'"
    # IS, not =: a NULL reason must count as "no", not as unknown (NULL) in the triggers.
    abandoned = f"{missed} AND {reason} IS '{kpis.ABANDONED_REASON}'"
    completed = f"{status} = '{kpis.COMPLETED_STATUS}'"
    waited = f"COALESCE({row}wait_seconds, 0)"
    within, short = float(thresholds.answered_within), float(thresholds.short_abandon)
    return [
        Figure("entered", "1", "sum"),
        Figure("answered", f"({answered})", "sum"),
        Figure("answered_within_threshold", f"({answered} AND {waited} <= {within!r})", "sum"),
        Figure("missed", f"({missed})", "sum"),
        Figure("abandoned", f"({abandoned})", "sum"),
        Figure("short_abandoned", f"({abandoned} AND {waited} < {short!r})", "sum"),
        Figure(
            "unserved",
            f"({missed} AND COALESCE({reason}, '') IN ({_quoted(kpis.UNSERVED_REASONS)})"
            f" AND {waited} >= {short!r})",
            "sum",
        ),
        Figure("answered_wait_seconds", f"(CASE WHEN {answered} THEN {waited} ELSE 0 END)", "sum"),
        Figure("longest_wait_seconds", waited, "max"),
        Figure("completed", f"({completed})", "sum"),
        Figure(
            "talk_seconds",
            f"(CASE WHEN {completed} THEN COALESCE({row}duration, 0) ELSE 0 END)",
            "sum",
        ),
    ]


COLUMNS = [figure.column for figure in row_figures(Thresholds(0, 0))]


def _aggregate(figure: Figure, expression: str) -> str:
    if figure.combine == "max":
        return f"COALESCE(MAX({expression}), 0) AS {figure.column}"
    return f"TOTAL({expression}) AS {figure.column}"


# --- over the calls themselves ------------------------------------------------------------------
def _in(column: str, values: tuple[str, ...]) -> tuple[str, list[Any]]:
    if not values:
        return "0", []
    return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


def condition_sql(
    queue_ids: tuple[str, ...] | None, operator_ids: tuple[str, ...] | None
) -> tuple[str, list[Any]]:
    """queue IN (...) OR operator IN (...), whichever are given; '1' for neither."""
    parts: list[str] = []
    params: list[Any] = []
    for column, values in (("queue_id", queue_ids), ("operator_id", operator_ids)):
        if values is not None:
            clause, more = _in(column, values)
            parts.append(clause)
            params.extend(more)
    if not parts:
        return "1", []
    return "(" + " OR ".join(parts) + ")", params


def _raw_keys(grouping: Grouping, utc_offset_minutes: int) -> tuple[str, str, str]:
    """select, extra condition, group by."""
    if grouping == "hour":
        return f"{hour_expression('start_time', utc_offset_minutes)} AS key, ", "", " GROUP BY key"
    return {
        "total": ("", "", ""),
        "queue": ("COALESCE(queue_id, '') AS key, ", "", " GROUP BY key"),
        "operator": ("operator_id AS key, ", " AND operator_id IS NOT NULL", " GROUP BY key"),
    }[grouping]


def raw_sql(
    grouping: Grouping,
    start: datetime,
    end: datetime,
    condition: tuple[str, list[Any]],
    thresholds: Thresholds,
    table: str = f"calls INDEXED BY {STATS_INDEX}",
    utc_offset_minutes: int = 0,
) -> tuple[str, list[Any]]:
    """The figures of the calls started in [start, end) meeting `condition`, from the calls.

    `hour` groups by local hour of day at `utc_offset_minutes` (constant over the window).
    `table` is there for the benchmark's baseline (`calls NOT INDEXED`).
    """
    select, extra, group_by = _raw_keys(grouping, utc_offset_minutes)
    figures = ", ".join(_aggregate(f, f.expression) for f in row_figures(thresholds))
    where, params = condition
    sql = (
        f"SELECT {select}{figures} FROM {table}"
        f" WHERE start_time >= ? AND start_time < ? AND {where}{extra}{group_by}"
    )
    return sql, [to_iso(start), to_iso(end), *params]


# --- over the rollups ---------------------------------------------------------------------------
def slot_key(moment: datetime) -> str:
    return moment.strftime(SLOT_FORMAT)


def day_key(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def on_quarter(moment: datetime) -> bool:
    return moment.minute % 15 == 0 and moment.second == 0 and moment.microsecond == 0


def _part(table: Literal["queue", "operator"], tables: dict[str, str], where: str) -> str:
    operator = "operator_id" if table == "operator" else "'' AS operator_id"
    return (
        f"SELECT slot, queue_id, {operator}, {', '.join(COLUMNS)} FROM {tables[table]}"
        f" WHERE slot >= ? AND slot < ? AND {where}"
    )


def _ranges(
    grouping: Grouping, start: datetime, end: datetime
) -> list[tuple[dict[str, str], str, str]]:
    """Which rollup grain covers which part of [start, end): (tables, first, after) slots.

    Whole UTC days inside the window come from the day tables, the quarter hours at its
    edges from the quarter-hour ones. Hours of day need quarter hours.
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first_day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if first_day < start:
        first_day += timedelta(days=1)
    after_day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    if grouping == "hour" or first_day >= after_day:
        return [(ROLLUP_TABLES, slot_key(start), slot_key(end))]
    ranges = [(DAY_TABLES, day_key(first_day), day_key(after_day))]
    if start < first_day:
        ranges.append((ROLLUP_TABLES, slot_key(start), slot_key(first_day)))
    if after_day < end:
        ranges.append((ROLLUP_TABLES, slot_key(after_day), slot_key(end)))
    return ranges


def _rollup_parts(
    grouping: Grouping,
    queue_ids: tuple[str, ...] | None,
    operator_ids: tuple[str, ...] | None,
) -> list[tuple[Literal["queue", "operator"], str, list[Any]]]:
    """Which rollup rows make up the scope: (table, condition, its parameters)."""
    queues = ("1", []) if queue_ids is None else _in("queue_id", queue_ids)
    if operator_ids is None:
        table: Literal["queue", "operator"] = "operator" if grouping == "operator" else "queue"
        return [(table, *queues)]
    operators = _in("operator_id", operator_ids)
    if queue_ids is None:
        return [("operator", *operators)]
    if grouping == "operator":
        return [("operator", f"({queues[0]} OR {operators[0]})", [*queues[1], *operators[1]])]
    # A group: its queues' calls, plus its operators' calls from other queues.
    return [
        ("queue", *queues),
        ("operator", f"{operators[0]} AND NOT {queues[0]}", [*operators[1], *queues[1]]),
    ]


def rollup_sql(
    grouping: Grouping,
    start: datetime,
    end: datetime,
    queue_ids: tuple[str, ...] | None,
    operator_ids: tuple[str, ...] | None,
    utc_offset_minutes: int = 0,
) -> tuple[str, list[Any]]:
    """The same figures as `raw_sql`, summed from the rollups.

    `start`/`end` on UTC quarter hours; the scope as in `condition_sql`. Rows whose calls
    all moved away (a call re-dated or re-queued) stay behind empty: HAVING drops them.
    """
    select, group_by = {
        "total": ("", ""),
        "hour": (
            f"{hour_expression('slot', utc_offset_minutes)} AS key, ",
            " GROUP BY key HAVING TOTAL(entered) > 0",
        ),
        "queue": ("queue_id AS key, ", " GROUP BY queue_id HAVING TOTAL(entered) > 0"),
        "operator": ("operator_id AS key, ", " GROUP BY operator_id HAVING TOTAL(entered) > 0"),
    }[grouping]
    figures = ", ".join(
        _aggregate(f, f.column) if f.combine == "max" else f"TOTAL({f.column}) AS {f.column}"
        for f in row_figures(Thresholds(0, 0))
    )
    parts: list[str] = []
    params: list[Any] = []
    for tables, first, after in _ranges(grouping, start, end):
        for table, where, more in _rollup_parts(grouping, queue_ids, operator_ids):
            parts.append(_part(table, tables, where))
            params.extend((first, after, *more))
    return f"SELECT {select}{figures} FROM ({' UNION ALL '.join(parts)}){group_by}", params


# --- keeping the rollups ------------------------------------------------------------------------
def _upsert(
    table: str, slot: str, keys: tuple[str, ...], row: str, sign: int, t: Thresholds
) -> str:
    figures = row_figures(t, row)
    values = [
        ("0" if sign < 0 else f.expression)
        if f.combine == "max"
        else (f.expression if sign > 0 else f"-{f.expression}")
        for f in figures
    ]
    updates = ", ".join(
        f"{f.column} = MAX({f.column}, excluded.{f.column})"
        if f.combine == "max"
        else f"{f.column} = {f.column} + excluded.{f.column}"
        for f in figures
    )
    key_values = [
        f"COALESCE({row}queue_id, '')" if key == "queue_id" else f"{row}{key}" for key in keys
    ]
    guard = f"{row}operator_id IS NOT NULL" if "operator_id" in keys else "1"
    return (
        f"INSERT INTO {table} (slot, {', '.join(keys)}, {', '.join(COLUMNS)})"
        f" SELECT {slot}, {', '.join(key_values)}, {', '.join(values)}"
        f" WHERE {guard}"
        f" ON CONFLICT (slot, {', '.join(keys)}) DO UPDATE SET {updates};"
    )


ROLLUP_KEYS = {"queue": ("queue_id",), "operator": ("operator_id", "queue_id")}


def _changes(row: str, sign: int, thresholds: Thresholds) -> str:
    return "\n    ".join(
        _upsert(tables[name], slot, keys, row, sign, thresholds)
        for tables, slot in (
            (ROLLUP_TABLES, slot_expression(row)),
            (DAY_TABLES, day_expression(row)),
        )
        for name, keys in ROLLUP_KEYS.items()
    )


def trigger_sql(thresholds: Thresholds) -> list[str]:
    """CREATE TRIGGER statements: each call write moves its figures between rollup rows.

    The longest wait only grows: a call's wait is final once written (the dispatcher moves
    or re-dates calls only while they wait, wait_seconds still unset), so an update (OLD
    out, NEW in) does not lower it. A wait corrected by hand after the fact leaves the old
    maximum in its quarter hour until the next rebuild.
    """
    watched = "status, reason, wait_seconds, duration, queue_id, operator_id, start_time"
    return [
        f"CREATE TRIGGER call_stats_insert AFTER INSERT ON calls BEGIN\n"
        f"    {_changes('NEW.', 1, thresholds)}\nEND",
        f"CREATE TRIGGER call_stats_update AFTER UPDATE OF {watched} ON calls BEGIN\n"
        f"    {_changes('OLD.', -1, thresholds)}\n    {_changes('NEW.', 1, thresholds)}\nEND",
        f"CREATE TRIGGER call_stats_delete AFTER DELETE ON calls BEGIN\n"
        f"    {_changes('OLD.', -1, thresholds)}\nEND",
    ]


def rebuild_sql(thresholds: Thresholds) -> list[str]:
    """Refill every rollup from every call (one pass each over the covering index)."""
    return [sql for sql, _ in _rebuild(thresholds, since=None)]


def rebuild_since_sql(thresholds: Thresholds, day: str) -> list[tuple[str, tuple[str, ...]]]:
    """Refill the rollups' slots of UTC day `day` ('YYYY-MM-DD') and after from the calls.

    The slots before stay as they are: they hold the figures of calls a retention purge
    deleted (store/retention.py), which the calls can no longer give. A purge removes whole
    UTC days and keeps every call after the last one it removed, so the days rebuilt here
    have all their calls.
    """
    return _rebuild(thresholds, since=day)


def _rebuild(thresholds: Thresholds, since: str | None) -> list[tuple[str, tuple[str, ...]]]:
    figures = ", ".join(_aggregate(f, f.expression) for f in row_figures(thresholds))
    # Quarter-hour slots ('YYYY-MM-DDTHH:MM') of the day sort after the day itself.
    slots = "" if since is None else " WHERE slot >= ?"
    calls = "" if since is None else " WHERE start_time >= ?"
    also = "" if since is None else " AND start_time >= ?"
    params: tuple[str, ...] = () if since is None else (since,)
    statements: list[tuple[str, tuple[str, ...]]] = []
    for tables, slot in ((ROLLUP_TABLES, slot_expression()), (DAY_TABLES, day_expression())):
        statements += [
            (f"DELETE FROM {tables['queue']}{slots}", params),
            (f"DELETE FROM {tables['operator']}{slots}", params),
            (
                f"INSERT INTO {tables['queue']} (slot, queue_id, {', '.join(COLUMNS)})"
                f" SELECT {slot}, COALESCE(queue_id, ''), {figures}"
                f" FROM calls INDEXED BY {STATS_INDEX}{calls} GROUP BY 1, 2",
                params,
            ),
            (
                f"INSERT INTO {tables['operator']}"
                f" (slot, operator_id, queue_id, {', '.join(COLUMNS)})"
                f" SELECT {slot}, operator_id, COALESCE(queue_id, ''), {figures}"
                f" FROM calls INDEXED BY {STATS_INDEX}"
                f" WHERE operator_id IS NOT NULL{also} GROUP BY 1, 2, 3",
                params,
            ),
        ]
    return statements


def definition_digest(thresholds: Thresholds) -> str:
    text = "\n".join([*trigger_sql(thresholds), *rebuild_sql(thresholds)])
    return hashlib.sha256(text.encode()).hexdigest()
