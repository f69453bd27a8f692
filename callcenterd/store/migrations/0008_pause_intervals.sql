-- 0008: pauses with reasons (issue 11, part 4). One row per spell an operator spent paused
-- (the API's `busy`) under one reason, from `started_at` to `ended_at` (NULL while it lasts).
-- Kept by the triggers below from the operators row, like the presence log (0004), so every
-- writer of a presence (the operator service, the engine's autopause, user edits) is
-- followed without knowing about it; the time is the row's updated_at, which they all set.
-- A pause chosen without a reason is kept as 'paused'. A change of reason while paused
-- closes one spell and opens the next at the same instant.
--
-- A daemon restart leaves an open spell open: the presence is stored and the routing engine
-- resumes with it, so the operator is still paused after the restart and the spell goes on
-- (the time the daemon was down counts as the pause it was in, as logged-in time does).
-- Before 0008 an autopause kept its reason in status_reason only, which the shown status
-- overwrites (unreachable...): from now on the presence keeps its own reason.
UPDATE operators SET presence_reason = 'no_answer'
    WHERE presence = 'paused' AND presence_reason IS NULL AND status_reason = 'no_answer';

CREATE TABLE operator_pause_intervals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id TEXT NOT NULL,
    reason      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX operator_pause_intervals_operator ON operator_pause_intervals (operator_id, started_at);
-- At most one open spell per operator.
CREATE UNIQUE INDEX operator_pause_intervals_open ON operator_pause_intervals (operator_id)
    WHERE ended_at IS NULL;

CREATE TRIGGER operators_pause_insert AFTER INSERT ON operators
WHEN NEW.presence = 'paused' AND NEW.deleted_at IS NULL BEGIN
    INSERT INTO operator_pause_intervals (operator_id, reason, started_at)
        VALUES (NEW.id, COALESCE(NEW.presence_reason, 'paused'), NEW.updated_at);
END;

CREATE TRIGGER operators_pause_update AFTER UPDATE OF presence, presence_reason ON operators
WHEN (NEW.presence IS NOT OLD.presence OR NEW.presence_reason IS NOT OLD.presence_reason)
    AND (NEW.presence = 'paused' OR OLD.presence = 'paused') BEGIN
    UPDATE operator_pause_intervals SET ended_at = NEW.updated_at
        WHERE operator_id = NEW.id AND ended_at IS NULL;
    INSERT INTO operator_pause_intervals (operator_id, reason, started_at)
        SELECT NEW.id, COALESCE(NEW.presence_reason, 'paused'), NEW.updated_at
        WHERE NEW.presence = 'paused' AND NEW.deleted_at IS NULL;
END;

-- A deleted operator's pause ends with them.
CREATE TRIGGER operators_pause_delete AFTER UPDATE OF deleted_at ON operators
WHEN NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL BEGIN
    UPDATE operator_pause_intervals SET ended_at = NEW.deleted_at
        WHERE operator_id = NEW.id AND ended_at IS NULL;
END;

-- Operators paused now start their history at their row's last change.
INSERT INTO operator_pause_intervals (operator_id, reason, started_at)
    SELECT id, COALESCE(presence_reason, 'paused'), updated_at
    FROM operators WHERE presence = 'paused' AND deleted_at IS NULL;
