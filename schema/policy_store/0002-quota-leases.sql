-- socksgw policy store, version 2: fleet-wide byte quotas (issue 18).
--
-- A user's quota (the fleet's policy: user, group or default) holds
-- across nodes: each node leases bytes of it for the current period,
-- in grants, and relays no more than it holds. A lease is taken in one
-- transaction under an advisory lock on (user, period kind, period
-- start): the sum of every node's rows never passes the quota. A node
-- reads its own rows back when it starts, so a restart leases nothing
-- twice. Nodes' role needs INSERT and UPDATE here (and SELECT on
-- policy_head); nothing else.
CREATE TABLE quota_leases (
	usr		bytea NOT NULL,		-- as the client named it
	period		smallint NOT NULL,	-- 1 hour, 2 day, 3 week, 4 month
	start		bigint NOT NULL,	-- the period's start, Unix time
	node		text NOT NULL,		-- gatewayd.conf node_name
	granted		bigint NOT NULL CHECK (granted >= 0),
	quota		bigint NOT NULL,	-- the quota when last leased
	time		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (usr, period, start, node)
);

-- A node reads its own rows of current periods back at each connection.
CREATE INDEX quota_leases_node ON quota_leases (node, start);
