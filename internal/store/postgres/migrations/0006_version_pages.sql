-- 0006_version_pages: a page of an agent's versions, newest first, is
-- read from this index without sorting the agent's every version.
CREATE INDEX agent_versions_created ON agent_versions (agent_id, created_at, ord);
