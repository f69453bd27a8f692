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

-- A spell is open exactly while the operator row is live, its user active, and the presence
-- paused: the triggers below open and close spells as any of the three changes.
CREATE TRIGGER operators_pause_insert AFTER INSERT ON operators
WHEN NEW.presence = 'paused' AND NEW.deleted_at IS NULL
    AND EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.user_id AND u.is_active = 1) BEGIN
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
        WHERE NEW.presence = 'paused' AND NEW.deleted_at IS NULL
            AND EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.user_id AND u.is_active = 1);
END;

-- A deleted operator's pause ends with them (a role change away from operator deletes the
-- row too); a row brought back while still paused starts a new spell.
CREATE TRIGGER operators_pause_delete AFTER UPDATE OF deleted_at ON operators
WHEN NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL BEGIN
    UPDATE operator_pause_intervals SET ended_at = NEW.deleted_at
        WHERE operator_id = NEW.id AND ended_at IS NULL;
END;

CREATE TRIGGER operators_pause_revive AFTER UPDATE OF deleted_at ON operators
WHEN NEW.deleted_at IS NULL AND OLD.deleted_at IS NOT NULL AND NEW.presence = 'paused'
    AND EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.user_id AND u.is_active = 1) BEGIN
    INSERT OR IGNORE INTO operator_pause_intervals (operator_id, reason, started_at)
        VALUES (NEW.id, COALESCE(NEW.presence_reason, 'paused'), NEW.updated_at);
END;

-- A deactivated user is not routed: their pause stops counting, and starts again (as a new
-- spell) if they are activated while still paused.
CREATE TRIGGER users_pause_deactivate AFTER UPDATE OF is_active ON users
WHEN OLD.is_active = 1 AND NEW.is_active = 0 BEGIN
    UPDATE operator_pause_intervals SET ended_at = NEW.updated_at
        WHERE ended_at IS NULL
            AND operator_id IN (SELECT o.id FROM operators o WHERE o.user_id = NEW.id);
END;

CREATE TRIGGER users_pause_activate AFTER UPDATE OF is_active ON users
WHEN OLD.is_active = 0 AND NEW.is_active = 1 AND NEW.deleted_at IS NULL BEGIN
    INSERT OR IGNORE INTO operator_pause_intervals (operator_id, reason, started_at)
        SELECT o.id, COALESCE(o.presence_reason, 'paused'), NEW.updated_at FROM operators o
        WHERE o.user_id = NEW.id AND o.deleted_at IS NULL AND o.presence = 'paused';
END;

-- Operators paused now start their history at their row's last change.
INSERT INTO operator_pause_intervals (operator_id, reason, started_at)
    SELECT o.id, COALESCE(o.presence_reason, 'paused'), o.updated_at FROM operators o
    JOIN users u ON u.id = o.user_id
    WHERE o.presence = 'paused' AND o.deleted_at IS NULL AND u.is_active = 1;
