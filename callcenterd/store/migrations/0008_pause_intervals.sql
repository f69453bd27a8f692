-- 0008 is the `pause` branch's (issue 11, part 4). This placeholder keeps the numbering
-- without gaps on the `supervise` branch until both are merged: at the merge the pause
-- branch's file of the same name replaces it (take theirs).
SELECT 1;
