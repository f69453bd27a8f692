-- One durable outbox for everything that leaves the daemon (SMS, email, webhooks). A row is
-- written in the same transaction as the fact that caused it; the outbox worker sends it.
-- queued -> sent | failed | cancelled; `failed` and `cancelled` rows may be queued again.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('sms', 'email', 'webhook')),
    recipient       TEXT NOT NULL,
    topic           TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL UNIQUE,
    content         TEXT NOT NULL,                   -- JSON, by kind (domain/messages.py)
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sent', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    last_status_code INTEGER,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'queued';
CREATE INDEX outbox_state ON outbox (state, id);
-- The throttle: was a message of this kind and topic enqueued to this recipient lately?
CREATE INDEX outbox_recent ON outbox (kind, recipient, topic, created_at);
