-- 0009: supervision (issue 11, part 3). A supervisor listens to, whispers to or barges into
-- an operator's live call from their own phone; every session is kept for the audit.

-- The phone of a user who is not an operator (an admin's, a manager's, a supervisor's own
-- extension, rung to supervise). An operator's extension stays on their operator row, where
-- routing reads it; the service keeps the two unique together.
ALTER TABLE users ADD COLUMN extension TEXT;
CREATE INDEX users_extension ON users (extension) WHERE deleted_at IS NULL AND extension IS NOT NULL;

CREATE TABLE supervision_sessions (
    id                    TEXT PRIMARY KEY,
    call_id               TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    supervisor_id         TEXT NOT NULL REFERENCES users (id),
    operator_id           TEXT,             -- the operator supervised
    node                  TEXT NOT NULL,    -- the Asterisk node of the channels below
    extension             TEXT NOT NULL,    -- the supervisor's phone that was rung
    supervisor_channel_id TEXT NOT NULL,
    operator_channel_id   TEXT NOT NULL,    -- the channel snooped on
    mode                  TEXT NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    state                 TEXT NOT NULL CHECK (state IN ('ringing', 'active', 'ended')),
    started_at            TEXT NOT NULL,    -- asked for
    answered_at           TEXT,             -- the supervisor's phone answered and was joined
    ended_at              TEXT,
    end_reason            TEXT
);
CREATE INDEX supervision_sessions_call ON supervision_sessions (call_id, started_at);
CREATE INDEX supervision_sessions_open ON supervision_sessions (state) WHERE state != 'ended';

-- Each mode a session was in, with its times (a mode change closes one and opens the next).
CREATE TABLE supervision_modes (
    session_id TEXT NOT NULL REFERENCES supervision_sessions (id) ON DELETE CASCADE,
    mode       TEXT NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    started_at TEXT NOT NULL,
    ended_at   TEXT
);
CREATE INDEX supervision_modes_session ON supervision_modes (session_id, started_at);
