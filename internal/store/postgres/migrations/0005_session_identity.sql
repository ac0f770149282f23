-- 0005_session_identity: as package sqlite's 0017_session_identity: an
-- OIDC console session (method "oidc") keeps the role and project its
-- access token gave. Empty for API-key sessions.
ALTER TABLE console_sessions ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE console_sessions ADD COLUMN project_id TEXT NOT NULL DEFAULT '';
