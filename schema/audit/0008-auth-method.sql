-- Version 8: how the client logged in (issue 15): 'none' (auth none, or
-- SOCKS4), 'password' (SOCKS5 username/password, RFC 1929), 'basic' (HTTP
-- Basic); 'gssapi' and 'negotiate' are reserved for Kerberos. Records
-- written before this version keep NULL: the hash chain covers the field
-- only when it is not NULL (common/audit_chain.c), so their hashes, and
-- every checkpoint signed over them, stay as they were. Adding a column
-- rewrites no row.
ALTER TABLE records ADD COLUMN auth_method TEXT
    CHECK (auth_method IN ('none', 'password', 'basic', 'gssapi',
    'negotiate'));
