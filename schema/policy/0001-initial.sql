-- socksgw policy database, version 1.
-- Rules are matched in position order; the first whose every condition
-- holds decides. No matching rule: deny. Conditions of one kind are
-- alternatives (any may match); conditions of different kinds must all
-- match.

CREATE TABLE settings (
	key	TEXT PRIMARY KEY,
	value	TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
	id	INTEGER PRIMARY KEY,
	name	TEXT NOT NULL UNIQUE
		CHECK (length(name) BETWEEN 1 AND 255),
	enabled	INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	comment	TEXT NOT NULL DEFAULT ''
);

CREATE TABLE groups (
	id	INTEGER PRIMARY KEY,
	name	TEXT NOT NULL UNIQUE
		CHECK (length(name) BETWEEN 1 AND 255),
	comment	TEXT NOT NULL DEFAULT ''
);

CREATE TABLE user_groups (
	user_id		INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	group_id	INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, group_id)
) WITHOUT ROWID;
CREATE INDEX user_groups_by_group ON user_groups(group_id);

CREATE TABLE lists (
	id	INTEGER PRIMARY KEY,
	name	TEXT NOT NULL UNIQUE
		CHECK (length(name) BETWEEN 1 AND 255),
	type	TEXT NOT NULL CHECK (type IN ('domain', 'cidr')),
	comment	TEXT NOT NULL DEFAULT ''
);

-- Canonical values only (lower-case names without a trailing dot, CIDRs
-- with their host bits cleared): socksctl writes them so.
CREATE TABLE list_entries (
	list_id	INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
	value	TEXT NOT NULL CHECK (length(value) BETWEEN 1 AND 255),
	PRIMARY KEY (list_id, value)
) WITHOUT ROWID;

CREATE TABLE rules (
	id		INTEGER PRIMARY KEY,
	position	INTEGER NOT NULL UNIQUE CHECK (position >= 1),
	action		TEXT NOT NULL CHECK (action IN ('allow', 'deny')),
	enabled		INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	comment		TEXT NOT NULL DEFAULT '',
	created		TEXT NOT NULL
			DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- One condition of a rule. References to users, groups and lists are
-- foreign keys, so nothing a rule names can disappear under it.
CREATE TABLE rule_conditions (
	rule_id		INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
	kind		TEXT NOT NULL CHECK (kind IN ('user', 'group', 'src',
			    'src_country', 'dst', 'dst_list', 'dst_country',
			    'port', 'cmd', 'time')),
	value		TEXT NOT NULL,
	user_id		INTEGER REFERENCES users(id) ON DELETE RESTRICT,
	group_id	INTEGER REFERENCES groups(id) ON DELETE RESTRICT,
	list_id		INTEGER REFERENCES lists(id) ON DELETE RESTRICT,
	CHECK ((kind = 'user') = (user_id IS NOT NULL)),
	CHECK ((kind = 'group') = (group_id IS NOT NULL)),
	CHECK ((kind = 'dst_list') = (list_id IS NOT NULL)),
	CHECK (kind NOT IN ('src_country', 'dst_country') OR
	    (length(value) = 2 AND value = upper(value))),
	CHECK (kind <> 'cmd' OR value IN ('connect', 'bind', 'udp')),
	PRIMARY KEY (rule_id, kind, value)
) WITHOUT ROWID;
CREATE INDEX rule_conditions_by_user ON rule_conditions(user_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX rule_conditions_by_group ON rule_conditions(group_id)
    WHERE group_id IS NOT NULL;
CREATE INDEX rule_conditions_by_list ON rule_conditions(list_id)
    WHERE list_id IS NOT NULL;
