-- 0013: PLACEHOLDER on branch memory only, so that 0014_memory applies here.
-- Another branch of issue 17 owns this number: delete this file when merging.
SELECT 1;
