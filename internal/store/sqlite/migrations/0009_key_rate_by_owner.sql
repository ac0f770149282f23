-- 0009_key_rate_by_owner: whether an instance owner set a key's rate
-- limit. Only such a limit may exceed the key's project's rate limit,
-- which is otherwise its ceiling. Keys from before are taken as set by an
-- admin (0): their limit is now capped by their project's, never raised.
ALTER TABLE api_keys ADD COLUMN rate_by_owner INTEGER NOT NULL DEFAULT 0 CHECK (rate_by_owner IN (0, 1));
