/*
 * policy_store.c: the fleet's one policy, in PostgreSQL (`policy_db
 * postgresql://...`), for socksctl.
 *
 * DESIGN. Every command runs exactly as on one gateway, on a scratch copy
 * of the newest policy: the SQLite database of the local schema that the
 * store keeps whole (policy_head.image), change log included. Each
 * command opens one transaction in PostgreSQL under an advisory lock, so
 * admins' commands on the fleet follow one another as they do on one
 * file; when the command changed the policy (a new change-log entry), the
 * copy goes back as the new head with those entries, and NOTIFY
 * socksgw_policy tells the nodes, all in that one commit. An error
 * anywhere ends socksctl before the commit: nothing changes.
 *
 * Why the whole database and not the tables row by row: the nodes then
 * need neither socksctl's command parsers nor a second engine's copy of
 * the schema, and they judge by the very bytes socksctl checked. Policies
 * are small (a rule is a few hundred bytes; lists of a million entries
 * make tens of MiB, which one transaction carries).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include "admin.h"
#include "central.h"
#include "conf.h"

/* pg_advisory_xact_lock's key: socksctl's policy commands, one at a time */
#define POLICY_STORE_LOCK	"7308325130572129070"

static PGconn	*ps_pg;
static int64_t	 ps_base;	/* the newest change in the scratch copy */
static int	 ps_fresh;	/* the store held no policy yet */
static int	 ps_init;	/* socksctl init: store the empty one */
static int	 ps_schema;	/* the stored policy's schema version */

static void __attribute__((noreturn))
store_fail(const char *what, PGresult *r)
{
	char	 why[512];

	if (!central_ok(r, why, sizeof(why)) || r == NULL)
		ctl_error("policy_db: %s: %s", what, why);
	ctl_error("policy_db: %s: the server's answer is not the expected one",
	    what);
}

static PGresult *
store_exec(const char *sql, int n, const char *const *vals,
    const int *lens, const int *fmts, int binary_result)
{
	PGresult	*r;

	r = PQexecParams(ps_pg, sql, n, NULL, vals, lens, fmts,
	    binary_result);
	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK)
		store_fail(sql, r);
	return (r);
}

/*
 * The policy image in a database of socksctl's memory (no file another
 * local account could plant a journal beside), brought up to this
 * build's schema; NULL image: an empty policy.
 */
static sqlite3 *
store_scratch(const void *image, size_t len)
{
	sqlite3		*db;
	unsigned char	*copy = NULL;
	char		*cause = NULL;

	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		ctl_error("policy_db: %s", sqlite3_errmsg(db));
	if (image != NULL) {
		if ((copy = sqlite3_malloc64(len)) == NULL)
			ctl_error("out of memory");
		memcpy(copy, image, len);
		if (sqlite3_deserialize(db, "main", copy, (sqlite3_int64)len,
		    (sqlite3_int64)len, SQLITE_DESERIALIZE_FREEONCLOSE |
		    SQLITE_DESERIALIZE_RESIZEABLE) != SQLITE_OK)
			ctl_error("policy_db: the store's policy: %s",
			    sqlite3_errmsg(db));
	}
	sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	if (policy_db_version(db) > policy_db_latest())
		ctl_error("policy_db: the store's policy is of schema %d; this "
		    "socksctl knows %d: upgrade it", policy_db_version(db),
		    policy_db_latest());
	ps_schema = image != NULL ? policy_db_version(db) : 0;
	if (policy_db_migrate(db, &cause) == -1)
		ctl_error("policy_db: the store's policy: %s", cause ? cause :
		    "out of memory");
	return (db);
}

/*
 * The store's newest policy in a scratch database, inside the store's
 * transaction that will take the change (ctl_db's, when policy_db is a
 * URL). The store's schema is brought up to date first.
 */
sqlite3 *
policy_store_open(struct ctl *ctl)
{
	unsigned char	 sum[SHA256_DIGEST_LENGTH];
	PGresult	*r;
	sqlite3		*db = NULL;
	char		 why[512];

	if ((ps_pg = central_connect(ctl->ctl_conf->c_policy_central,
	    "socksctl", why, sizeof(why))) == NULL)
		ctl_error("policy_db: %s", why);
	if (central_migrate(ps_pg, "policy", why, sizeof(why)) == -1)
		ctl_error("policy_db: %s", why);
	PQclear(store_exec("BEGIN", 0, NULL, NULL, NULL, 0));
	/* Another admin's command first; not for ever (list import -). */
	PQclear(store_exec("SET LOCAL lock_timeout = '60s'", 0, NULL, NULL,
	    NULL, 0));
	r = PQexec(ps_pg, "SELECT pg_advisory_xact_lock(" POLICY_STORE_LOCK
	    ")");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		ctl_error("policy_db: another admin's command has held the "
		    "policy for 60 s; try again (%s)", PQresultErrorMessage(r));
	PQclear(r);
	r = store_exec("SELECT image, sha256 FROM policy_head", 0, NULL, NULL,
	    NULL, 1);
	if (PQntuples(r) == 1 && PQnfields(r) == 2) {
		SHA256((const unsigned char *)PQgetvalue(r, 0, 0),
		    (size_t)PQgetlength(r, 0, 0), sum);
		if (PQgetlength(r, 0, 1) != (int)sizeof(sum) ||
		    memcmp(PQgetvalue(r, 0, 1), sum, sizeof(sum)) != 0)
			ctl_error("policy_db: the store's policy does not match "
			    "its checksum; restore policy_head from a backup, or "
			    "ask socksgw's authors");
		db = store_scratch(PQgetvalue(r, 0, 0),
		    (size_t)PQgetlength(r, 0, 0));
	} else if (PQntuples(r) == 0) {
		db = store_scratch(NULL, 0);	/* no policy yet: an empty one */
		ps_fresh = 1;
	} else
		store_fail("SELECT image, sha256 FROM policy_head", r);
	PQclear(r);
	ctl->ctl_db = db;
	ps_base = sql_int(ctl, "SELECT coalesce(max(id), 0) FROM changes",
	    NULL, 0, 0);
	return (db);
}

/* The change-log entries the command made, into policy_changes. */
static void
store_changes(struct ctl *ctl)
{
	static const char sql[] = "INSERT INTO policy_changes (id, time, "
	    "os_user, command, detail, policy) VALUES ($1, $2, $3, $4, $5, $6)";
	sqlite3_stmt	*st;
	const char	*vals[6];
	char		 id[24];
	int		 i;

	st = sql_prepare(ctl, "SELECT id, time, os_user, command, detail, "
	    "policy FROM changes WHERE id > ?1 ORDER BY id");
	sqlite3_bind_int64(st, 1, ps_base);
	while (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, sizeof(id), "%lld",
		    (long long)sqlite3_column_int64(st, 0));
		vals[0] = id;
		for (i = 1; i < 6; i++)
			vals[i] = (const char *)sqlite3_column_text(st, i);
		PQclear(store_exec(sql, 6, vals, NULL, NULL, 0));
	}
	sqlite3_finalize(st);
}

/*
 * After a command that succeeded: when it changed the policy, the scratch
 * copy becomes the store's head, with its change-log entries, and the
 * nodes hear of it; all in one commit. A command that changed nothing
 * leaves the store as it was.
 */
void
policy_store_finish(struct ctl *ctl)
{
	static const char head[] = "INSERT INTO policy_head (one, change_id, "
	    "schema_version, image, sha256, time) VALUES (true, $1, $2, $3, "
	    "$4, now()) ON CONFLICT (one) DO UPDATE SET change_id = $1, "
	    "schema_version = $2, image = $3, sha256 = $4, time = now()";
	unsigned char	 sum[SHA256_DIGEST_LENGTH], *image;
	const char	*vals[4];
	char		 id[24], version[16];
	sqlite3_int64	 size;
	int		 lens[4], fmts[4] = { 0, 0, 1, 1 };
	int64_t		 newest;
	int		 publish;

	if (ps_pg == NULL)
		return;
	newest = sql_int(ctl, "SELECT coalesce(max(id), 0) FROM changes",
	    NULL, 0, 0);
	/* init also stores a policy brought to this build's schema. */
	publish = newest > ps_base || (ps_init && (ps_fresh ||
	    ps_schema < policy_db_latest()));
	/*
	 * A change is stored in the schema the fleet reads: a newer one
	 * (this socksctl's) only through init, once every node reads it.
	 */
	if (publish && !ps_init && !ps_fresh && ps_schema < policy_db_latest())
		ctl_error("policy_db: the fleet's policy is of schema %d and "
		    "this socksctl's is %d: nothing changed. Upgrade every node, "
		    "then run socksctl init to bring the policy to schema %d",
		    ps_schema, policy_db_latest(), policy_db_latest());
	if (publish) {
		if (!sqlite3_get_autocommit(ctl->ctl_db))
			ctl_error("policy_db: a transaction is still open");
		store_changes(ctl);
		if ((image = sqlite3_serialize(ctl->ctl_db, "main", &size,
		    0)) == NULL)
			ctl_error("policy_db: cannot copy the policy: %s",
			    sqlite3_errmsg(ctl->ctl_db));
		if (size > CENTRAL_POLICY_MAX)
			ctl_error("policy_db: the policy is %lld bytes; nodes "
			    "take at most %d", (long long)size,
			    CENTRAL_POLICY_MAX);
		SHA256(image, (size_t)size, sum);
		snprintf(id, sizeof(id), "%lld", (long long)newest);
		snprintf(version, sizeof(version), "%d",
		    policy_db_version(ctl->ctl_db));
		vals[0] = id;
		vals[1] = version;
		vals[2] = (const char *)image;
		vals[3] = (const char *)sum;
		lens[0] = lens[1] = 0;
		lens[2] = (int)size;
		lens[3] = (int)sizeof(sum);
		PQclear(store_exec(head, 4, vals, lens, fmts, 0));
		sqlite3_free(image);
		vals[0] = id;
		PQclear(store_exec("SELECT pg_notify('socksgw_policy', $1)", 1,
		    vals, NULL, NULL, 0));
	}
	PQclear(store_exec(publish ? "COMMIT" : "ROLLBACK", 0, NULL, NULL,
	    NULL, 0));
	PQfinish(ps_pg);
	ps_pg = NULL;
}

/*
 * socksctl init on a fleet: the store's schema, and an empty policy as its
 * first head when it has none, so that nodes have one to follow. Whether
 * the store had none.
 */
int
policy_store_init(struct ctl *ctl)
{
	ps_init = 1;
	ctl_db(ctl);
	return (ps_fresh);
}
