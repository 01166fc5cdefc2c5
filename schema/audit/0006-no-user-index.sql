-- Version 6: no index on (user, start_ms). No query used it (the filters
-- say "?3 IS NULL OR user = ?3", which SQLite cannot seek with; listings
-- walk records_by_start and stop at their LIMIT), yet it cost the most
-- of every write: records of many users land on a different leaf each,
-- so a commit rewrote a 16 KiB page per record, and deleting old rows
-- (retention) cost 25 times what it does without it (issue 20).
DROP INDEX IF EXISTS records_by_user;
