-- 0010: callbacks (issue 12). A waiting caller who presses 1 is called back and keeps their
-- place in line: `place_at` is their original arrival. `call_id` is the callback's own call
-- record (routed_by 'callback'), open until the callback is over; `origin_call_id` the call it
-- came from (the caller's, or a missed call a supervisor turned into a callback).
CREATE TABLE callbacks (
    id             TEXT PRIMARY KEY,
    queue_id       TEXT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    number         TEXT NOT NULL,
    status         TEXT NOT NULL
                   CHECK (status IN ('pending', 'dialing', 'completed', 'failed', 'cancelled')),
    call_id        TEXT REFERENCES calls (id) ON DELETE SET NULL,
    origin_call_id TEXT REFERENCES calls (id) ON DELETE SET NULL,
    priority       INTEGER NOT NULL DEFAULT 0,
    place_at       TEXT NOT NULL,
    scheduled_at   TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    operator_id    TEXT REFERENCES operators (id) ON DELETE SET NULL,
    reason         TEXT,
    requested_by   TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
-- One callback to serve per number and queue.
CREATE UNIQUE INDEX callbacks_one_open ON callbacks (queue_id, number)
    WHERE status IN ('pending', 'dialing');
CREATE INDEX callbacks_created ON callbacks (created_at);
CREATE INDEX callbacks_status ON callbacks (status);

-- Per queue: NULL follows the system's callback_enabled; the offer comes after this many
-- seconds of waiting.
ALTER TABLE queues ADD COLUMN callback_enabled INTEGER;
ALTER TABLE queues ADD COLUMN callback_offer_after INTEGER NOT NULL DEFAULT 60;
