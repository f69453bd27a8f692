-- 0013: the operators' figures (talk, occupancy, calls answered) come from call_legs since
-- issue 11 split transferred calls between operators. Calls answered before 0010 have no leg:
-- give each one the leg it had (its operator, answered to its end, its whole talk), so the
-- figures of those periods stay what they were. The ring time before 0010 is unknown: the
-- leg rang when it was answered.
INSERT INTO call_legs (
    call_id, leg_id, operator_id, node, rung_at, answered_at, ended_at, outcome,
    talk_seconds, hold_seconds
)
SELECT c.id, c.id || '-backfill', c.operator_id, NULL, c.answer_time, c.answer_time,
       c.end_time, CASE WHEN c.end_time IS NULL THEN NULL ELSE COALESCE(c.reason, 'completed') END,
       COALESCE(c.duration, 0), 0
FROM calls c
WHERE c.answer_time IS NOT NULL AND c.operator_id IS NOT NULL
  AND c.operator_id IN (SELECT id FROM operators)
  AND NOT EXISTS (SELECT 1 FROM call_legs l WHERE l.call_id = c.id);
