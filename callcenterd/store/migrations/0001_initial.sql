-- Timestamps are UTC ISO-8601 with microseconds and 'Z' (fixed width, so they sort as text).
-- IDs are UUID strings. Deleted users and operators are kept (deleted_at) so call history,
-- statistics and the audit log keep their names; uniqueness only counts live rows.

CREATE TABLE health (checked_at TEXT);
INSERT INTO health (checked_at) VALUES (NULL);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX groups_name ON groups (name COLLATE NOCASE);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    username         TEXT NOT NULL,
    email            TEXT NOT NULL,
    name             TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'supervisor', 'operator')),
    group_id         TEXT REFERENCES groups (id) ON DELETE RESTRICT,
    is_active        INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    -- Tokens carry the generation they were issued under; bumping it revokes them all.
    token_generation INTEGER NOT NULL DEFAULT 0,
    password_changed_at TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
);
CREATE UNIQUE INDEX users_username ON users (username COLLATE NOCASE) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_email ON users (email COLLATE NOCASE) WHERE deleted_at IS NULL;
CREATE INDEX users_role ON users (role) WHERE deleted_at IS NULL;
CREATE INDEX users_group ON users (group_id);

CREATE TABLE operators (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    extension            TEXT NOT NULL,
    group_id             TEXT REFERENCES groups (id) ON DELETE RESTRICT,
    status               TEXT NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'busy', 'offline')),
    status_reason        TEXT,
    skills               TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    max_concurrent_calls INTEGER NOT NULL DEFAULT 1 CHECK (max_concurrent_calls >= 1),
    last_activity        TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    deleted_at           TEXT
);
CREATE UNIQUE INDEX operators_extension ON operators (extension) WHERE deleted_at IS NULL;
CREATE INDEX operators_group ON operators (group_id);

CREATE TABLE queues (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    asterisk_name TEXT NOT NULL,
    max_wait_time INTEGER NOT NULL DEFAULT 300,
    priority      INTEGER NOT NULL DEFAULT 1,
    strategy      TEXT NOT NULL DEFAULT 'ringall',
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX queues_name ON queues (name COLLATE NOCASE);
CREATE UNIQUE INDEX queues_asterisk_name ON queues (asterisk_name);

CREATE TABLE queue_members (
    queue_id    TEXT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    operator_id TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    penalty     INTEGER NOT NULL DEFAULT 0 CHECK (penalty >= 0),
    PRIMARY KEY (queue_id, operator_id)
);
CREATE INDEX queue_members_operator ON queue_members (operator_id);

CREATE TABLE calls (
    id            TEXT PRIMARY KEY,
    channel_id    TEXT NOT NULL,
    caller_number TEXT NOT NULL,
    called_number TEXT,
    operator_id   TEXT REFERENCES operators (id) ON DELETE SET NULL,
    queue_id      TEXT REFERENCES queues (id) ON DELETE SET NULL,
    status        TEXT NOT NULL CHECK (status IN ('incoming', 'answered', 'completed', 'missed')),
    reason        TEXT,
    start_time    TEXT NOT NULL,
    answer_time   TEXT,
    end_time      TEXT,
    duration      INTEGER,
    wait_seconds  REAL,
    recording     TEXT,
    notes         TEXT,
    rating        INTEGER CHECK (rating BETWEEN 1 AND 5),
    routed_by     TEXT NOT NULL DEFAULT 'ari',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX calls_start ON calls (start_time);
CREATE INDEX calls_operator_start ON calls (operator_id, start_time);
CREATE INDEX calls_queue_start ON calls (queue_id, start_time);
CREATE INDEX calls_open ON calls (status) WHERE status IN ('incoming', 'answered');
CREATE INDEX calls_channel ON calls (channel_id);
CREATE INDEX calls_caller_start ON calls (caller_number, start_time);

-- The timeline of a call: what happened, when, with whom.
CREATE TABLE call_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    operator_id TEXT,
    data        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX call_events_call ON call_events (call_id, id);

-- SystemSettings as one JSON document; the Asterisk password inside it is encrypted.
CREATE TABLE system_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    data       TEXT NOT NULL,
    updated_by TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor_id   TEXT,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT,
    changes    TEXT NOT NULL DEFAULT '{}',
    request_id TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);
