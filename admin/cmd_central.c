/*
 * cmd_central.c: socksctl's views of the fleet's central audit store
 * (audit_central, filled by each node's shipper, gatewayd/auditd/
 * audit_ship.c): audit list --central, audit verify --central and audit
 * nodes.
 *
 * Verify copies one node's records, anchor and checkpoints from the store
 * into a temporary SQLite log of the local schema and checks it with the
 * very code that checks a node's own log (audit_verify_db), so a chain and
 * a checkpoint mean the same thing in both places. Then it checks what only
 * the store has: that the node's cursor (the last record it shipped) is
 * the chain's last record, so records deleted from the end show too.
 *
 * Every text comes back as the bytes clients sent (bytea) and is escaped
 * by the table printer, as local listings are.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "admin.h"
#include "audit_chain.h"
#include "central.h"
#include "conf.h"
#include "escape.h"
#include "evidence.h"
#include "policy.h"

static PGconn *
central_open(struct ctl *ctl)
{
	PGconn	*pg;
	char	 why[512];

	if (ctl->ctl_conf->c_audit_central == NULL)
		ctl_error("%s: no audit_central configured",
		    ctl->ctl_conf_path);
	if ((pg = central_connect(ctl->ctl_conf->c_audit_central, "socksctl",
	    why, sizeof(why))) == NULL)
		ctl_error("audit_central: %s", why);
	return (pg);
}

static void
central_fail(PGconn *pg, PGresult *r)
{
	char	 why[512];

	snprintf(why, sizeof(why), "%s", r != NULL ? PQresultErrorMessage(r) :
	    PQerrorMessage(pg));
	why[strcspn(why, "\n")] = '\0';
	ctl_error("audit_central: %s", why);
}

/* A query with text parameters, its result as raw bytes (binary). */
static PGresult *
central_query(PGconn *pg, const char *sql, int n, const char *const *vals,
    const int *lens, const int *fmts)
{
	PGresult	*r;

	r = PQexecParams(pg, sql, n, NULL, vals, lens, fmts, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		central_fail(pg, r);
	return (r);
}

/* A bytea or text cell as a C string (libpq ends each with a NUL). */
static const char *
central_cell(PGresult *r, int row, int col)
{
	return (PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col));
}

/* The store's columns in AUDIT_COLUMNS order, every one as text or bytea. */
#define CENTRAL_COLUMNS "id::text, kind, session_id::text, start_ms::text, " \
	"end_ms::text, \"user\", client_addr, client_port::text, command, "  \
	"dst_host, dst_addr, dst_port::text, dst_country, verdict, "         \
	"rule_id::text, reason, bytes_up::text, bytes_down::text, "          \
	"close_reason, seq::text, hash, protocol, ident, packets_up::text, " \
	"packets_down::text, udp_destinations::text, udp_denied::text, "     \
	"auth_method, rec_node, node"

/* socksctl audit list --central: audit list's filters, across nodes. */
int
central_list(struct ctl *ctl, const struct audit_filter *f)
{
	PGconn		*pg = central_open(ctl);
	PGresult	*r;
	struct table	*t;
	const char	*v[10], *vals[29];
	int		 lens[10] = { 0 }, fmts[10] = { 0 };
	char		 since[24], until[24], rule[24], limit[24], sess[24];
	int		 i, k;

	snprintf(since, sizeof(since), "%lld", (long long)f->af_since);
	snprintf(until, sizeof(until), "%lld", (long long)f->af_until);
	snprintf(rule, sizeof(rule), "%lld", (long long)f->af_rule);
	snprintf(limit, sizeof(limit), "%lld", (long long)f->af_limit);
	snprintf(sess, sizeof(sess), "%lld", (long long)f->af_session);
	v[0] = since;
	v[1] = until;
	/* Byte strings compared as bytes: binary, never bytea escapes. */
	v[2] = f->af_user;
	v[3] = f->af_verdict;
	v[4] = f->af_dst;
	v[5] = f->af_client;
	for (i = 2; i <= 5; i++) {
		fmts[i] = 1;
		lens[i] = v[i] != NULL ? (int)strlen(v[i]) : 0;
	}
	v[6] = rule;
	v[7] = limit;
	v[8] = sess;
	v[9] = f->af_node;
	r = central_query(pg, "SELECT " CENTRAL_COLUMNS " FROM audit_records "
	    "WHERE start_ms >= $1 AND start_ms <= $2 AND ($3::bytea IS NULL OR "
	    "\"user\" = $3) AND ($4::bytea IS NULL OR verdict = $4) AND "
	    "($5::bytea IS NULL OR position($5 IN coalesce(dst_host, ''::bytea) "
	    "|| ' '::bytea || coalesce(dst_addr, ''::bytea)) > 0) AND "
	    "($6::bytea IS NULL OR client_addr = $6) AND ($7::bigint < 0 OR "
	    "rule_id = $7) AND ($9::bigint < 0 OR session_id = $9) AND "
	    "($10::text IS NULL OR node = $10) ORDER BY start_ms DESC, node, "
	    "id DESC LIMIT $8", 10, v, lens, fmts);
	t = audit_list_table();
	for (i = 0; i < PQntuples(r); i++) {
		for (k = 0; k < 28; k++)
			vals[k] = central_cell(r, i, k);
		vals[28] = central_cell(r, i, 29);	/* the node that shipped */
		audit_list_row(t, vals);
	}
	PQclear(r);
	PQfinish(pg);
	table_print(t, ctl->ctl_json);
	return (0);
}

/* socksctl audit nodes: each node's shipping, as the store has it. */
int
central_nodes(struct ctl *ctl, struct args *a)
{
	PGconn		*pg;
	PGresult	*r;
	struct table	*t;
	int		 i;

	args_done(a);
	pg = central_open(ctl);
	r = central_query(pg, "SELECT n.node, (SELECT count(*) FROM "
	    "audit_records c WHERE c.node = n.node)::text, n.anchor_seq::text, "
	    "n.shipped_seq::text, to_char(to_timestamp(n.last_ms / 1000.0) AT "
	    "TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), (SELECT "
	    "count(*) FROM audit_keys k WHERE k.node = n.node)::text FROM "
	    "audit_nodes n ORDER BY n.node", 0, NULL, NULL, NULL);
	t = table_new(6, "node", "#records", "#anchor", "#shipped_seq",
	    "last_shipped", "#keys");
	for (i = 0; i < PQntuples(r); i++)
		table_row(t, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
		    PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
		    PQgetvalue(r, i, 5));
	PQclear(r);
	PQfinish(pg);
	table_print(t, ctl->ctl_json);
	return (0);
}

/* A temporary SQLite log of the local schema, for one node's copy. */
static sqlite3 *
central_scratch(char **pathp)
{
	sqlite3		*db;
	char		*path, *cause = NULL;
	const char	*tmpdir = getenv("TMPDIR");
	int		 fd;

	/* A fleet's records can be large: TMPDIR says where they may go. */
	if (asprintf(&path, "%s/socksctl-central-XXXXXX", tmpdir != NULL &&
	    tmpdir[0] == '/' ? tmpdir : "/tmp") < 0)
		ctl_error("out of memory");
	if ((fd = mkstemp(path)) == -1)
		ctl_error("%s: %s", path, strerror(errno));
	close(fd);
	ctl_temp(path);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK || sqlite3_exec(db, "PRAGMA journal_mode = OFF; "
	    "PRAGMA synchronous = OFF", NULL, NULL, NULL) != SQLITE_OK)
		ctl_error("%s: %s", path, sqlite3_errmsg(db));
	if (db_schema_migrate(db, DB_SCHEMA_AUDIT, &cause) == -1)
		ctl_error("%s: %s", path, cause != NULL ? cause :
		    "out of memory");
	*pathp = path;
	return (db);
}

static void
central_bind(sqlite3_stmt *st, int i, PGresult *r, int row, int col,
    int integer)
{
	if (PQgetisnull(r, row, col))
		sqlite3_bind_null(st, i);
	else if (integer)
		sqlite3_bind_int64(st, i, strtoll(PQgetvalue(r, row, col), NULL,
		    10));
	else
		/* Text as the writer stores it; the hash is a blob. */
		sqlite3_bind_text(st, i, PQgetvalue(r, row, col),
		    PQgetlength(r, row, col), SQLITE_TRANSIENT);
}

/*
 * Runs a query row by row (libpq's single-row mode: a node's whole log is
 * never in memory at once), each row to fn.
 */
static void
central_rows(PGconn *pg, const char *sql, int n, const char *const *vals,
    void (*fn)(PGresult *, void *), void *arg)
{
	PGresult	*r;

	if (!PQsendQueryParams(pg, sql, n, NULL, vals, NULL, NULL, 1) ||
	    !PQsetSingleRowMode(pg))
		central_fail(pg, NULL);
	while ((r = PQgetResult(pg)) != NULL) {
		if (PQresultStatus(r) == PGRES_SINGLE_TUPLE)
			fn(r, arg);
		else if (PQresultStatus(r) != PGRES_TUPLES_OK)
			central_fail(pg, r);
		PQclear(r);
	}
}

/* Where central rows go: a scratch log's INSERT. */
struct central_sink {
	sqlite3		*cs_db;
	sqlite3_stmt	*cs_st;
	int64_t		 cs_n;
	int		 cs_renumber;	/* a report's: many nodes in one log */
};

/*
 * One record (CENTRAL_COLUMNS) into the scratch log, as the node wrote
 * it; or, for a report over several nodes, numbered anew (their ids,
 * session ids and chain places overlap), with the node that shipped it.
 */
static void
central_sink_record(PGresult *r, void *arg)
{
	/* AUDIT_ROW_COLUMNS: Integer, Text, the hash Blob (cmd_verify.c). */
	static const char	 kinds[] = "ITIIITTITTTITTITIITIBTTIIIITT";
	struct central_sink	*cs = arg;
	sqlite3_stmt		*st = cs->cs_st;
	int			 k;

	cs->cs_n++;
	for (k = 0; k < 29; k++) {
		if (cs->cs_renumber && (k == 0 || k == 20))
			sqlite3_bind_null(st, k + 1);
		else if (cs->cs_renumber && (k == 2 || k == 19))
			sqlite3_bind_int64(st, k + 1, cs->cs_n);
		else if (cs->cs_renumber && k == 28)
			central_bind(st, k + 1, r, 0, 29, 0);
		else if (kinds[k] == 'B' && !PQgetisnull(r, 0, k))
			sqlite3_bind_blob(st, k + 1, PQgetvalue(r, 0, k),
			    PQgetlength(r, 0, k), SQLITE_TRANSIENT);
		else
			central_bind(st, k + 1, r, 0, k, kinds[k] == 'I');
	}
	if (sqlite3_step(st) != SQLITE_DONE)
		ctl_error("a central record (node %s, id %s): %s",
		    term_text(PQgetvalue(r, 0, 29)), PQgetvalue(r, 0, 0),
		    sqlite3_errmsg(cs->cs_db));
	sqlite3_reset(st);
}

static void
central_sink_open(struct central_sink *cs, sqlite3 *db, int renumber)
{
	memset(cs, 0, sizeof(*cs));
	cs->cs_db = db;
	cs->cs_renumber = renumber;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO records (" AUDIT_ROW_COLUMNS
	    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
	    "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, "
	    "?27, ?28, ?29)", -1, &cs->cs_st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
}

/* Copies node's records and checkpoints into db. */
static void
central_copy(PGconn *pg, const char *node, sqlite3 *db)
{
	struct central_sink	 cs;
	PGresult		*r;
	sqlite3_stmt		*st;
	const char		*v[1] = { node };
	int			 i;

	central_sink_open(&cs, db, 0);
	central_rows(pg, "SELECT " CENTRAL_COLUMNS " FROM audit_records WHERE "
	    "node = $1 ORDER BY seq", 1, v, central_sink_record, &cs);
	sqlite3_finalize(cs.cs_st);
	if (sqlite3_prepare_v2(db, "INSERT INTO checkpoints (id, kind, seq, "
	    "hash, time_ms, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
	    &st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	r = central_query(pg, "SELECT id::text, kind, seq::text, hash, "
	    "time_ms::text, signature FROM audit_checkpoints WHERE node = $1 "
	    "ORDER BY id", 1, v, NULL, NULL);
	for (i = 0; i < PQntuples(r); i++) {
		central_bind(st, 1, r, i, 0, 1);
		central_bind(st, 2, r, i, 1, 0);
		central_bind(st, 3, r, i, 2, 1);
		sqlite3_bind_blob(st, 4, PQgetvalue(r, i, 3), PQgetlength(r, i,
		    3), SQLITE_TRANSIENT);
		central_bind(st, 5, r, i, 4, 1);
		sqlite3_bind_blob(st, 6, PQgetvalue(r, i, 5), PQgetlength(r, i,
		    5), SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE)
			ctl_error("node %s, checkpoint: %s", node,
			    sqlite3_errmsg(db));
		sqlite3_reset(st);
	}
	PQclear(r);
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
}

/* Does the record at seq carry the hash the node's cursor holds? */
static int
central_tail_hash(sqlite3 *db, int64_t seq, PGresult *n, int row)
{
	sqlite3_stmt	*st;
	int		 same;

	if (PQgetisnull(n, row, 4) || PQgetlength(n, row, 4) != 32 ||
	    sqlite3_prepare_v2(db, "SELECT hash FROM records WHERE seq = ?1",
	    -1, &st, NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, seq);
	same = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) ==
	    32 && memcmp(sqlite3_column_blob(st, 0), PQgetvalue(n, row, 4),
	    32) == 0;
	sqlite3_finalize(st);
	return (same);
}

/*
 * One node's copy: 0 intact, 1 not (said on stderr). pub pins its key;
 * else the one key the store holds for it is used (more: --pubkey).
 */
static int
central_verify_node(struct ctl *ctl, PGconn *pg, PGresult *n, int row,
    const char *pub)
{
	struct verify_result	 vr;
	const char		*node = PQgetvalue(n, row, 0), *v[1] = { node };
	char			*path, fp[EVIDENCE_FP_LEN], *cause = NULL;
	char			 name[ESC_FIELD_MAX], jname[ESC_FIELD_MAX];
	PGresult		*keys, *tail, *cps;
	int64_t			 covered;
	EVP_PKEY		*key = NULL;
	sqlite3			*db;
	sqlite3_stmt		*st;
	int64_t			 anchor = strtoll(PQgetvalue(n, row, 1), NULL, 10);
	int64_t			 shipped = strtoll(PQgetvalue(n, row, 3), NULL,
				    10);
	int			 bad = 1, found;

	/* The store's names are anyone's who can write there. */
	esc_log(name, sizeof(name), node);
	esc_json(jname, sizeof(jname), node);
	db = central_scratch(&path);
	central_copy(pg, node, db);
	if (anchor > 0) {
		if (sqlite3_prepare_v2(db, "INSERT INTO chain VALUES ('anchor', "
		    "?1, ?2)", -1, &st, NULL) != SQLITE_OK)
			ctl_error("%s", sqlite3_errmsg(db));
		sqlite3_bind_int64(st, 1, anchor);
		sqlite3_bind_blob(st, 2, PQgetvalue(n, row, 2), PQgetlength(n,
		    row, 2), SQLITE_TRANSIENT);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	keys = central_query(pg, "SELECT public_key FROM audit_keys WHERE node "
	    "= $1", 1, v, NULL, NULL);
	if (pub != NULL)
		key = evidence_pubkey_load(pub, &cause);
	else if (PQntuples(keys) == 1)
		key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
		    (const unsigned char *)PQgetvalue(keys, 0, 0),
		    (size_t)PQgetlength(keys, 0, 0));
	else if (asprintf(&cause, "the store holds %d public keys for it: "
	    "name the one to check with (--pubkey FILE)", PQntuples(keys)) < 0)
		cause = NULL;
	PQclear(keys);
	if (key == NULL) {
		fprintf(stderr, "node %s: %s\n", name, cause != NULL ? cause :
		    "a public key that is not Ed25519");
		goto done;
	}
	bad = audit_verify_db(db, key, NULL, 1, &vr);
	if (bad) {
		fprintf(stderr, "node %s: the central copy is not intact "
		    "(above)\n", name);
		goto done;
	}
	evidence_fingerprint(key, fp);
	/* The end: the last record shipped must be the chain's last. */
	tail = central_query(pg, "SELECT max(seq)::text FROM audit_records "
	    "WHERE node = $1", 1, v, NULL, NULL);
	found = !PQgetisnull(tail, 0, 0) ? 1 : 0;
	if ((found ? strtoll(PQgetvalue(tail, 0, 0), NULL, 10) : anchor) !=
	    shipped || (shipped > anchor && !central_tail_hash(db, shipped,
	    n, row))) {
		fprintf(stderr, "node %s: the store says it shipped up to chain "
		    "place %lld, and the chain there ends at %s: records were "
		    "deleted from the end, or the cursor was moved\n", name,
		    (long long)shipped, found ? PQgetvalue(tail, 0, 0) :
		    "its anchor");
		bad = 1;
	}
	PQclear(tail);
	if (bad)
		goto done;
	/*
	 * A node's checkpoints are never deleted and are shipped in their
	 * order: ids 1 to its cursor, none missing, or some were removed
	 * (with the records after them rewritten, verify would not see it).
	 */
	cps = central_query(pg, "SELECT count(*)::text, coalesce(max(id), "
	    "0)::text, coalesce(max(seq) FILTER (WHERE kind = 'checkpoint'), "
	    "0)::text, (SELECT shipped_cp::text FROM audit_nodes WHERE node = "
	    "$1) FROM audit_checkpoints WHERE node = $1", 1, v, NULL, NULL);
	covered = strtoll(PQgetvalue(cps, 0, 2), NULL, 10);
	if (strcmp(PQgetvalue(cps, 0, 0), PQgetvalue(cps, 0, 1)) != 0 ||
	    strcmp(PQgetvalue(cps, 0, 1), PQgetvalue(cps, 0, 3)) != 0) {
		fprintf(stderr, "node %s: %s checkpoints where the node shipped "
		    "1 to %s, the highest %s: signed checkpoints were deleted\n",
		    name, PQgetvalue(cps, 0, 0), PQgetvalue(cps, 0, 3),
		    PQgetvalue(cps, 0, 1));
		bad = 1;
	}
	PQclear(cps);
	if (bad)
		goto done;
	if (ctl->ctl_json)
		printf("{\"node\": \"%s\", \"verified\": %lld, \"checkpoints\": "
		    "%lld, \"anchor\": %lld, \"unsigned_tail\": %lld, "
		    "\"key\": \"%s\", \"completed_at_restart\": %lld, "
		    "\"pinned_key\": %s, \"intact\": true}\n", jname,
		    (long long)vr.vr_records, (long long)vr.vr_points,
		    (long long)anchor, (long long)(shipped - (covered > anchor ?
		    covered : anchor)), fp, (long long)vr.vr_restarted,
		    pub != NULL ? "true" : "false");
	else
		printf("node %s: %lld records verified (chain places %lld to "
		    "%lld; the last %lld after its newest signed checkpoint), "
		    "%lld signed checkpoints (key %s%s): the chain is intact\n",
		    name, (long long)vr.vr_records, (long long)anchor + 1,
		    (long long)shipped, (long long)(shipped - (covered > anchor ?
		    covered : anchor)), (long long)vr.vr_points, fp, pub != NULL ?
		    ", pinned" : ", as the store holds it: pin a copy with "
		    "--node NAME --pubkey FILE");
done:
	EVP_PKEY_free(key);
	free(cause);
	sqlite3_close(db);
	ctl_temp_done(path);	/* a fleet has more nodes than slots */
	free(path);
	return (bad);
}

/*
 * socksctl audit verify --central [--node NAME [--pubkey FILE]]: each
 * node's copy, or one; exit 1 if any is not intact.
 */
int
central_verify(struct ctl *ctl, const char *node, const char *pub)
{
	PGconn		*pg = central_open(ctl);
	PGresult	*n;
	const char	*v[1] = { node };
	int		 i, bad = 0;

	/* One snapshot: batches shipped meanwhile would look like losses. */
	n = PQexec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (PQresultStatus(n) != PGRES_COMMAND_OK)
		central_fail(pg, n);
	PQclear(n);

	n = central_query(pg, "SELECT node, anchor_seq::text, anchor_hash, "
	    "shipped_seq::text, shipped_hash FROM audit_nodes WHERE $1::text "
	    "IS NULL OR node = $1 ORDER BY node", 1, v, NULL, NULL);
	if (PQntuples(n) == 0)
		ctl_error("audit_central: %s%s%s", node != NULL ? "no node " :
		    "no node has shipped records yet", node != NULL ? node : "",
		    node != NULL ? " in the central store" : "");
	for (i = 0; i < PQntuples(n); i++)
		bad |= central_verify_node(ctl, pg, n, i, pub);
	PQclear(n);
	PQfinish(pg);
	return (bad);
}

/*
 * socksctl audit report --central: the records of [since, until] (of one
 * node, or every one) in a scratch log of the local schema, which the
 * report reads as it reads a node's own; its path.
 */
char *
central_report_log(struct ctl *ctl, int64_t since, int64_t until,
    const char *node)
{
	struct central_sink	 cs;
	PGconn			*pg = central_open(ctl);
	sqlite3			*db;
	char			*path, from[24], to[24];
	const char		*v[3] = { from, to, node };

	snprintf(from, sizeof(from), "%lld", (long long)since);
	snprintf(to, sizeof(to), "%lld", (long long)until);
	db = central_scratch(&path);
	central_sink_open(&cs, db, 1);
	central_rows(pg, "SELECT " CENTRAL_COLUMNS " FROM audit_records WHERE "
	    "start_ms >= $1 AND start_ms <= $2 AND ($3::text IS NULL OR node = "
	    "$3) ORDER BY node, seq", 3, v, central_sink_record, &cs);
	sqlite3_finalize(cs.cs_st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	sqlite3_close(db);
	PQfinish(pg);
	return (path);
}
