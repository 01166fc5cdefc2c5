-- Version 4: new-session rates, as a token bucket: rate sessions a second
-- on average, up to burst at once. Resolved like max_sessions (the user's
-- own pair, else its strictest group's, else the default in settings keys
-- 'rate' and 'burst'). Settings 'client_rate' and 'client_burst' limit each
-- client address, whoever the user.
ALTER TABLE users ADD COLUMN rate REAL
    CHECK (rate IS NULL OR (rate > 0 AND rate <= 1000000));
ALTER TABLE users ADD COLUMN burst INTEGER
    CHECK (burst IS NULL OR burst BETWEEN 1 AND 1000000);
ALTER TABLE groups ADD COLUMN rate REAL
    CHECK (rate IS NULL OR (rate > 0 AND rate <= 1000000));
ALTER TABLE groups ADD COLUMN burst INTEGER
    CHECK (burst IS NULL OR burst BETWEEN 1 AND 1000000);
