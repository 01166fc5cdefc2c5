-- socksgw audit log, version 1. One row per session, inserted when the
-- request is decided and completed when the session ends; failed
-- authentications are rows of their own. A completed row is chained:
-- seq is its place in the chain, hash the SHA-256 over the previous
-- hash and its own fields (socksctl audit verify recomputes them).

CREATE TABLE records (
	id		INTEGER PRIMARY KEY,
	kind		TEXT NOT NULL CHECK (kind IN ('session', 'auth')),
	session_id	INTEGER NOT NULL UNIQUE,
	start_ms	INTEGER NOT NULL,	-- Unix time, milliseconds
	end_ms		INTEGER,		-- NULL while the session is open
	user		TEXT,
	client_addr	TEXT NOT NULL,
	client_port	INTEGER NOT NULL,
	command		TEXT,
	dst_host	TEXT,			-- as the client asked
	dst_addr	TEXT,			-- the address actually used
	dst_port	INTEGER,
	dst_country	TEXT,
	verdict		TEXT NOT NULL CHECK (verdict IN ('allow', 'deny')),
	rule_id		INTEGER NOT NULL DEFAULT 0,
	reason		TEXT NOT NULL DEFAULT '',
	bytes_up	INTEGER NOT NULL DEFAULT 0,	-- client to destination
	bytes_down	INTEGER NOT NULL DEFAULT 0,	-- destination to client
	close_reason	TEXT,
	protocol	TEXT NOT NULL DEFAULT 'socks5'
			CHECK (protocol IN ('socks5', 'socks4')),
	ident		TEXT,			-- SOCKS4 USERID, unverified
	packets_up	INTEGER NOT NULL DEFAULT 0,	-- UDP datagrams
	packets_down	INTEGER NOT NULL DEFAULT 0,
	udp_destinations INTEGER NOT NULL DEFAULT 0,	-- distinct, allowed
	udp_denied	INTEGER NOT NULL DEFAULT 0,	-- datagrams dropped
	seq		INTEGER,		-- verify orders by it
	hash		BLOB
);
CREATE INDEX records_by_user ON records(user, start_ms) WHERE user IS NOT NULL;
CREATE INDEX records_by_start ON records(start_ms);
CREATE INDEX records_by_seq ON records(seq) WHERE seq IS NOT NULL;

-- The chain's anchor: where verification starts once old records have
-- been pruned (seq and hash of the last pruned record).
CREATE TABLE chain (
	name	TEXT PRIMARY KEY,
	seq	INTEGER NOT NULL,
	hash	BLOB NOT NULL
) WITHOUT ROWID;

-- Hourly rollups of completed records, for reports over long periods.
-- They are brought up to date in steps by gatewayd's writer when it has
-- time, and by socksctl before a report; chain row 'rollup' holds the
-- last seq rolled up. user '' is the anonymous client.
CREATE TABLE hourly_users (
	hour		INTEGER NOT NULL,	-- start_ms / 3600000
	user		TEXT NOT NULL,
	sessions	INTEGER NOT NULL,
	allowed		INTEGER NOT NULL,
	denied		INTEGER NOT NULL,
	bytes_up	INTEGER NOT NULL,
	bytes_down	INTEGER NOT NULL,
	PRIMARY KEY (hour, user)
) WITHOUT ROWID;

-- Not per user: destinations by user would be as many rows as records;
-- a report on one user's or group's destinations reads the records.
CREATE TABLE hourly_destinations (
	hour		INTEGER NOT NULL,
	destination	TEXT NOT NULL,
	verdict		TEXT NOT NULL,
	sessions	INTEGER NOT NULL,
	bytes		INTEGER NOT NULL,
	PRIMARY KEY (hour, destination, verdict)
) WITHOUT ROWID;

CREATE TABLE hourly_denials (
	hour		INTEGER NOT NULL,
	rule_id		INTEGER NOT NULL,
	user		TEXT NOT NULL,
	denials		INTEGER NOT NULL,
	reason		TEXT NOT NULL,
	PRIMARY KEY (hour, rule_id, user)
) WITHOUT ROWID;
