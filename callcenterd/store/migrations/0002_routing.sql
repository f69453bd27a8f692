-- 0002: what the routing engine needs to know about queues and operators, and who was rung for
-- each call. Additive only: new columns with defaults, indexes, and an index table that triggers
-- keep in step with `calls`; no row is rewritten except to fill a new column.

-- --- queues: routing configuration ----------------------------------------------------------
ALTER TABLE queues ADD COLUMN numbers TEXT NOT NULL DEFAULT '[]';          -- JSON: dialed numbers
ALTER TABLE queues ADD COLUMN required_skills TEXT NOT NULL DEFAULT '[]';  -- JSON: skill names
ALTER TABLE queues ADD COLUMN is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1));
ALTER TABLE queues ADD COLUMN ring_timeout INTEGER NOT NULL DEFAULT 15 CHECK (ring_timeout >= 1);
ALTER TABLE queues ADD COLUMN retry_delay INTEGER NOT NULL DEFAULT 5 CHECK (retry_delay >= 0);
ALTER TABLE queues ADD COLUMN wrapup_seconds INTEGER NOT NULL DEFAULT 0
    CHECK (wrapup_seconds >= 0);
ALTER TABLE queues ADD COLUMN join_empty INTEGER NOT NULL DEFAULT 1 CHECK (join_empty IN (0, 1));
ALTER TABLE queues ADD COLUMN overflow_action TEXT NOT NULL DEFAULT 'hangup'
    CHECK (overflow_action IN ('hangup', 'queue', 'dialplan'));
ALTER TABLE queues ADD COLUMN overflow_queue_id TEXT REFERENCES queues (id) ON DELETE SET NULL;
ALTER TABLE queues ADD COLUMN music_class TEXT NOT NULL DEFAULT 'default';
-- Deleted queues are kept (like users and operators) so call history and statistics keep them;
-- names and asterisk names only need to be unique among live queues.
ALTER TABLE queues ADD COLUMN deleted_at TEXT;
DROP INDEX queues_name;
CREATE UNIQUE INDEX queues_name ON queues (name COLLATE NOCASE) WHERE deleted_at IS NULL;
DROP INDEX queues_asterisk_name;
CREATE UNIQUE INDEX queues_asterisk_name ON queues (asterisk_name) WHERE deleted_at IS NULL;
-- At most one default queue (where calls matching no queue land).
CREATE UNIQUE INDEX queues_default ON queues (is_default) WHERE is_default = 1;

-- --- queue members: their order (linear, rrordered) -----------------------------------------
ALTER TABLE queue_members ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
-- Existing members keep the order they were added in.
UPDATE queue_members SET position = (
    SELECT COUNT(*) FROM queue_members AS earlier
    WHERE earlier.queue_id = queue_members.queue_id AND earlier.rowid < queue_members.rowid
);
CREATE INDEX queue_members_position ON queue_members (queue_id, position);

-- --- operators: what they (or a supervisor) chose -------------------------------------------
-- `status`/`status_reason` stay the displayed status, written by the routing dispatcher;
-- `presence` is the choice it derives that from. Everyone starts offline: nobody is rung
-- before choosing to be.
ALTER TABLE operators ADD COLUMN presence TEXT NOT NULL DEFAULT 'offline'
    CHECK (presence IN ('online', 'paused', 'offline'));
ALTER TABLE operators ADD COLUMN presence_reason TEXT;  -- why paused (API status 'busy')

-- --- calls: who was rung ----------------------------------------------------------------------
ALTER TABLE calls ADD COLUMN operators_tried TEXT NOT NULL DEFAULT '[]';  -- JSON: operator ids
CREATE INDEX calls_status_start ON calls (status, start_time);
CREATE INDEX call_events_operator_at ON call_events (operator_id, at)
    WHERE operator_id IS NOT NULL;

-- Every (operator, call) pair where the operator was rung for or answered the call, so "an
-- operator's calls" is an index lookup rather than a scan of JSON arrays. Kept by the triggers
-- below from calls.operator_id and calls.operators_tried: writers of `calls` need not know.
CREATE TABLE call_operators (
    operator_id TEXT NOT NULL,
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    start_time  TEXT NOT NULL,  -- the call's, copied so lists come out in order from the index
    PRIMARY KEY (operator_id, call_id)
);
CREATE INDEX call_operators_operator_start ON call_operators (operator_id, start_time);
CREATE INDEX call_operators_call ON call_operators (call_id);

CREATE TRIGGER calls_operators_insert AFTER INSERT ON calls BEGIN
    INSERT OR IGNORE INTO call_operators (operator_id, call_id, start_time)
        SELECT value, NEW.id, NEW.start_time
        FROM json_each(CASE WHEN json_valid(NEW.operators_tried) THEN NEW.operators_tried
                            ELSE '[]' END)
        WHERE type = 'text';
    INSERT OR IGNORE INTO call_operators (operator_id, call_id, start_time)
        SELECT NEW.operator_id, NEW.id, NEW.start_time WHERE NEW.operator_id IS NOT NULL;
END;

CREATE TRIGGER calls_operators_update
AFTER UPDATE OF operator_id, operators_tried, start_time ON calls BEGIN
    DELETE FROM call_operators WHERE call_id = NEW.id;
    INSERT OR IGNORE INTO call_operators (operator_id, call_id, start_time)
        SELECT value, NEW.id, NEW.start_time
        FROM json_each(CASE WHEN json_valid(NEW.operators_tried) THEN NEW.operators_tried
                            ELSE '[]' END)
        WHERE type = 'text';
    INSERT OR IGNORE INTO call_operators (operator_id, call_id, start_time)
        SELECT NEW.operator_id, NEW.id, NEW.start_time WHERE NEW.operator_id IS NOT NULL;
END;

INSERT OR IGNORE INTO call_operators (operator_id, call_id, start_time)
    SELECT operator_id, id, start_time FROM calls WHERE operator_id IS NOT NULL;
