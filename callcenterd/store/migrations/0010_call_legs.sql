-- 0010: each operator's part of a call (issue 11: transfers and hold). A row per leg the
-- daemon rang: who, on which Asterisk node, when it rang, was answered and ended, and how it
-- ended (busy | no_answer | unreachable | cancelled | transferred | target_hung_up | the
-- call's end reason). talk_seconds and hold_seconds are the answered part's, so a transferred
-- call's talk is split between the operators who had it. calls.hold_seconds is the call's
-- whole time on hold, counted apart from its talk (calls.duration keeps counting it).
ALTER TABLE calls ADD COLUMN hold_seconds REAL NOT NULL DEFAULT 0;

CREATE TABLE call_legs (
    call_id      TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    leg_id       TEXT NOT NULL,
    operator_id  TEXT REFERENCES operators (id) ON DELETE SET NULL,
    node         TEXT,
    rung_at      TEXT NOT NULL,
    answered_at  TEXT,
    ended_at     TEXT,
    outcome      TEXT,
    talk_seconds REAL NOT NULL DEFAULT 0,
    hold_seconds REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (call_id, leg_id)
) WITHOUT ROWID;

-- An operator's answered parts over a period (their talk and hold, transfers split).
CREATE INDEX call_legs_operator ON call_legs (operator_id, answered_at) WHERE answered_at IS NOT NULL;
