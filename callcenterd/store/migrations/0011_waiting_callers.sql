-- 0011: the waiting caller (issue 12). A greeting (an Asterisk sound name) played
-- once on entry, and every `announce_every` seconds (0: never) the caller's place in line,
-- with the estimated wait when `announce_wait` is set.
ALTER TABLE queues ADD COLUMN greeting TEXT;
ALTER TABLE queues ADD COLUMN announce_every INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN announce_wait INTEGER NOT NULL DEFAULT 1;
-- Last-operator routing: a returning caller waits up to this many seconds for the operator
-- who served their number last (0: off).
ALTER TABLE queues ADD COLUMN last_operator_wait INTEGER NOT NULL DEFAULT 0;

-- A caller's priority (higher first), kept so a caller re-queued after a restart keeps it.
ALTER TABLE calls ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

-- VIP callers: a caller whose number is listed gets its priority (the higher of it and the
-- dialplan's). Keyed by the number's digits, so "+7 900 123-45-67" and "79001234567" match.
CREATE TABLE vip_callers (
    number_key TEXT PRIMARY KEY,
    number     TEXT NOT NULL,      -- as entered
    priority   INTEGER NOT NULL,   -- 1..100, higher first
    note       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
