-- Version 3: limits. NULL: this user or group sets no limit of that kind,
-- so the next level decides: a user's own value, else the lowest of its
-- groups' values, else the default (settings key 'max_sessions'), else
-- none. 0 is a limit: no session at all.
ALTER TABLE users ADD COLUMN max_sessions INTEGER
    CHECK (max_sessions IS NULL OR max_sessions BETWEEN 0 AND 1000000000);
ALTER TABLE groups ADD COLUMN max_sessions INTEGER
    CHECK (max_sessions IS NULL OR max_sessions BETWEEN 0 AND 1000000000);
