/*
 * audit_db.c: what the audit commands (cmd_audit.c, cmd_report.c,
 * cmd_verify.c) share: the audit database, opened read-only, and the
 * times their --since and --until take.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "admin.h"
#include "conf.h"
#include "policy.h"

/*
 * The audit database, read-only, as this build reads it. A log newer than
 * the build is refused: its records may hold fields this build would not
 * hash, and verify would call them edited. A log from before audit schema
 * 8 or 9 (an archive, or one gatewayd has not opened since an upgrade) is
 * read through a view that gives auth_method and node as NULL, as those
 * records were written and hashed, so it can be listed and verified
 * without writing to the evidence to migrate it.
 */
sqlite3 *
audit_db(struct ctl *ctl)
{
	sqlite3		*db;
	const char	*path = ctl->ctl_conf->c_audit_db;
	int		 v;

	if (path == NULL)
		ctl_error("%s: no audit_db configured", ctl->ctl_conf_path);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
	    SQLITE_OPEN_NOFOLLOW,
	    NULL) != SQLITE_OK)
		ctl_error("%s: %s", path, policy_db_errmsg(path, db));
	sqlite3_busy_timeout(db, 5000);
	if ((v = policy_db_version(db)) > db_schema_latest(DB_SCHEMA_AUDIT))
		ctl_error("%s: audit schema version %d is newer than this build "
		    "understands (%d): use the socksctl of the gatewayd that "
		    "wrote it", path, v, db_schema_latest(DB_SCHEMA_AUDIT));
	if (v >= 1 && v < 9 && sqlite3_exec(db, v < 8 ? "CREATE TEMP VIEW "
	    "records AS SELECT *, NULL AS auth_method, NULL AS node FROM "
	    "main.records" : "CREATE TEMP VIEW records AS SELECT *, NULL AS "
	    "node FROM main.records", NULL, NULL, NULL) != SQLITE_OK)
		ctl_error("%s: %s", path, sqlite3_errmsg(db));
	return (db);
}

/* Milliseconds since the epoch of an ISO 8601 or relative time. */
int64_t
parse_when(const char *opt, const char *text)
{
	static const char *const formats[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S",
		"%Y-%m-%d %H:%M", "%Y-%m-%d",
	};
	struct tm	 tm;
	const char	*end;
	char		*ep;
	long long	 n;
	size_t		 i;
	time_t		 t;

	if (text[0] == '-' || text[0] == '+') {
		errno = 0;
		n = strtoll(text + 1, &ep, 10);
		if (ep != text + 1 && errno == 0 && ep[1] == '\0' && n >= 0) {
			switch (*ep) {
			case 's': break;
			case 'm': n *= 60; break;
			case 'h': n *= 3600; break;
			case 'd': n *= 86400; break;
			case 'w': n *= 7 * 86400; break;
			default: goto bad;
			}
			return (((int64_t)time(NULL) + (text[0] == '-' ? -n :
			    n)) * 1000);
		}
		goto bad;
	}
	if (strcmp(text, "now") == 0)
		return ((int64_t)time(NULL) * 1000);
	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(text, formats[i], &tm)) == NULL)
			continue;
		if (strcmp(end, "Z") == 0)
			t = timegm(&tm);
		else if (*end == '\0') {
			tm.tm_isdst = -1;
			t = mktime(&tm);
		} else
			continue;
		return ((int64_t)t * 1000);
	}
bad:
	ctl_usage_error("%s %s: expected ISO 8601 (2026-11-27T10:00:00Z) or "
	    "relative (-30m, -1h, -7d)", opt, text);
}
