-- 0009 is the `supervise` branch's (issue 11, part 3). This placeholder keeps the numbering
-- without gaps on the `transfer` branch until both are merged: at the merge the supervise
-- branch's file of the same name replaces it (take theirs).
SELECT 1;
