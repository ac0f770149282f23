-- 0017_session_identity: an OIDC console session (method "oidc") acts as
-- its access token did, which names no key: the role and project it gave
-- are kept with the session. Empty for API-key sessions.
ALTER TABLE console_sessions ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE console_sessions ADD COLUMN project_id TEXT NOT NULL DEFAULT '';
