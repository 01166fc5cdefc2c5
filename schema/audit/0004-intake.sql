-- Version 4: where the proxy's numbering of its records stands (auditd,
-- gatewayd/audit_proto.h). auditd writes it in the same transaction as
-- the records and usage it commits, so after a crash of the proxy or of
-- auditd the proxy resends exactly what is not here. Operational state,
-- not evidence: the chain and the checkpoints are the evidence.
CREATE TABLE intake (
	id		INTEGER PRIMARY KEY CHECK (id = 1),
	proxy_gen	INTEGER NOT NULL,	-- the proxy run (random)
	records		INTEGER NOT NULL,	-- its last record committed
	usage		INTEGER NOT NULL,	-- its last usage batch committed
	produced	INTEGER NOT NULL,	-- its last record it said it had
	sid_floor	INTEGER NOT NULL	-- its session ids are above this
);
