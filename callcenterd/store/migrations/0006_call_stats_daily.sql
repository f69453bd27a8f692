-- 0006: the same rollups by UTC day. A week of per-operator figures read ~40,000 quarter-hour
-- rows (~30 ms at a million calls); whole days read ~3,000. Windows use the days they cover
-- whole and the quarter hours at their edges (store/call_stats.py `rollup_sql`). Kept by the
-- generated triggers and rebuilt at the next start, like 0005's (the definition digest
-- changes with them).

-- slot: here the UTC day the calls started on, 'YYYY-MM-DD' (the same column name as 0005's
-- tables, so one generator writes both grains). queue_id '' = no queue.
CREATE TABLE call_stats_queue_day (
    slot                      TEXT NOT NULL,
    queue_id                  TEXT NOT NULL,
    entered                   INTEGER NOT NULL,
    answered                  INTEGER NOT NULL,
    answered_within_threshold INTEGER NOT NULL,
    missed                    INTEGER NOT NULL,
    abandoned                 INTEGER NOT NULL,
    short_abandoned           INTEGER NOT NULL,
    unserved                  INTEGER NOT NULL,
    answered_wait_seconds     REAL NOT NULL,
    longest_wait_seconds      REAL NOT NULL,
    completed                 INTEGER NOT NULL,
    talk_seconds              INTEGER NOT NULL,
    PRIMARY KEY (slot, queue_id)
) WITHOUT ROWID;

CREATE TABLE call_stats_operator_day (
    slot                      TEXT NOT NULL,
    operator_id               TEXT NOT NULL,
    queue_id                  TEXT NOT NULL,
    entered                   INTEGER NOT NULL,
    answered                  INTEGER NOT NULL,
    answered_within_threshold INTEGER NOT NULL,
    missed                    INTEGER NOT NULL,
    abandoned                 INTEGER NOT NULL,
    short_abandoned           INTEGER NOT NULL,
    unserved                  INTEGER NOT NULL,
    answered_wait_seconds     REAL NOT NULL,
    longest_wait_seconds      REAL NOT NULL,
    completed                 INTEGER NOT NULL,
    talk_seconds              INTEGER NOT NULL,
    PRIMARY KEY (slot, operator_id, queue_id)
) WITHOUT ROWID;
