-- Version 6: each change-log entry keeps the policy as it was right after
-- the change (socksctl export's text), so that socksctl rollback --to ID
-- restores it and socksctl log revert ID undoes one change. NULL: an
-- entry from before version 6, or a policy too large to keep (its lists).
ALTER TABLE changes ADD COLUMN policy TEXT;
