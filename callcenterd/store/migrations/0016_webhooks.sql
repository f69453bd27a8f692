-- Webhooks for integrators (/api/admin/webhooks). Their deliveries are outbox rows
-- (kind 'webhook', recipient = the webhook's id, idempotency_key = the delivery id).
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    event_types TEXT NOT NULL,          -- JSON: "*" or a list of event types
    secret      TEXT NOT NULL,          -- encrypted (SecretBox); never answered in clear
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
-- A webhook's last deliveries, newest first.
CREATE INDEX outbox_webhook_deliveries ON outbox (recipient, id) WHERE kind = 'webhook';
