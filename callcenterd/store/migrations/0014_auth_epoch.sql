-- 0014: a counter bumped by every change to what authenticating a request reads (issue 17).
-- The daemon keeps users and revoked tokens in memory; it reads this one row on every request
-- (store/users.py AuthEpoch, microseconds) and reads users and revocations again when the value
-- moved, whoever changed them: itself, the `callcenterd user` commands, or another daemon on
-- the same store. Operator rows count only for the columns a user shows (their phone), so
-- status and presence writes on every call never bump it.
CREATE TABLE auth_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO auth_epoch (id, value) VALUES (1, 0);

CREATE TRIGGER users_epoch_insert AFTER INSERT ON users BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER users_epoch_update AFTER UPDATE ON users BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER users_epoch_delete AFTER DELETE ON users BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER operators_epoch_insert AFTER INSERT ON operators BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER operators_epoch_update AFTER UPDATE OF user_id, extension, deleted_at ON operators
BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER operators_epoch_delete AFTER DELETE ON operators BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
-- A user shows the lock on their name (store/users.py joins login_failures).
CREATE TRIGGER login_failures_epoch_insert AFTER INSERT ON login_failures BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER login_failures_epoch_update AFTER UPDATE ON login_failures BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER login_failures_epoch_delete AFTER DELETE ON login_failures BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER revoked_tokens_epoch_insert AFTER INSERT ON revoked_tokens BEGIN
    UPDATE auth_epoch SET value = value + 1 WHERE id = 1;
END;
