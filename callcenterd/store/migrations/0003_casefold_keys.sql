-- Usernames and emails are unique and looked up ignoring case in every script, not only
-- ASCII (COLLATE NOCASE folds A-Z alone): keep a Unicode case-folded key beside each.
-- casefold() is registered on every connection by store/db.py.
ALTER TABLE users ADD COLUMN username_key TEXT;
ALTER TABLE users ADD COLUMN email_key TEXT;
UPDATE users SET username_key = casefold(username), email_key = casefold(email);
DROP INDEX users_username;
DROP INDEX users_email;
CREATE UNIQUE INDEX users_username_key ON users (username_key) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_email_key ON users (email_key) WHERE deleted_at IS NULL;
