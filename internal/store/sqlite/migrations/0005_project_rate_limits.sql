-- A project may carry its own rate limit: the default per-principal limit
-- for its principals (a key's own limit still wins; NULL: the server's).
ALTER TABLE projects ADD COLUMN rate_requests INTEGER CHECK (rate_requests IS NULL OR rate_requests > 0);
ALTER TABLE projects ADD COLUMN rate_period_s INTEGER CHECK (rate_period_s IS NULL OR rate_period_s > 0);
