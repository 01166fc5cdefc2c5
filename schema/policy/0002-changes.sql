-- Version 2: the change log. socksctl writes one row in the same
-- transaction as every change it makes, so an auditor can tell who
-- changed the policy, when, and how.
CREATE TABLE changes (
	id	INTEGER PRIMARY KEY,
	time	TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
	os_user	TEXT NOT NULL,
	command	TEXT NOT NULL,
	detail	TEXT NOT NULL DEFAULT ''
);
