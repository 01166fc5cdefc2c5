-- Version 2: byte quota usage, so that quotas hold across restarts.
-- gatewayd's writer adds what each user relayed since its last write
-- (at least every second); a row per user and period. period_start is
-- the period's first second (Unix time) in the configured timezone.
CREATE TABLE usage (
	user		TEXT NOT NULL,
	period		TEXT NOT NULL
			CHECK (period IN ('hour', 'day', 'week', 'month')),
	period_start	INTEGER NOT NULL,
	bytes		INTEGER NOT NULL DEFAULT 0,
	updated_ms	INTEGER NOT NULL,
	PRIMARY KEY (user, period, period_start)
) WITHOUT ROWID;
