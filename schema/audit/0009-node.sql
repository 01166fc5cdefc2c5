-- Version 9: the node that wrote the record (issue 18): gatewayd.conf's
-- node_name, by default the host name, so that records of several
-- gateways read together (a fleet's logs side by side, and later one
-- central store) say which gateway served each session. Records written
-- before keep NULL and hash as they did: the chain covers the field only
-- when it is not NULL, and then auth_method too, NULL or not, so that a
-- value cannot be moved from one of the two to the other unnoticed
-- (common/audit_chain.c). No CHECK, as for auth_method (0008).
ALTER TABLE records ADD COLUMN node TEXT;
