-- 0005: per-quarter-hour rollups of the call figures, so a week or a month of dashboards reads
-- a few thousand pre-summed rows instead of aggregating every call (SQLite spends ~1-2 us per
-- call on the dashboards' sums even from the covering index of 0004: ~150 ms for a week of a
-- million-call history; the rollup answers in a few ms; bench/dashboards.py).
--
-- Only the tables live here. What each column counts depends on the service-level thresholds
-- (settings), so the triggers that keep the rollups in step with `calls` are generated from
-- the one definition in callcenterd/store/analytics.py (from analytics/kpis.py) and installed
-- by the daemon at start-up, which rebuilds both tables whenever that definition or the
-- thresholds changed (recorded in call_stats_definition). Until then the tables are empty
-- and unused.

CREATE TABLE call_stats_definition (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    definition TEXT NOT NULL,  -- a digest of the generated triggers (thresholds included)
    built_at   TEXT NOT NULL
);

-- slot: the UTC quarter hour the calls started in, 'YYYY-MM-DDTHH:MM'. queue_id '' = no queue.
CREATE TABLE call_stats_queue (
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

-- The same figures over the calls each operator answered (operator_id set on the call), by
-- queue too: a group's figures are its queues' calls plus its operators' calls from elsewhere.
CREATE TABLE call_stats_operator (
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
