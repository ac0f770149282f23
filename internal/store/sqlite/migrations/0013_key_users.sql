-- 0013_key_users: the end users an API key may act for where a run
-- reaches a user's state (persistent memory): a JSON array of entries,
-- each an exact user id, a prefix ending in *, or * (core.CheckUserEntry).
-- Keys from before get none: they act for no user until a key with users
-- is made (runagent keys create --users).
ALTER TABLE api_keys ADD COLUMN users TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(users) AND json_type(users) = 'array');
