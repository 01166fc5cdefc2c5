/*
 * audit_store.c: auditd's side of audit.db. It owns the only connection
 * that writes it (WAL mode, so socksctl's reads never block it), reuses
 * its prepared statements, and commits a batch of records in one
 * transaction together with where the batch ends in the proxy's
 * numbering (the intake row), so a resend after a crash of either
 * process neither loses nor repeats a record.
 *
 * A relayed session gets its row when the relay starts and completes it
 * at the end, so even a crash leaves a trace of who was connected; every
 * other request is one complete row. Each completed row takes the next
 * place in the hash chain (audit_chain.c); audit_retention.c signs its
 * head and prunes it, audit_usage.c keeps the quota usage beside it.
 *
 * The database is opened, migrated and put in WAL mode while auditd is
 * still root, so the -wal and -shm files exist before the privilege drop;
 * the connection stays open for the writer. audit.key is read then too:
 * auditd's account holds it in memory only.
 */
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "audit_chain.h"
#include "conf.h"
#include "evidence.h"
#include "log.h"
#include "policy.h"

#include "audit.h"
#include "audit_store_int.h"

#include "base/clock.h"


struct store	 store;

/* Writing records -------------------------------------------------------- */

/*
 * A record the database refuses for good (a constraint: a duplicate
 * session id, a trigger an operator added): retrying it would block the
 * log, and with audit_failure block the gateway, forever. It is left out
 * of the chain (which stays intact) and logged with what identifies it;
 * the rest of the batch is written. Counted with the lost records.
 */
static void
audit_refused(struct audit_rec *r)
{
	log_warnx("audit: the database refused the record of session %llu "
	    "(user %s, client %s, %s %s:%u, %s): %s; left out",
	    (unsigned long long)r->ar_sid, r->ar_user[0] ? r->ar_user : "-",
	    r->ar_client, r->ar_cmd[0] ? r->ar_cmd : "-", r->ar_dst_host,
	    r->ar_dst_port, r->ar_allow ? "allow" : "deny",
	    sqlite3_errmsg(store.db));
	store.refused++;
	r->ar_type = AR_SKIP;
}

/*
 * Writes one batch in one transaction, with the proxy's rseq of its last
 * record (and the last it said it had): 0, or -1 (rolled back).
 */
int
store_write(struct audit_rec *batch, size_t n, uint64_t rseq,
    uint64_t produced)
{
	struct audit_fields	 f;
	unsigned char		 hash[32], prev[32];
	const struct audit_stmt	*as;
	int64_t			 seq = store.seq;
	size_t			 i;
	int			 rc;

	memcpy(prev, store.hash, 32);
	audit_coalesce(batch, n);
	if (sqlite3_exec(store.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return (-1);
	for (i = 0; i < n; i++) {
		struct audit_rec *r = &batch[i];

		if (r->ar_type == AR_SKIP)
			continue;
		as = r->ar_type == AR_START ? &store.start :
		    r->ar_type == AR_END ? &store.finish : &store.insert;
		audit_bind(as, r);
		if (r->ar_type != AR_START) {
			audit_fields_of(r, seq + 1, &f);
			if (audit_chain_hash(store.md, prev, &f, hash) == -1)
				goto fail;
			audit_bind_link(as, seq + 1, hash);
		}
		if ((rc = sqlite3_step(as->as_st)) == SQLITE_DONE &&
		    r->ar_type == AR_END && sqlite3_changes(store.db) == 0) {
			/* Its start was never written (audit was down): whole. */
			audit_bind(&store.insert, r);
			audit_bind_link(&store.insert, seq + 1, hash);
			rc = sqlite3_step(store.insert.as_st);
		}
		if (rc == SQLITE_CONSTRAINT) {
			audit_refused(r);
			continue;
		}
		if (rc != SQLITE_DONE)
			goto fail;
		if (r->ar_type != AR_START) {
			r->ar_seq = ++seq;
			memcpy(prev, hash, 32);
		}
	}
	if (rseq != 0 && store_intake_set(rseq, store.in.si_usage,
	    produced) == -1)
		goto fail;
	if (sqlite3_exec(store.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (rseq != 0) {
		store.in.si_records = rseq;
		store.in.si_produced = produced;
	}
	store.seq = seq;
	memcpy(store.hash, prev, 32);
	for (i = 0; i < n; i++)
		if (batch[i].ar_type != AR_START && batch[i].ar_type != AR_SKIP)
			audit_syslog_record(&batch[i], batch[i].ar_seq);
	return (0);
fail:
	log_warnx("audit: writing records: %s", sqlite3_errmsg(store.db));
	sqlite3_exec(store.db, "ROLLBACK", NULL, NULL, NULL);
	return (-1);
}

static void
audit_text(sqlite3_stmt *st, int col, char *out, size_t len)
{
	const unsigned char	*t = sqlite3_column_text(st, col);

	snprintf(out, len, "%s", t != NULL ? (const char *)t : "");
}

/*
 * Rows a crash left open (a relayed session's start, never completed)
 * are closed at the next start, as what they are: "gateway restarted",
 * with the time of that start, and chained like any completed row.
 */
static int
store_close_orphans(struct audit_rec *batch, const char *why)
{
	sqlite3_stmt	*st;
	int64_t		 now = gw_clock_of(CLOCK_REALTIME), total = 0;
	size_t		 n;
	int		 rc = 0;

	for (;;) {
		if (sqlite3_prepare_v2(store.db, "SELECT kind, session_id, "
		    "start_ms, user, client_addr, client_port, command, "
		    "dst_host, dst_addr, dst_port, dst_country, verdict, "
		    "rule_id, reason, bytes_up, bytes_down, protocol, ident, "
		    "packets_up, packets_down, udp_destinations, udp_denied, "
		    "auth_method FROM records WHERE seq IS NULL ORDER BY id "
		    "LIMIT 4096",
		    -1, &st, NULL) != SQLITE_OK)
			return (-1);
		for (n = 0; n < AUDIT_BATCH && sqlite3_step(st) == SQLITE_ROW;
		    n++) {
			struct audit_rec	*r = &batch[n];

			memset(r, 0, sizeof(*r));
			r->ar_type = AR_END;
			r->ar_sid = (uint64_t)sqlite3_column_int64(st, 1);
			r->ar_start_ms = sqlite3_column_int64(st, 2);
			r->ar_end_ms = now;
			audit_text(st, 3, r->ar_user, sizeof(r->ar_user));
			audit_text(st, 4, r->ar_client, sizeof(r->ar_client));
			r->ar_client_port = (uint16_t)sqlite3_column_int(st, 5);
			audit_text(st, 6, r->ar_cmd, sizeof(r->ar_cmd));
			audit_text(st, 7, r->ar_dst_host,
			    sizeof(r->ar_dst_host));
			audit_text(st, 8, r->ar_dst_addr,
			    sizeof(r->ar_dst_addr));
			r->ar_dst_port = (uint16_t)sqlite3_column_int(st, 9);
			audit_text(st, 10, r->ar_country, sizeof(r->ar_country));
			r->ar_allow = strcmp((const char *)
			    sqlite3_column_text(st, 11), "allow") == 0;
			r->ar_rule = sqlite3_column_int64(st, 12);
			audit_text(st, 13, r->ar_reason, sizeof(r->ar_reason));
			r->ar_up = (uint64_t)sqlite3_column_int64(st, 14);
			r->ar_down = (uint64_t)sqlite3_column_int64(st, 15);
			r->ar_proto = audit_protocol_of((const char *)
			    sqlite3_column_text(st, 16));
			audit_text(st, 17, r->ar_ident, sizeof(r->ar_ident));
			r->ar_packets[0] = (uint64_t)sqlite3_column_int64(st,
			    18);
			r->ar_packets[1] = (uint64_t)sqlite3_column_int64(st,
			    19);
			r->ar_udp_dests = (uint32_t)sqlite3_column_int(st, 20);
			r->ar_udp_denied = (uint32_t)sqlite3_column_int(st, 21);
			r->ar_auth = audit_auth_of((const char *)
			    sqlite3_column_text(st, 22));
			snprintf(r->ar_close, sizeof(r->ar_close), "%s",
			    why);
		}
		sqlite3_finalize(st);
		if (n == 0)
			break;
		if (store_write(batch, n, 0, 0) == -1) {
			rc = -1;
			break;
		}
		total += (int64_t)n;
	}
	if (total > 0)
		log_warnx("audit: %lld sessions left open by the last run "
		    "closed as \"%s\"", (long long)total, why);
	return (rc);
}


/*
 * As root, before the privilege drop: opens (creating, migrating) the
 * audit database in WAL mode and prepares the writer.
 */
int
store_open(const struct conf *c, char **cause)
{
	char		 sql[1024];
	sqlite3_stmt	*st;
	const void	*h;

	if (c->c_audit_db == NULL)
		return (0);
	if (sqlite3_open_v2(c->c_audit_db, &store.db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
	    NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_busy_timeout(store.db, 2000);
	/*
	 * WAL with synchronous NORMAL: a commit is durable against a crash of
	 * gatewayd (the kill -9 bound), and is synced at checkpoints.
	 */
	/* Larger pages: fewer splits in the indexes, fewer WAL frames. */
	/*
	 * Checkpoints are audit_maint.c's thread's, never the writer's: the
	 * WAL starts again once one has caught up, and is cut back to 64 MiB.
	 */
	/*
	 * The cache holds the pages each batch touches: the right edges of
	 * the time-ordered indexes, and a leaf per user of the user index
	 * (5,000 users of 16 KiB pages are 80 MB: below that, each insert
	 * reads its leaf back and each commit writes it out again).
	 */
	snprintf(sql, sizeof(sql), "PRAGMA page_size = 16384; "
	    "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; "
	    "PRAGMA journal_size_limit = 67108864; "
	    "PRAGMA cache_size = -%zu", c->c_audit_cache_size / 1024);
	if (sqlite3_exec(store.db, sql, NULL, NULL, NULL) != SQLITE_OK)
		goto sqlfail;
	if (db_schema_migrate(store.db, DB_SCHEMA_AUDIT, cause) == -1 ||
	    wal_open(store.db, c->c_audit_db, cause) == -1)
		goto fail;
	if (audit_stmt_prepare(store.db, &store.start, AS_START) == -1 ||
	    audit_stmt_prepare(store.db, &store.insert, AS_INSERT) == -1 ||
	    audit_stmt_prepare(store.db, &store.finish, AS_FINISH) == -1)
		goto sqlfail;
	/*
	 * The chain continues from its last link (or the anchor). The partial
	 * index on seq answers max() only when the query says seq IS NOT NULL.
	 */
	if (sqlite3_prepare_v2(store.db, "SELECT seq, hash FROM records WHERE "
	    "seq = (SELECT max(seq) FROM records WHERE seq IS NOT NULL) "
	    "UNION ALL SELECT seq, hash "
	    "FROM chain WHERE name = 'anchor' ORDER BY 1 DESC LIMIT 1", -1,
	    &st, NULL) != SQLITE_OK)
		goto sqlfail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		store.seq = sqlite3_column_int64(st, 0);
		if ((h = sqlite3_column_blob(st, 1)) != NULL &&
		    sqlite3_column_bytes(st, 1) == 32)
			memcpy(store.hash, h, 32);
	}
	sqlite3_finalize(st);
	/*
	 * The signing key, read (or made) as root before the privilege drop:
	 * auditd's account holds it in memory only, and audit.key is
	 * readable by root alone.
	 */
	{
		char	 keypath[PATH_MAX], pubpath[PATH_MAX];

		int	 signed_before = 0;

		evidence_paths(c->c_audit_db, keypath, pubpath,
		    sizeof(keypath));
		if (sqlite3_prepare_v2(store.db, "SELECT count(*) FROM "
		    "checkpoints", -1, &st, NULL) != SQLITE_OK)
			goto sqlfail;
		if (sqlite3_step(st) == SQLITE_ROW)
			signed_before = sqlite3_column_int64(st, 0) > 0;
		sqlite3_finalize(st);
		/*
		 * A log signed before but no key now: a new key would let a
		 * rewritten log verify under it. Fail closed.
		 */
		if (signed_before && access(keypath, F_OK) == -1) {
			if (asprintf(cause, "audit: %s is missing but %s holds "
			    "signed checkpoints: restore the key, or move the "
			    "log away to start a new one", keypath,
			    c->c_audit_db) < 0)
				*cause = NULL;
			goto fail;
		}
		if ((store.key = evidence_key(keypath, pubpath, cause)) ==
		    NULL)
			goto fail;
	}
	/*
	 * Nothing in the database says where the last checkpoint was (a
	 * planted row could stop all signing): the head is signed again as
	 * soon as the writer runs.
	 */
	store.cp_seq = 0;
	if (sqlite3_prepare_v2(store.db, "INSERT OR REPLACE INTO intake (id, "
	    "proxy_gen, records, usage, produced, sid_floor) VALUES (1, ?1, "
	    "?2, ?3, ?4, ?5)", -1, &store.intake, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(store.db, "SELECT proxy_gen, records, usage, "
	    "produced, sid_floor FROM intake WHERE id = 1", -1, &st, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		store.in.si_gen = (uint64_t)sqlite3_column_int64(st, 0);
		store.in.si_records = (uint64_t)sqlite3_column_int64(st, 1);
		store.in.si_usage = (uint64_t)sqlite3_column_int64(st, 2);
		store.in.si_produced = (uint64_t)sqlite3_column_int64(st, 3);
		store.in.si_sid_floor = (uint64_t)sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	if ((store.md = EVP_MD_CTX_new()) == NULL)
		goto sqlfail;
	store.retention_days = c->c_audit_retention_days;
	store.cp_at = gw_mono_ms();
	audit_syslog_open(c);
	return (0);
sqlfail:
	if (asprintf(cause, "audit_db %s: %s", c->c_audit_db,
	    policy_db_errmsg(c->c_audit_db, store.db)) < 0)
		*cause = NULL;
fail:
	sqlite3_close(store.db);
	store.db = NULL;
	return (-1);
}

void
store_close(void)
{
	wal_stop();
	sqlite3_finalize(store.start.as_st);
	sqlite3_finalize(store.insert.as_st);
	sqlite3_finalize(store.finish.as_st);
	sqlite3_finalize(store.intake);
	sqlite3_close(store.db);
	store.db = NULL;
	EVP_MD_CTX_free(store.md);
	store.md = NULL;
	EVP_PKEY_free(store.key);
	store.key = NULL;
	audit_syslog_close();
}

uint64_t
store_refused(void)
{
	return (store.refused);
}

void
store_count_refused(uint64_t n)
{
	store.refused += n;
}

/* Where the proxy's numbering stands, as committed. */
int
store_intake(struct store_intake *in)
{
	*in = store.in;
	return (0);
}

/* In the caller's transaction. */
int
store_intake_set(uint64_t records, uint64_t usage, uint64_t produced)
{
	sqlite3_reset(store.intake);
	sqlite3_bind_int64(store.intake, 1, (int64_t)store.in.si_gen);
	sqlite3_bind_int64(store.intake, 2, (int64_t)records);
	sqlite3_bind_int64(store.intake, 3, (int64_t)usage);
	sqlite3_bind_int64(store.intake, 4, (int64_t)produced);
	sqlite3_bind_int64(store.intake, 5, (int64_t)store.in.si_sid_floor);
	return (sqlite3_step(store.intake) == SQLITE_DONE ? 0 : -1);
}

/*
 * The highest session id on record below 2^53 (see main.c): ids of
 * the older numbering (milliseconds << 20) are all above 2^53 and the
 * new ones below it until 2106, so an upgraded log numbers afresh below
 * 2^53 without meeting them.
 */
static uint64_t
store_max_sid(void)
{
	sqlite3_stmt	*st;
	int64_t		 max = 0;

	if (sqlite3_prepare_v2(store.db, "SELECT max(session_id) FROM records "
	    "WHERE session_id < 9007199254740992", -1, &st, NULL) != SQLITE_OK)
		return (0);
	if (sqlite3_step(st) == SQLITE_ROW)
		max = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (max > 0 ? (uint64_t)max : 0);
}

/*
 * A proxy run auditd has not seen: the last run's open rows are closed
 * (why: "gateway restarted" or "proxy restarted"; NULL: a live run whose
 * start was never recorded), what it said it had but never handed over
 * is counted, and the numbering starts again, with the run's session ids
 * above every id on record. 0, or -1 (nothing moved: the caller ends,
 * and the next auditd tries again).
 */
int
store_new_generation(uint64_t gen, const char *why)
{
	struct audit_rec	*batch;
	uint64_t		 lost = 0;
	int			 ok = 1;

	if (why != NULL && store.in.si_gen != 0 && store.in.si_produced >
	    store.in.si_records)
		lost = store.in.si_produced - store.in.si_records;
	if (why != NULL) {
		if ((batch = calloc(AUDIT_BATCH, sizeof(*batch))) == NULL)
			fatalx("auditd: out of memory");
		ok = store_close_orphans(batch, why) == 0;
		free(batch);
	}
	if (!ok)
		return (-1);
	store.in.si_gen = gen;
	store.in.si_records = store.in.si_usage = store.in.si_produced = 0;
	store.in.si_sid_floor = store_max_sid();
	if (sqlite3_exec(store.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK || store_intake_set(0, 0, 0) == -1 ||
	    sqlite3_exec(store.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_warnx("audit: recording the new proxy run: %s",
		    sqlite3_errmsg(store.db));
		sqlite3_exec(store.db, "ROLLBACK", NULL, NULL, NULL);
		return (-1);
	}
	if (lost > 0) {
		log_warnx("audit: the last proxy run ended with at least %llu "
		    "records it had not handed over: lost",
		    (unsigned long long)lost);
		store.refused += lost;
	}
	return (0);
}
