-- A key may carry its own rate limit, overriding the server's default
-- for requests made with it (NULL: the default).
ALTER TABLE api_keys ADD COLUMN rate_requests INTEGER CHECK (rate_requests IS NULL OR rate_requests > 0);
ALTER TABLE api_keys ADD COLUMN rate_period_s INTEGER CHECK (rate_period_s IS NULL OR rate_period_s > 0);
