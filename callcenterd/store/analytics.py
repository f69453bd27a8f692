"""The SQL behind every dashboard: aggregates only, never rows of calls brought to Python.

Call figures come from the rollups (by quarter hour, migration 0005, and by day, 0006: whole
days from the latter) when the window starts and ends on quarter hours (every named period
does) and the scope is all calls, some queues or some operators; otherwise (a window such as
09:07 to 09:12) from one range of the covering index `calls_stats` (migration 0004). Both are
generated from one definition, `store/call_stats.py`, which follows `analytics/kpis.py`.

An operator's own figures read `calls_operator_start`, `call_operators` (who was rung) and
`call_events_operator_at`; presence history reads `operator_presence_log` (0004). Pauses
are the exception to "aggregates only": their spells (`operator_pause_intervals`, 0008, a
few a day per operator) are read as rows and clipped to the window by analytics/pauses.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from callcenterd.analytics import kpis
from callcenterd.analytics.kpis import CallCounts
from callcenterd.analytics.pauses import PauseSpell
from callcenterd.analytics.windows import HOURS, offset_stretches
from callcenterd.domain.clock import from_iso, to_iso
from callcenterd.store.call_legs import CallLegs
from callcenterd.store.call_stats import (
    STATS_INDEX,
    TRIGGERS,
    Grouping,
    Thresholds,
    condition_sql,
    definition_digest,
    on_quarter,
    raw_sql,
    rebuild_since_sql,
    rollup_sql,
    trigger_sql,
)
from callcenterd.store.db import Database, fetch_all_in, marks


@dataclass(frozen=True, slots=True)
class StatsScope:
    """Which calls count. Nothing set: all calls.

    queue_ids: calls of these queues; with operator_ids too: calls of these queues OR
    answered by these operators (a group: the queues its operators serve, and the calls
    they answered wherever they came from).
    """

    queue_ids: tuple[str, ...] | None = None
    operator_ids: tuple[str, ...] | None = None
    nothing: bool = False


@dataclass(frozen=True, slots=True)
class RatedFigures:
    handled: int  # completed calls they answered
    ratings: int
    rating_mean: float | None


@dataclass(frozen=True, slots=True)
class OperatorName:
    id: str
    name: str
    extension: str
    deleted: bool


def scope_sql(scope: StatsScope) -> tuple[str, list[Any]]:
    """A condition on `calls` (no alias) for the scope; '1' for everything."""
    if scope.nothing:
        return "0", []
    return condition_sql(scope.queue_ids, scope.operator_ids)


def _counts(row: Any) -> CallCounts:
    return CallCounts(
        entered=int(row["entered"]),
        answered=int(row["answered"]),
        answered_within_threshold=int(row["answered_within_threshold"]),
        missed=int(row["missed"]),
        abandoned=int(row["abandoned"]),
        short_abandoned=int(row["short_abandoned"]),
        unserved=int(row["unserved"]),
        answered_wait_seconds=float(row["answered_wait_seconds"]),
        longest_wait_seconds=float(row["longest_wait_seconds"]),
        completed=int(row["completed"]),
        talk_seconds=int(row["talk_seconds"]),
    )


Source = Literal["auto", "rollup", "index", "scan"]


def figures_query(
    grouping: Grouping,
    start: datetime,
    end: datetime,
    scope: StatsScope,
    thresholds: Thresholds,
    source: Source = "auto",
    utc_offset_minutes: int = 0,
) -> tuple[str, list[Any]]:
    """The aggregate query for `grouping` over the calls started in [start, end) in `scope`.

    auto: the rollups when the window is on quarter hours (every named period is), else the
    covering index; the others force one (`scan`, no index at all, is the benchmark's
    baseline).
    """
    aligned = on_quarter(start) and on_quarter(end)
    if source == "rollup" or (source == "auto" and aligned and not scope.nothing):
        if not aligned:
            raise ValueError("the rollups hold quarter hours: start and end must be on one")
        return rollup_sql(
            grouping, start, end, scope.queue_ids, scope.operator_ids, utc_offset_minutes
        )
    condition = ("0", []) if scope.nothing else condition_sql(scope.queue_ids, scope.operator_ids)
    table = "calls NOT INDEXED" if source == "scan" else f"calls INDEXED BY {STATS_INDEX}"
    return raw_sql(grouping, start, end, condition, thresholds, table, utc_offset_minutes)


class AnalyticsStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.legs = CallLegs(db)  # each operator's part of calls (transfers split)

    # --- call figures -----------------------------------------------------------------------
    async def prepare_rollups(self, thresholds: Thresholds) -> bool:
        """Install the rollups' triggers for these thresholds and rebuild the rollups, unless
        they already follow this very definition. True when rebuilt.

        Rebuilt from the UTC day of the oldest call kept on: the days before hold only calls
        a retention purge deleted, whose figures the rollups alone still have (counted with
        the thresholds of their time). No call at all: nothing to rebuild from.
        """
        digest = definition_digest(thresholds)
        stored = await self._db.fetch_value(
            "SELECT definition FROM call_stats_definition WHERE id = 1"
        )
        if stored == digest:
            return False
        async with self._db.transaction() as conn:
            for name in TRIGGERS:
                await conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            for statement in trigger_sql(thresholds):
                await conn.execute(statement)
            oldest = await fetch_all_in(
                conn, f"SELECT MIN(start_time) FROM calls INDEXED BY {STATS_INDEX}"
            )
            if oldest[0][0] is not None:
                for sql, params in rebuild_since_sql(thresholds, str(oldest[0][0])[:10]):
                    await conn.execute(sql, params)
            await conn.execute(
                "INSERT INTO call_stats_definition (id, definition, built_at)"
                " VALUES (1, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
                " ON CONFLICT (id) DO UPDATE SET definition = excluded.definition,"
                " built_at = excluded.built_at",
                (digest,),
            )
        return True

    async def _figures(
        self,
        grouping: Grouping,
        start: datetime,
        end: datetime,
        scope: StatsScope,
        thresholds: Thresholds,
        utc_offset_minutes: int = 0,
    ) -> list[Any]:
        if scope.nothing:
            return [] if grouping != "total" else [None]
        return await self._db.fetch_all(
            *figures_query(grouping, start, end, scope, thresholds, "auto", utc_offset_minutes)
        )

    async def totals(
        self, start: datetime, end: datetime, scope: StatsScope, thresholds: Thresholds
    ) -> CallCounts:
        rows = await self._figures("total", start, end, scope, thresholds)
        # An aggregate without GROUP BY answers one row (None: nothing in scope).
        return CallCounts() if rows[0] is None else _counts(rows[0])

    async def by_local_hour(
        self,
        start: datetime,
        end: datetime,
        scope: StatsScope,
        thresholds: Thresholds,
        tz: tzinfo,
    ) -> list[CallCounts]:
        """Counts per local hour of day, all 24 (zero-filled), summed over the window.

        SQL groups by local hour, one query per stretch of constant UTC offset (a DST change
        makes two), so only 24 rows per stretch come back to Python.
        """
        hours = [CallCounts() for _ in range(HOURS)]
        for first, after, offset in offset_stretches(start, end, tz):
            for row in await self._figures("hour", first, after, scope, thresholds, offset):
                hours[row["key"]] = hours[row["key"]] + _counts(row)
        return hours

    async def by_queue(
        self, start: datetime, end: datetime, scope: StatsScope, thresholds: Thresholds
    ) -> dict[str | None, CallCounts]:
        """Queue id (None: calls that reached no queue) -> counts."""
        rows = await self._figures("queue", start, end, scope, thresholds)
        return {(row["key"] or None): _counts(row) for row in rows if row["entered"]}

    async def by_operator(
        self, start: datetime, end: datetime, scope: StatsScope, thresholds: Thresholds
    ) -> dict[str, CallCounts]:
        """Counts of the calls each operator answered (the operator the call went to)."""
        rows = await self._figures("operator", start, end, scope, thresholds)
        return {row["key"]: _counts(row) for row in rows if row["entered"]}

    async def started_since(self, since: datetime, scope: StatsScope) -> int:
        condition, params = scope_sql(scope)
        return int(
            await self._db.fetch_value(
                f"SELECT COUNT(*) FROM calls INDEXED BY {STATS_INDEX}"
                f" WHERE start_time >= ? AND {condition}",
                (to_iso(since), *params),
            )
        )

    # --- one operator -----------------------------------------------------------------------
    async def offered(
        self, operator_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, int]:
        """Operator id -> distinct calls (started in the period) they were rung for or
        answered; one index range per operator."""
        if not operator_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT o.id AS id, (SELECT COUNT(*) FROM call_operators co"
            " WHERE co.operator_id = o.id AND co.start_time >= ? AND co.start_time < ?) AS n"
            f" FROM operators o WHERE o.id IN ({marks(operator_ids)})",
            (to_iso(start), to_iso(end), *operator_ids),
        )
        return {row["id"]: int(row["n"]) for row in rows}

    async def rated(self, operator_id: str, start: datetime, end: datetime) -> RatedFigures:
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n, COUNT(rating) AS rated, AVG(rating) AS mean"
            " FROM calls INDEXED BY calls_operator_start"
            " WHERE operator_id = ? AND start_time >= ? AND start_time < ? AND status = ?",
            (operator_id, to_iso(start), to_iso(end), kpis.COMPLETED_STATUS),
        )
        assert row is not None
        return RatedFigures(
            handled=int(row["n"]),
            ratings=int(row["rated"]),
            rating_mean=None if row["mean"] is None else float(row["mean"]),
        )

    async def unanswered_rings(self, operator_id: str, start: datetime, end: datetime) -> int:
        """Rings of this operator that ended unanswered ('leg_ended', outcome no_answer)."""
        return int(
            await self._db.fetch_value(
                "SELECT COUNT(*) FROM call_events WHERE operator_id = ? AND at >= ? AND at < ?"
                " AND kind = 'leg_ended' AND json_extract(data, '$.outcome') = 'no_answer'",
                (operator_id, to_iso(start), to_iso(end)),
            )
        )

    async def resolved_first_time(
        self, operator_id: str, start: datetime, end: datetime, window_hours: float
    ) -> int:
        """Completed calls of the operator whose caller did not call again (any queue, any
        outcome) within `window_hours` of the call's end."""
        return int(
            await self._db.fetch_value(
                "SELECT COUNT(*) FROM calls c INDEXED BY calls_operator_start"
                " WHERE c.operator_id = ? AND c.start_time >= ? AND c.start_time < ?"
                " AND c.status = ? AND NOT EXISTS ("
                " SELECT 1 FROM calls n INDEXED BY calls_caller_start"
                " WHERE n.caller_number = c.caller_number"
                " AND n.start_time > c.start_time AND n.id != c.id"
                " AND julianday(n.start_time)"
                " <= julianday(COALESCE(c.end_time, c.start_time)) + ? / 24.0)",
                (operator_id, to_iso(start), to_iso(end), kpis.COMPLETED_STATUS, window_hours),
            )
        )

    async def logged_in_seconds(
        self, operator_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, float]:
        """Operator id -> seconds of [start, end) with presence online or paused.

        Each log entry lasts until the operator's next entry (or `end`); the entry in force
        at `start` is the last one before it. `end` should not lie in the future.
        """
        if not operator_ids:
            return {}
        lo, hi = to_iso(start), to_iso(end)
        rows = await self._db.fetch_all(
            "WITH spans AS ("
            " SELECT l.operator_id, l.at, l.presence,"
            " LEAD(l.at) OVER (PARTITION BY l.operator_id ORDER BY l.at, l.id) AS until"
            " FROM operator_presence_log l"
            f" WHERE l.operator_id IN ({marks(operator_ids)}) AND l.at < ?"
            " AND l.at >= COALESCE((SELECT MAX(p.at) FROM operator_presence_log p"
            " WHERE p.operator_id = l.operator_id AND p.at <= ?), ''))"
            " SELECT operator_id, TOTAL(MAX(0, julianday(MIN(COALESCE(until, ?), ?))"
            " - julianday(MAX(at, ?)))) * 86400 AS seconds"
            " FROM spans WHERE presence != 'offline' GROUP BY operator_id",
            (*operator_ids, hi, lo, hi, hi, lo),
        )
        return {row["operator_id"]: float(row["seconds"]) for row in rows}

    async def pause_spells(
        self, operator_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[PauseSpell]:
        """The operators' pause spells (0008) that overlap [start, end), open ones too."""
        if not operator_ids:
            return []
        rows = await self._db.fetch_all(
            "SELECT operator_id, reason, started_at, ended_at FROM operator_pause_intervals"
            f" WHERE operator_id IN ({marks(operator_ids)}) AND started_at < ?"
            " AND (ended_at IS NULL OR ended_at > ?) ORDER BY operator_id, started_at, id",
            (*operator_ids, to_iso(end), to_iso(start)),
        )
        return [
            PauseSpell(
                operator_id=row["operator_id"],
                reason=row["reason"],
                started_at=from_iso(row["started_at"]),
                ended_at=from_iso(row["ended_at"]) if row["ended_at"] else None,
            )
            for row in rows
        ]

    # --- live state -------------------------------------------------------------------------
    async def answered_now(self, scope: StatsScope) -> dict[str, datetime]:
        """Calls being talked on now: operator id -> when their earliest open call was
        answered (the open-calls index)."""
        condition, params = scope_sql(scope)
        rows = await self._db.fetch_all(
            # The IN term matches the partial index calls_open (open calls only) word for word,
            # so SQLite may use it: without, this walks every answered call in history.
            "SELECT operator_id, MIN(answer_time) AS answered FROM calls INDEXED BY calls_open"
            " WHERE status IN ('incoming', 'answered') AND status = 'answered'"
            f" AND operator_id IS NOT NULL AND {condition}"
            " GROUP BY operator_id",
            params,
        )
        return {row["operator_id"]: from_iso(row["answered"]) for row in rows if row["answered"]}

    async def talking_calls(self, scope: StatsScope) -> int:
        condition, params = scope_sql(scope)
        return int(
            await self._db.fetch_value(
                "SELECT COUNT(*) FROM calls INDEXED BY calls_open"
                " WHERE status IN ('incoming', 'answered') AND status = 'answered'"
                f" AND {condition}",
                params,
            )
        )

    # --- names and groups -------------------------------------------------------------------
    async def group_queue_ids(self, group_id: str) -> tuple[str, ...]:
        """Queues (deleted ones too: their history) having a member of the group."""
        rows = await self._db.fetch_all(
            "SELECT DISTINCT m.queue_id FROM queue_members m"
            " JOIN operators o ON o.id = m.operator_id WHERE o.group_id = ?"
            " ORDER BY m.queue_id",
            (group_id,),
        )
        return tuple(row["queue_id"] for row in rows)

    async def group_operator_ids(self, group_id: str) -> tuple[str, ...]:
        rows = await self._db.fetch_all(
            "SELECT id FROM operators WHERE group_id = ? ORDER BY id", (group_id,)
        )
        return tuple(row["id"] for row in rows)

    async def group_exists(self, group_id: str) -> bool:
        row = await self._db.fetch_one("SELECT 1 FROM groups WHERE id = ?", (group_id,))
        return row is not None

    async def queue_names(self) -> dict[str, str]:
        """Every queue's name, deleted ones included (their calls keep their name)."""
        rows = await self._db.fetch_all("SELECT id, name FROM queues")
        return {row["id"]: row["name"] for row in rows}

    async def operator_names(self, operator_ids: Sequence[str]) -> dict[str, OperatorName]:
        if not operator_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT o.id, u.name, o.extension, o.deleted_at FROM operators o"
            f" JOIN users u ON u.id = o.user_id WHERE o.id IN ({marks(operator_ids)})",
            tuple(operator_ids),
        )
        return {
            row["id"]: OperatorName(
                row["id"], row["name"], row["extension"], row["deleted_at"] is not None
            )
            for row in rows
        }

    async def live_operator_ids(self, group_id: str | None) -> tuple[str, ...]:
        condition = " AND group_id = ?" if group_id is not None else ""
        rows = await self._db.fetch_all(
            f"SELECT id FROM operators WHERE deleted_at IS NULL{condition} ORDER BY id",
            (group_id,) if group_id is not None else (),
        )
        return tuple(row["id"] for row in rows)
