-- Version 5: bandwidth caps and byte quotas.
-- bandwidth: bytes a second, each direction. A user's own cap (else the
-- default in settings key 'bandwidth') is shared by all of that user's
-- sessions; a group's cap is shared by all sessions of all its members
-- (a member of several capped groups joins the lowest one's).
-- quota: bytes (both directions together) a user may relay per
-- quota_period, counted per user; resolved like max_sessions (own, else
-- the strictest group's, else the defaults in settings 'quota' and
-- 'quota_period'). Periods start on calendar boundaries in the configured
-- timezone; weeks start on Monday.
ALTER TABLE users ADD COLUMN bandwidth INTEGER
    CHECK (bandwidth IS NULL OR bandwidth BETWEEN 1024 AND 1099511627776);
ALTER TABLE users ADD COLUMN quota INTEGER
    CHECK (quota IS NULL OR quota BETWEEN 0 AND 1125899906842624);
ALTER TABLE users ADD COLUMN quota_period TEXT
    CHECK ((quota IS NULL) = (quota_period IS NULL) AND (quota_period IS
	NULL OR quota_period IN ('hour', 'day', 'week', 'month')));
ALTER TABLE groups ADD COLUMN bandwidth INTEGER
    CHECK (bandwidth IS NULL OR bandwidth BETWEEN 1024 AND 1099511627776);
ALTER TABLE groups ADD COLUMN quota INTEGER
    CHECK (quota IS NULL OR quota BETWEEN 0 AND 1125899906842624);
ALTER TABLE groups ADD COLUMN quota_period TEXT
    CHECK ((quota IS NULL) = (quota_period IS NULL) AND (quota_period IS
	NULL OR quota_period IN ('hour', 'day', 'week', 'month')));
