/*
 * db.c: opening the policy database and bringing its schema up to date.
 *
 * The schema is the list of migrations embedded from schema/policy/, and
 * PRAGMA user_version says how many a database has had. Each migration runs
 * in its own transaction with its version bump, so a failure leaves the
 * database at the last good version. A database newer than this build is
 * refused rather than misread.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "policy_int.h"
#include "schema.h"

static const struct schema_migration *
db_schema(enum db_schema which)
{
	return (which == DB_SCHEMA_AUDIT ? schema_audit : schema_policy);
}

int
db_schema_latest(enum db_schema which)
{
	const struct schema_migration	*m = db_schema(which);
	int				 i;

	for (i = 0; m[i].sm_version != 0; i++)
		;
	return (i);
}

int
policy_db_latest(void)
{
	return (db_schema_latest(DB_SCHEMA_POLICY));
}

int
policy_db_version(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int		 v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return (-1);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return (v);
}

int
policy_db_migrate(sqlite3 *db, char **cause)
{
	return (db_schema_migrate(db, DB_SCHEMA_POLICY, cause));
}

int
db_schema_migrate(sqlite3 *db, enum db_schema which, char **cause)
{
	const struct schema_migration	*schema = db_schema(which);
	char				*err = NULL, *sql;
	int				 v, i, latest = db_schema_latest(which);

	if ((v = policy_db_version(db)) == -1) {
		if (asprintf(cause, "reading user_version: %s",
		    sqlite3_errmsg(db)) < 0)
			*cause = NULL;
		return (-1);
	}
	if (v > latest) {
		if (asprintf(cause, "schema version %d is newer than this "
		    "build understands (%d)", v, latest) < 0)
			*cause = NULL;
		return (-1);
	}
	for (i = v; schema[i].sm_version != 0; i++) {
		if (asprintf(&sql, "BEGIN IMMEDIATE;\n%s\nPRAGMA user_version = "
		    "%d;\nCOMMIT;", schema[i].sm_sql, schema[i].sm_version) < 0) {
			*cause = NULL;
			return (-1);
		}
		if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
			if (asprintf(cause, "migration %s: %s",
			    schema[i].sm_name, err) < 0)
				*cause = NULL;
			sqlite3_free(err);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			free(sql);
			return (-1);
		}
		free(sql);
	}
	return (0);
}

/*
 * Why a database did not open. Every database is opened without
 * following a symbolic link (SQLITE_OPEN_NOFOLLOW): their folders are
 * writable by admins (policy) or written by a less trusted account, and
 * root (socksctl init in the package's postinst, gatewayd before its
 * privilege drop) must not be led to create or change another file.
 */
const char *
policy_db_errmsg(const char *path, struct sqlite3 *db)
{
	struct stat	 st;

	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		return ("a symbolic link: refused, so that no one can lead a "
		    "process running as root to another file");
	return (db != NULL ? sqlite3_errmsg(db) : "out of memory");
}

/*
 * Opens the policy database. POLICY_DB_CREATE creates it if absent and
 * migrates it; otherwise a database that is not at this build's version
 * is an error (gatewayd reads, it never changes the schema under socksctl).
 */
sqlite3 *
policy_db_open(const char *path, int flags, char **cause)
{
	sqlite3	*db = NULL;
	int	 oflags, v;

	oflags = (flags & POLICY_DB_READONLY) ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE;
	if (flags & POLICY_DB_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db, oflags | SQLITE_OPEN_NOMUTEX |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		if (asprintf(cause, "%s: %s", path, policy_db_errmsg(path,
		    db)) < 0)
			*cause = NULL;
		sqlite3_close(db);
		return (NULL);
	}
	sqlite3_busy_timeout(db, 5000);
	sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	if (flags & POLICY_DB_CREATE) {
		if (policy_db_migrate(db, cause) == -1)
			goto fail;
		return (db);
	}
	if ((v = policy_db_version(db)) != policy_db_latest()) {
		if (v == -1) {
			if (asprintf(cause, "%s: %s", path,
			    sqlite3_errmsg(db)) < 0)
				*cause = NULL;
		} else if (asprintf(cause, "%s: schema version %d, this build "
		    "needs %d (%s)", path, v, policy_db_latest(),
		    v < policy_db_latest() ? "run socksctl init" :
		    "the database is newer than this build") < 0)
			*cause = NULL;
		goto fail;
	}
	return (db);
fail:
	if (*cause != NULL && strncmp(*cause, path, strlen(path)) != 0) {
		char	*c;

		if (asprintf(&c, "%s: %s", path, *cause) >= 0) {
			free(*cause);
			*cause = c;
		}
	}
	sqlite3_close(db);
	return (NULL);
}
