-- 0012_reserved: a placeholder on the userauth branch only, so that the
-- migrations stay numbered without gaps while 0012 is written on another
-- branch of issue 17. Drop this file when that branch's 0012 is merged.
SELECT 1;
