-- socksgw policy store (PostgreSQL), version 1: the fleet's one policy (issue 18).
-- Its schema version is kept apart from the audit store's (socksgw_schema
-- rows "policy" and "central"): a node of an older build keeps shipping
-- its audit to a store that also holds a policy.
--
-- socksctl, given `policy_db postgresql://...`, runs each command on a
-- scratch copy of the newest policy (a SQLite database of the local
-- schema, so every command works exactly as on one gateway) and, when the
-- command changed it, stores the new copy here in one transaction with
-- its change-log entries, and NOTIFY socksgw_policy. Each node LISTENs,
-- fetches policy_head.image, checks it and keeps it on local disk
-- (policy_snapshot), which it judges by.
--
-- The change log: one row per change, as `socksctl log` shows it, with
-- the policy as the change left it (socksctl export's text), for
-- `socksctl rollback --to ID` and `log revert ID`, and for an auditor
-- with SQL alone.
CREATE TABLE policy_changes (
	id		bigint PRIMARY KEY,
	time		text NOT NULL,		-- UTC, ISO 8601
	os_user		text NOT NULL,		-- who ran socksctl, and sudo
	command		text NOT NULL,		-- the command line
	detail		text NOT NULL,
	policy		text			-- socksctl export, after it
);

-- The policy in force: one row, replaced by every change.
CREATE TABLE policy_head (
	one		boolean PRIMARY KEY DEFAULT true CHECK (one),
	change_id	bigint NOT NULL,	-- policy_changes.id; 0: none yet
	schema_version	integer NOT NULL,	-- the image's user_version
	image		bytea NOT NULL,		-- the SQLite database
	sha256		bytea NOT NULL,		-- of image, checked by nodes
	time		timestamptz NOT NULL DEFAULT now()
);
