-- 0007: failed logins and account lockouts (issue 10). Keyed by the case-folded username
-- that was tried, not by user id: names that exist and names that do not are counted and
-- locked the same way, so the answers never tell which is which. A row is forgotten once its
-- last failure is older than the lockout time (store/users.py LoginFailureRepository), so an
-- attacker trying many names grows the table only as fast as the rate limits let them.
CREATE TABLE login_failures (
    username_key    TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,   -- consecutive, since the last success or expiry
    last_failure_at TEXT NOT NULL,
    locked_until    TEXT                -- NULL: not locked
) WITHOUT ROWID;

CREATE INDEX login_failures_last ON login_failures (last_failure_at);
