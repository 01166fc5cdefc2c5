-- Version 7: 'http' joins the protocols a record may name (HTTP CONNECT,
-- issue 15). SQLite cannot change a CHECK constraint in place, and
-- rebuilding records would copy the whole log (gigabytes on a large one)
-- during an upgrade. A CHECK that only admits more values changes no
-- stored row, so the table's SQL text is edited where SQLite keeps it, as
-- SQLite's ALTER TABLE documentation describes for such changes ("Making
-- Other Kinds Of Table Schema Changes"). RESET turns writing off and has
-- this connection read the schema again (auditd writes through it next).
-- The check table below fails the migration (and so gatewayd's start) if
-- the text was not found; creating and dropping it also moves the schema
-- cookie, so every other connection reads the new text too.
PRAGMA writable_schema = ON;
UPDATE sqlite_master SET sql = replace(sql,
	'CHECK (protocol IN (''socks5'', ''socks4''))',
	'CHECK (protocol IN (''socks5'', ''socks4'', ''http''))')
    WHERE type = 'table' AND name = 'records';
PRAGMA writable_schema = RESET;
CREATE TABLE migration_7_check (ok INTEGER NOT NULL CHECK (ok = 1));
INSERT INTO migration_7_check SELECT instr(sql, '''http''') > 0
    FROM sqlite_master WHERE type = 'table' AND name = 'records';
DROP TABLE migration_7_check;
