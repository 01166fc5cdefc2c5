-- Version 3: signed checkpoints of the chain (gatewayd/evidence.c). Every
-- 10,000 records or 60 s, and at shutdown, the writer signs the chain's
-- head with Ed25519 (kind 'checkpoint'); pruning signs where it cut (kind
-- 'prune', the anchor's place and hash). socksctl audit verify checks
-- them with the public key alone.
CREATE TABLE checkpoints (
	id		INTEGER PRIMARY KEY,
	kind		TEXT NOT NULL CHECK (kind IN ('checkpoint', 'prune')),
	seq		INTEGER NOT NULL,
	hash		BLOB NOT NULL,
	time_ms		INTEGER NOT NULL,
	signature	BLOB NOT NULL
);
