-- socksgw central audit store (PostgreSQL), version 1 (issue 18).
--
-- Every node writes its audit log locally first (SQLite, audit_db) and
-- its shipper (gatewayd/auditd/audit_ship.c) copies the completed records
-- and signed checkpoints here, in chain order, each batch in one
-- transaction that also moves the node's cursor (audit_nodes): a batch
-- lands whole or not at all, so a record arrives exactly once however
-- often a node, its shipper or this server stops in between.
--
-- The records are the nodes' own, field for field, so that the hash chain
-- and the checkpoints of each node verify here with its public key alone
-- (socksctl audit verify --central). Text fields are bytea: they hold
-- what clients sent (user names, host names, SOCKS4 user ids), which need
-- not be UTF-8, and a row this server refused would stop its node's
-- shipping for good.

CREATE TABLE audit_nodes (
	node		text PRIMARY KEY,	-- gatewayd.conf node_name
	anchor_seq	bigint NOT NULL,	-- the chain place before the first
	anchor_hash	bytea,			-- record shipped, and its hash
	shipped_seq	bigint NOT NULL,	-- the last record shipped
	shipped_hash	bytea,
	shipped_cp	bigint NOT NULL,	-- the last checkpoint shipped (id)
	first_ms	bigint NOT NULL,	-- the first and the last batch
	last_ms		bigint NOT NULL
);

-- The public keys a node has signed with (audit.pub), each as first seen.
CREATE TABLE audit_keys (
	node		text NOT NULL REFERENCES audit_nodes (node),
	public_key	bytea NOT NULL,
	first_ms	bigint NOT NULL,
	PRIMARY KEY (node, public_key)
);

CREATE TABLE audit_records (
	node		text NOT NULL REFERENCES audit_nodes (node),
	id		bigint NOT NULL,	-- the node's own row id
	kind		bytea NOT NULL,
	session_id	bigint NOT NULL,
	start_ms	bigint NOT NULL,
	end_ms		bigint,
	"user"		bytea,
	client_addr	bytea NOT NULL,
	client_port	bigint NOT NULL,
	command		bytea,
	dst_host	bytea,
	dst_addr	bytea,
	dst_port	bigint,
	dst_country	bytea,
	verdict		bytea NOT NULL,
	rule_id		bigint NOT NULL,
	reason		bytea NOT NULL,
	bytes_up	bigint NOT NULL,
	bytes_down	bigint NOT NULL,
	close_reason	bytea,
	seq		bigint NOT NULL,
	hash		bytea NOT NULL,
	protocol	bytea NOT NULL,
	ident		bytea,
	packets_up	bigint NOT NULL,
	packets_down	bigint NOT NULL,
	udp_destinations bigint NOT NULL,
	udp_denied	bigint NOT NULL,
	auth_method	bytea,
	rec_node	bytea,		-- the record's node field, as hashed
	shipped_ms	bigint NOT NULL,
	PRIMARY KEY (node, session_id),	-- the issue's idempotency key
	UNIQUE (node, seq)
);
CREATE INDEX audit_records_by_start ON audit_records (start_ms);

CREATE TABLE audit_checkpoints (
	node		text NOT NULL REFERENCES audit_nodes (node),
	id		bigint NOT NULL,	-- the node's own row id
	kind		text NOT NULL CHECK (kind IN ('checkpoint', 'prune')),
	seq		bigint NOT NULL,
	hash		bytea NOT NULL,
	time_ms		bigint NOT NULL,
	signature	bytea NOT NULL,
	PRIMARY KEY (node, id)
);
