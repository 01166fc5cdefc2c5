-- Version 5: the rows still open (a relayed session's start, not yet
-- completed), found without reading the whole log: a new proxy run's
-- auditd closes the last run's ("proxy restarted") at every start.
CREATE INDEX records_open ON records(id) WHERE seq IS NULL;
