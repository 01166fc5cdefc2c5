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
 * place in the hash chain (audit_chain.c). Every 10,000 records or 60 s,
 * at each start and at the end, the chain's head is signed (Ed25519,
 * evidence.c); pruning (audit_retention_days) cuts only at a checkpoint
 * this key signed, after recomputing the chain up to it, and signs the
 * cut.
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

#include "gatewayd.h"
#include "auditd.h"
#include "audit_proto.h"
#include "policy.h"

/*
 * A prune step reaches the next signed checkpoint: they are at most
 * 10,000 records and a batch apart. (At 500 a step, as before, a busy
 * log had no checkpoint in reach and was never pruned.)
 */
#define AUDIT_PRUNE_STEP	20000
#define AUDIT_CHECKPOINT_RECORDS 10000	/* a signed checkpoint at least */
#define AUDIT_CHECKPOINT_MS	60000	/* ... this often */

static struct {
	sqlite3			*sa_db;
	sqlite3_stmt		*sa_start, *sa_finish, *sa_insert, *sa_intake;
	int64_t			 sa_seq;	/* the chain's head */
	unsigned char		 sa_hash[32];
	uint64_t		 sa_refused;	/* records the database refused */
	EVP_MD_CTX		*sa_md;
	EVP_PKEY		*sa_key;	/* signs checkpoints */
	int64_t			 sa_cp_seq;	/* the last signed head */
	int64_t			 sa_cp_at;	/* monotonic ms */
	int			 sa_retention_days;
	struct store_intake	 sa_in;		/* as committed */
} sa;

static int	 store_intake_set(uint64_t, uint64_t, uint64_t);

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
	    sqlite3_errmsg(sa.sa_db));
	sa.sa_refused++;
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
	sqlite3_stmt		*st;
	int64_t			 seq = sa.sa_seq;
	size_t			 i;
	int			 rc;

	memcpy(prev, sa.sa_hash, 32);
	audit_coalesce(batch, n);
	if (sqlite3_exec(sa.sa_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return (-1);
	for (i = 0; i < n; i++) {
		struct audit_rec *r = &batch[i];

		if (r->ar_type == AR_SKIP)
			continue;
		st = r->ar_type == AR_START ? sa.sa_start :
		    r->ar_type == AR_END ? sa.sa_finish : sa.sa_insert;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		audit_bind(st, r);
		if (r->ar_type != AR_START) {
			audit_fields_of(r, seq + 1, &f);
			if (audit_chain_hash(sa.sa_md, prev, &f, hash) == -1)
				goto fail;
			sqlite3_bind_int64(st, 20, seq + 1);
			sqlite3_bind_blob(st, 21, hash, 32, SQLITE_STATIC);
		}
		if ((rc = sqlite3_step(st)) == SQLITE_DONE &&
		    r->ar_type == AR_END && sqlite3_changes(sa.sa_db) == 0) {
			/* Its start was never written (audit was down): whole. */
			sqlite3_reset(sa.sa_insert);
			sqlite3_clear_bindings(sa.sa_insert);
			audit_bind(sa.sa_insert, r);
			sqlite3_bind_int64(sa.sa_insert, 20, seq + 1);
			sqlite3_bind_blob(sa.sa_insert, 21, hash, 32,
			    SQLITE_STATIC);
			rc = sqlite3_step(sa.sa_insert);
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
	if (rseq != 0 && store_intake_set(rseq, sa.sa_in.si_usage,
	    produced) == -1)
		goto fail;
	if (sqlite3_exec(sa.sa_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (rseq != 0) {
		sa.sa_in.si_records = rseq;
		sa.sa_in.si_produced = produced;
	}
	sa.sa_seq = seq;
	memcpy(sa.sa_hash, prev, 32);
	for (i = 0; i < n; i++)
		if (batch[i].ar_type != AR_START && batch[i].ar_type != AR_SKIP)
			audit_syslog_record(&batch[i], batch[i].ar_seq);
	return (0);
fail:
	log_warnx("audit: writing records: %s", sqlite3_errmsg(sa.sa_db));
	sqlite3_exec(sa.sa_db, "ROLLBACK", NULL, NULL, NULL);
	return (-1);
}

/*
 * Signs cp and stores it (in the caller's transaction, if one is open);
 * also to syslog. 0, or -1.
 */
static int
store_sign(struct checkpoint *cp)
{
	unsigned char	 sig[EVIDENCE_SIG_LEN];
	sqlite3_stmt	*st;
	int		 rc;

	if (evidence_sign(sa.sa_key, cp, sig) == -1) {
		log_warnx("audit: cannot sign the %s at %lld", cp->cp_kind,
		    (long long)cp->cp_seq);
		return (-1);
	}
	if (sqlite3_prepare_v2(sa.sa_db, "INSERT INTO checkpoints (kind, seq, "
	    "hash, time_ms, signature) VALUES (?1, ?2, ?3, ?4, ?5)", -1, &st,
	    NULL) != SQLITE_OK)
		return (-1);
	sqlite3_bind_text(st, 1, cp->cp_kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cp->cp_seq);
	sqlite3_bind_blob(st, 3, cp->cp_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, cp->cp_time_ms);
	sqlite3_bind_blob(st, 5, sig, sizeof(sig), SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return (-1);
	audit_syslog_checkpoint(cp, sig);
	return (0);
}

/* Signs the chain's head if it moved: 10,000 records, 60 s, or now. */
void
store_checkpoint(int64_t now, int force)
{
	struct checkpoint	 cp;

	if (sa.sa_key == NULL || sa.sa_seq <= sa.sa_cp_seq || (!force &&
	    sa.sa_seq - sa.sa_cp_seq < AUDIT_CHECKPOINT_RECORDS &&
	    now - sa.sa_cp_at < AUDIT_CHECKPOINT_MS))
		return;
	memset(&cp, 0, sizeof(cp));
	cp.cp_kind = "checkpoint";
	cp.cp_seq = sa.sa_seq;
	memcpy(cp.cp_hash, sa.sa_hash, 32);
	cp.cp_time_ms = store_clock_ms(CLOCK_REALTIME);
	if (store_sign(&cp) == -1) {
		log_warnx("audit: checkpoint at %lld not stored: %s",
		    (long long)cp.cp_seq, sqlite3_errmsg(sa.sa_db));
		return;
	}
	sa.sa_cp_seq = sa.sa_seq;
	sa.sa_cp_at = now;
}

/*
 * Where pruning may cut: the newest checkpoint this key signed within the
 * next AUDIT_PRUNE_STEP records, below every record younger than cutoff,
 * and only when the chain recomputed from the anchor reaches exactly the
 * hash that checkpoint signed. So the writer never signs a cut over rows
 * someone edited, backdated or rewrote: it signs only what it had signed
 * already. Returns the place (cp gets the prune record), or 0.
 */
static int64_t
store_prune_point(int64_t cutoff, struct checkpoint *cp)
{
	struct audit_fields	 f;
	struct checkpoint	 point;
	unsigned char		 prev[32], h[32];
	sqlite3_stmt		*st;
	int64_t			 base = 0, young = INT64_MAX, expect, upto = 0;
	int			 ok = 1;

	memset(prev, 0, sizeof(prev));
	if (sqlite3_prepare_v2(sa.sa_db, "SELECT seq, hash FROM chain WHERE "
	    "name = 'anchor'", -1, &st, NULL) != SQLITE_OK)
		return (0);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) ==
	    32) {
		base = sqlite3_column_int64(st, 0);
		memcpy(prev, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	/*
	 * The oldest record still young, looked for within the step only:
	 * over the whole log, min(seq) walked every record due for pruning
	 * (millions on a large, old log) at each step.
	 */
	if (sqlite3_prepare_v2(sa.sa_db, "SELECT min(seq) FROM records WHERE "
	    "seq > ?1 AND seq <= ?2 AND end_ms >= ?3", -1, &st, NULL) !=
	    SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, base + AUDIT_PRUNE_STEP);
	sqlite3_bind_int64(st, 3, cutoff);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) !=
	    SQLITE_NULL)
		young = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* The newest checkpoint in reach whose signature holds. */
	memset(&point, 0, sizeof(point));
	if (sqlite3_prepare_v2(sa.sa_db, "SELECT seq, hash, time_ms, signature "
	    "FROM checkpoints WHERE kind = 'checkpoint' AND seq > ?1 AND "
	    "seq <= ?2 AND seq < ?3 ORDER BY seq DESC", -1, &st, NULL) !=
	    SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, base + AUDIT_PRUNE_STEP);
	sqlite3_bind_int64(st, 3, young);
	while (upto == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 1) != 32)
			continue;
		point.cp_kind = "checkpoint";
		point.cp_seq = sqlite3_column_int64(st, 0);
		point.cp_time_ms = sqlite3_column_int64(st, 2);
		memcpy(point.cp_hash, sqlite3_column_blob(st, 1), 32);
		if (evidence_verify(sa.sa_key, &point,
		    sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st,
		    3)))
			upto = point.cp_seq;
	}
	sqlite3_finalize(st);
	if (upto == 0)
		return (0);
	/* The chain from the anchor must reach that signed hash. */
	if (sqlite3_prepare_v2(sa.sa_db, "SELECT " AUDIT_ROW_COLUMNS " FROM "
	    "records WHERE seq > ?1 AND seq <= ?2 ORDER BY seq", -1, &st,
	    NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, upto);
	for (expect = base + 1; ok && sqlite3_step(st) == SQLITE_ROW;
	    expect++) {
		audit_fields_row(st, &f);
		ok = f.af_seq == expect && audit_chain_hash(sa.sa_md, prev, &f,
		    h) == 0 && sqlite3_column_bytes(st, 20) == 32 &&
		    memcmp(h, sqlite3_column_blob(st, 20), 32) == 0;
		memcpy(prev, h, 32);
	}
	sqlite3_finalize(st);
	if (!ok || expect != upto + 1 || memcmp(prev, point.cp_hash, 32) != 0) {
		log_errorx("audit: the chain does not reach the checkpoint "
		    "signed at %lld: records were altered; not pruning",
		    (long long)upto);
		return (0);
	}
	memset(cp, 0, sizeof(*cp));
	cp->cp_kind = "prune";
	cp->cp_seq = upto;
	memcpy(cp->cp_hash, point.cp_hash, 32);
	cp->cp_time_ms = store_clock_ms(CLOCK_REALTIME);
	return (upto);
}

/*
 * Removes the oldest completed records, a step at a time: 1 when it
 * removed some (the caller comes back soon), else 0. The chain's
 * last removed link becomes its anchor, and the cut is signed (a prune
 * record), so an anchor set by anyone else shows in verify.
 */
int
store_prune(void)
{
	struct checkpoint	 cp;
	int64_t			 cutoff, upto = 0;
	char			*err = NULL;
	char			 sql[512];

	if (sa.sa_retention_days <= 0 || sa.sa_key == NULL)
		return (0);
	cutoff = (int64_t)time(NULL) * 1000 -
	    (int64_t)sa.sa_retention_days * 86400000;
	if ((upto = store_prune_point(cutoff, &cp)) <= 0)
		return (0);
	/* Only a prefix of the chain goes, and its last hash stays. */
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO chain (name, seq, "
	    "hash) SELECT 'anchor', seq, hash FROM records WHERE seq = %lld; "
	    "DELETE FROM records WHERE seq <= %lld AND seq IS NOT NULL;",
	    (long long)upto, (long long)upto);
	if (sqlite3_exec(sa.sa_db, "BEGIN IMMEDIATE", NULL, NULL, &err) !=
	    SQLITE_OK || (sa.sa_key != NULL && store_sign(&cp) == -1) ||
	    sqlite3_exec(sa.sa_db, sql, NULL, NULL, &err) != SQLITE_OK ||
	    sqlite3_exec(sa.sa_db, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("audit: pruning: %s", err != NULL ? err :
		    sqlite3_errmsg(sa.sa_db));
		sqlite3_free(err);
		sqlite3_exec(sa.sa_db, "ROLLBACK", NULL, NULL, NULL);
		return (0);
	}
	return (1);
}

/* Milliseconds on clock id: MONOTONIC for intervals, REALTIME for rows. */
int64_t
store_clock_ms(int id)
{
	struct timespec	 ts;

	clock_gettime((clockid_t)id, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
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
	int64_t		 now = store_clock_ms(CLOCK_REALTIME), total = 0;
	size_t		 n;
	int		 rc = 0;

	for (;;) {
		if (sqlite3_prepare_v2(sa.sa_db, "SELECT kind, session_id, "
		    "start_ms, user, client_addr, client_port, command, "
		    "dst_host, dst_addr, dst_port, dst_country, verdict, "
		    "rule_id, reason, bytes_up, bytes_down, protocol, ident, "
		    "packets_up, packets_down, udp_destinations, udp_denied "
		    "FROM records WHERE seq IS NULL ORDER BY id LIMIT 4096",
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
			r->ar_proto = strcmp((const char *)
			    sqlite3_column_text(st, 16), "socks4") == 0 ? 4 : 5;
			audit_text(st, 17, r->ar_ident, sizeof(r->ar_ident));
			r->ar_packets[0] = (uint64_t)sqlite3_column_int64(st,
			    18);
			r->ar_packets[1] = (uint64_t)sqlite3_column_int64(st,
			    19);
			r->ar_udp_dests = (uint32_t)sqlite3_column_int(st, 20);
			r->ar_udp_denied = (uint32_t)sqlite3_column_int(st, 21);
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
	static const char cols[] = "kind, session_id, start_ms, end_ms, user, "
	    "client_addr, client_port, command, dst_host, dst_addr, dst_port, "
	    "dst_country, verdict, rule_id, reason, bytes_up, bytes_down, "
	    "close_reason, protocol, ident, packets_up, packets_down, "
	    "udp_destinations, udp_denied";
	char		 sql[1024];
	sqlite3_stmt	*st;
	const void	*h;

	if (c->c_audit_db == NULL)
		return (0);
	if (sqlite3_open_v2(c->c_audit_db, &sa.sa_db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
	    NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_busy_timeout(sa.sa_db, 2000);
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
	if (sqlite3_exec(sa.sa_db, sql, NULL, NULL, NULL) != SQLITE_OK)
		goto sqlfail;
	if (db_schema_migrate(sa.sa_db, DB_SCHEMA_AUDIT, cause) == -1 ||
	    wal_open(sa.sa_db, c->c_audit_db, cause) == -1)
		goto fail;
	snprintf(sql, sizeof(sql), "INSERT INTO records (%s) VALUES (?1, ?2, "
	    "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
	    "?18, ?19, ?22, ?23, ?24, ?25, ?26)", cols);
	if (sqlite3_prepare_v2(sa.sa_db, sql, -1, &sa.sa_start, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	snprintf(sql, sizeof(sql), "INSERT INTO records (%s, seq, hash) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
	    "?16, ?17, ?18, ?19, ?22, ?23, ?24, ?25, ?26, ?20, ?21)", cols);
	if (sqlite3_prepare_v2(sa.sa_db, sql, -1, &sa.sa_insert, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	/*
	 * The close sets every column the hash covers, the start row's too:
	 * what is stored is what was hashed, whatever a START said before.
	 */
	if (sqlite3_prepare_v2(sa.sa_db, "UPDATE records SET start_ms = ?3, "
	    "user = ?5, client_addr = ?6, client_port = ?7, command = ?8, "
	    "end_ms = ?4, "
	    "dst_addr = ?10, dst_country = ?12, verdict = ?13, rule_id = ?14, "
	    "reason = ?15, bytes_up = ?16, bytes_down = ?17, close_reason = "
	    "?18, seq = ?20, hash = ?21, protocol = ?19, ident = ?22, "
	    "packets_up = ?23, packets_down = ?24, udp_destinations = ?25, "
	    "udp_denied = ?26, dst_host = ?9, dst_port = ?11 WHERE "
	    "session_id = ?2 AND seq IS NULL",
	    -1, &sa.sa_finish, NULL) != SQLITE_OK)
		goto sqlfail;
	/*
	 * The chain continues from its last link (or the anchor). The partial
	 * index on seq answers max() only when the query says seq IS NOT NULL.
	 */
	if (sqlite3_prepare_v2(sa.sa_db, "SELECT seq, hash FROM records WHERE "
	    "seq = (SELECT max(seq) FROM records WHERE seq IS NOT NULL) "
	    "UNION ALL SELECT seq, hash "
	    "FROM chain WHERE name = 'anchor' ORDER BY 1 DESC LIMIT 1", -1,
	    &st, NULL) != SQLITE_OK)
		goto sqlfail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		sa.sa_seq = sqlite3_column_int64(st, 0);
		if ((h = sqlite3_column_blob(st, 1)) != NULL &&
		    sqlite3_column_bytes(st, 1) == 32)
			memcpy(sa.sa_hash, h, 32);
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
		if (sqlite3_prepare_v2(sa.sa_db, "SELECT count(*) FROM "
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
		if ((sa.sa_key = evidence_key(keypath, pubpath, cause)) ==
		    NULL)
			goto fail;
	}
	/*
	 * Nothing in the database says where the last checkpoint was (a
	 * planted row could stop all signing): the head is signed again as
	 * soon as the writer runs.
	 */
	sa.sa_cp_seq = 0;
	if (sqlite3_prepare_v2(sa.sa_db, "INSERT OR REPLACE INTO intake (id, "
	    "proxy_gen, records, usage, produced, sid_floor) VALUES (1, ?1, "
	    "?2, ?3, ?4, ?5)", -1, &sa.sa_intake, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sa.sa_db, "SELECT proxy_gen, records, usage, "
	    "produced, sid_floor FROM intake WHERE id = 1", -1, &st, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		sa.sa_in.si_gen = (uint64_t)sqlite3_column_int64(st, 0);
		sa.sa_in.si_records = (uint64_t)sqlite3_column_int64(st, 1);
		sa.sa_in.si_usage = (uint64_t)sqlite3_column_int64(st, 2);
		sa.sa_in.si_produced = (uint64_t)sqlite3_column_int64(st, 3);
		sa.sa_in.si_sid_floor = (uint64_t)sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	if ((sa.sa_md = EVP_MD_CTX_new()) == NULL)
		goto sqlfail;
	sa.sa_retention_days = c->c_audit_retention_days;
	sa.sa_cp_at = store_clock_ms(CLOCK_MONOTONIC);
	audit_syslog_open(c);
	return (0);
sqlfail:
	if (asprintf(cause, "audit_db %s: %s", c->c_audit_db,
	    policy_db_errmsg(c->c_audit_db, sa.sa_db)) < 0)
		*cause = NULL;
fail:
	sqlite3_close(sa.sa_db);
	sa.sa_db = NULL;
	return (-1);
}

void
store_close(void)
{
	wal_stop();
	sqlite3_finalize(sa.sa_start);
	sqlite3_finalize(sa.sa_insert);
	sqlite3_finalize(sa.sa_finish);
	sqlite3_finalize(sa.sa_intake);
	sqlite3_close(sa.sa_db);
	sa.sa_db = NULL;
	EVP_MD_CTX_free(sa.sa_md);
	sa.sa_md = NULL;
	EVP_PKEY_free(sa.sa_key);
	sa.sa_key = NULL;
	audit_syslog_close();
}

uint64_t
store_refused(void)
{
	return (sa.sa_refused);
}

void
store_count_refused(uint64_t n)
{
	sa.sa_refused += n;
}

/* Where the proxy's numbering stands, as committed. */
int
store_intake(struct store_intake *in)
{
	*in = sa.sa_in;
	return (0);
}

/* In the caller's transaction. */
static int
store_intake_set(uint64_t records, uint64_t usage, uint64_t produced)
{
	sqlite3_reset(sa.sa_intake);
	sqlite3_bind_int64(sa.sa_intake, 1, (int64_t)sa.sa_in.si_gen);
	sqlite3_bind_int64(sa.sa_intake, 2, (int64_t)records);
	sqlite3_bind_int64(sa.sa_intake, 3, (int64_t)usage);
	sqlite3_bind_int64(sa.sa_intake, 4, (int64_t)produced);
	sqlite3_bind_int64(sa.sa_intake, 5, (int64_t)sa.sa_in.si_sid_floor);
	return (sqlite3_step(sa.sa_intake) == SQLITE_DONE ? 0 : -1);
}

/*
 * The highest session id on record below 2^53 (see gatewayd.c): ids of
 * the older numbering (milliseconds << 20) are all above 2^53 and the
 * new ones below it until 2106, so an upgraded log numbers afresh below
 * 2^53 without meeting them.
 */
static uint64_t
store_max_sid(void)
{
	sqlite3_stmt	*st;
	int64_t		 max = 0;

	if (sqlite3_prepare_v2(sa.sa_db, "SELECT max(session_id) FROM records "
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

	if (why != NULL && sa.sa_in.si_gen != 0 && sa.sa_in.si_produced >
	    sa.sa_in.si_records)
		lost = sa.sa_in.si_produced - sa.sa_in.si_records;
	if (why != NULL) {
		if ((batch = calloc(AUDIT_BATCH, sizeof(*batch))) == NULL)
			fatalx("auditd: out of memory");
		ok = store_close_orphans(batch, why) == 0;
		free(batch);
	}
	if (!ok)
		return (-1);
	sa.sa_in.si_gen = gen;
	sa.sa_in.si_records = sa.sa_in.si_usage = sa.sa_in.si_produced = 0;
	sa.sa_in.si_sid_floor = store_max_sid();
	if (sqlite3_exec(sa.sa_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK || store_intake_set(0, 0, 0) == -1 ||
	    sqlite3_exec(sa.sa_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_warnx("audit: recording the new proxy run: %s",
		    sqlite3_errmsg(sa.sa_db));
		sqlite3_exec(sa.sa_db, "ROLLBACK", NULL, NULL, NULL);
		return (-1);
	}
	if (lost > 0) {
		log_warnx("audit: the last proxy run ended with at least %llu "
		    "records it had not handed over: lost",
		    (unsigned long long)lost);
		sa.sa_refused += lost;
	}
	return (0);
}

/*
 * Adds users' quota bytes to their usage rows, with the proxy's number
 * of this batch, in one transaction: 0, or -1 (kept by the caller).
 */
int
store_usage(const struct am_usage *u, size_t n, uint64_t useq, int64_t now_ms)
{
	static int	 failing;
	sqlite3_stmt	*st = NULL;
	size_t		 i;
	int		 ok = 1;

	if (sqlite3_exec(sa.sa_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(sa.sa_db, "INSERT INTO usage (user, "
	    "period, period_start, bytes, updated_ms) VALUES (?1, ?2, ?3, "
	    "max(?4, 0), ?5) ON CONFLICT (user, period, period_start) DO "
	    "UPDATE SET bytes = max(bytes + ?4, 0), updated_ms = ?5", -1, &st,
	    NULL) != SQLITE_OK)
		ok = 0;
	for (i = 0; ok && i < n; i++) {
		sqlite3_bind_text(st, 1, u[i].au_user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, policy_period_name(u[i].au_period),
		    -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, u[i].au_start);
		sqlite3_bind_int64(st, 4, u[i].au_bytes);
		sqlite3_bind_int64(st, 5, now_ms);
		ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (!ok || store_intake_set(sa.sa_in.si_records, useq,
	    sa.sa_in.si_produced) == -1 ||
	    sqlite3_exec(sa.sa_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		/* Said once until it works again: this comes every second. */
		if (!failing)
			log_warnx("audit: writing quota usage: %s; kept until "
			    "it can be written", sqlite3_errmsg(sa.sa_db));
		failing = 1;
		sqlite3_exec(sa.sa_db, "ROLLBACK", NULL, NULL, NULL);
		return (-1);
	}
	if (failing)
		log_warnx("audit: quota usage is written again");
	failing = 0;
	sa.sa_in.si_usage = useq;
	return (0);
}

/*
 * The usage rows of the periods current at now (on the calendar of
 * `timezone`, which auditd has too), for a new proxy's counters.
 */
int
store_usage_rows(int64_t now, int (*fn)(const struct am_usage *, void *),
    void *arg)
{
	struct am_usage	 u;
	sqlite3_stmt	*st;
	const char	*user;
	time_t		 start, end;
	int		 per, rc = SQLITE_DONE;

	if (sqlite3_prepare_v2(sa.sa_db, "SELECT user, bytes FROM usage WHERE "
	    "period = ?1 AND period_start = ?2", -1, &st, NULL) != SQLITE_OK)
		return (-1);
	for (per = POLICY_PERIOD_HOUR; per <= POLICY_PERIOD_MONTH; per++) {
		if (policy_period_bounds((enum policy_period)per, (time_t)now,
		    &start, &end) == -1)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, policy_period_name((enum policy_period)
		    per), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)start);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			memset(&u, 0, sizeof(u));
			user = (const char *)sqlite3_column_text(st, 0);
			if (user == NULL || strlen(user) >= sizeof(u.au_user))
				continue;
			memcpy(u.au_user, user, strlen(user));
			u.au_period = (uint8_t)per;
			u.au_start = (int64_t)start;
			u.au_bytes = sqlite3_column_int64(st, 1);
			if (fn(&u, arg) == -1) {
				sqlite3_finalize(st);
				return (-1);
			}
		}
		if (rc != SQLITE_DONE)
			break;
	}
	sqlite3_finalize(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}
