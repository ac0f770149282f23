-- 0010_lifecycle: projects, principals and agents can be deleted.
--
-- A delete leaves the row as a tombstone with deleted_at set: the audit
-- trail's references (principal, key, project and agent ids) keep their
-- meaning, and a deleted id is never handed out again (creating a project
-- or deploying an agent with it is refused). A deleted principal's keys
-- are revoked in the same transaction; a deleted agent's versions and
-- secrets are removed, its invocations kept until retention purges them.
ALTER TABLE projects ADD COLUMN deleted_at INTEGER;
ALTER TABLE principals ADD COLUMN deleted_at INTEGER;
ALTER TABLE agents ADD COLUMN deleted_at INTEGER;

-- Listing a project's agents (to delete them with it).
CREATE INDEX agents_project ON agents (project_id, id);
