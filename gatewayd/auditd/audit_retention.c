/*
 * audit_retention.c: the audit chain's signed checkpoints, and pruning
 * (audit_retention_days). Every 10,000 records or 60 s, at each start and
 * at the end, the writer signs the chain's head (Ed25519, evidence.c).
 * Pruning removes a prefix of the chain a step at a time, and only up to
 * a checkpoint this key signed, after recomputing the chain from an
 * anchor this key signed too, so it never signs away rows someone edited,
 * backdated or planted; it signs each cut. Runs on the writer's thread
 * (auditd.c gives it at most a fifth of the writer's time).
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
#include "evidence.h"
#include "log.h"

#include "audit_store_int.h"

#include "base/clock.h"

/*
 * A prune step reaches the next signed checkpoint: they are at most
 * 10,000 records and a batch apart. (At 500 a step, as before, a busy
 * log had no checkpoint in reach and was never pruned.)
 */
#define AUDIT_PRUNE_STEP	20000
#define AUDIT_CHECKPOINT_RECORDS 10000	/* a signed checkpoint at least */
#define AUDIT_CHECKPOINT_MS	60000	/* ... this often */

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

	if (evidence_sign(store.key, cp, sig) == -1) {
		log_warnx("audit: cannot sign the %s at %lld", cp->cp_kind,
		    (long long)cp->cp_seq);
		return (-1);
	}
	if (sqlite3_prepare_v2(store.db, "INSERT INTO checkpoints (kind, seq, "
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

	if (store.key == NULL || store.seq <= store.cp_seq || (!force &&
	    store.seq - store.cp_seq < AUDIT_CHECKPOINT_RECORDS &&
	    now - store.cp_at < AUDIT_CHECKPOINT_MS))
		return;
	memset(&cp, 0, sizeof(cp));
	cp.cp_kind = "checkpoint";
	cp.cp_seq = store.seq;
	memcpy(cp.cp_hash, store.hash, 32);
	cp.cp_time_ms = gw_clock_of(CLOCK_REALTIME);
	if (store_sign(&cp) == -1) {
		log_warnx("audit: checkpoint at %lld not stored: %s",
		    (long long)cp.cp_seq, sqlite3_errmsg(store.db));
		return;
	}
	store.cp_seq = store.seq;
	store.cp_at = now;
}

/*
 * Whether the chain's anchor (seq, hash) is where this key signed a cut:
 * an anchor moved by anyone else would let the next cut skip the records
 * between the two without recomputing their chain. Only store_prune()
 * sets the anchor, and it signs every cut.
 */
static int
store_anchor_signed(int64_t seq, const unsigned char *hash)
{
	struct checkpoint	 cp;
	sqlite3_stmt		*st;
	int			 ok = 0;

	if (sqlite3_prepare_v2(store.db, "SELECT seq, hash, time_ms, "
	    "signature FROM checkpoints WHERE kind = 'prune'", -1, &st,
	    NULL) != SQLITE_OK)
		return (0);
	while (!ok && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 0) != seq ||
		    sqlite3_column_bytes(st, 1) != 32 ||
		    memcmp(sqlite3_column_blob(st, 1), hash, 32) != 0)
			continue;
		memset(&cp, 0, sizeof(cp));
		cp.cp_kind = "prune";
		cp.cp_seq = seq;
		cp.cp_time_ms = sqlite3_column_int64(st, 2);
		memcpy(cp.cp_hash, hash, 32);
		ok = evidence_verify(store.key, &cp, sqlite3_column_blob(st, 3),
		    (size_t)sqlite3_column_bytes(st, 3));
	}
	sqlite3_finalize(st);
	return (ok);
}

/*
 * Says once when records are due for pruning but the rollups have not
 * counted them yet (rollups failing, or far behind): the log keeps them.
 */
static int	 rollups_held;

static void
store_rollups_hold(int64_t base, int64_t young)
{
	sqlite3_stmt	*st;
	int64_t		 due = 0;

	if (sqlite3_prepare_v2(store.db, "SELECT max(seq) FROM checkpoints "
	    "WHERE kind = 'checkpoint' AND seq > ?1 AND seq <= ?2 AND seq < ?3 "
	    "AND seq > coalesce((SELECT chain.seq FROM chain WHERE name = "
	    "'rollup'), 0)", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, base + AUDIT_PRUNE_STEP);
	sqlite3_bind_int64(st, 3, young);
	if (sqlite3_step(st) == SQLITE_ROW)
		due = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (due > 0 && !rollups_held)
		log_warnx("audit: pruning waits for the rollups: records up to "
		    "%lld are due but not counted in the hourly tables yet",
		    (long long)due);
	rollups_held = due > 0;
}

/*
 * With audit_central, nothing the central store lacks is pruned: the
 * shipper says how far it has shipped (auditd.c), and until it has said,
 * nothing goes.
 */
static int64_t	 ship_limit = INT64_MAX;

void
store_ship_limit(int64_t seq)
{
	ship_limit = seq;
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
	if (sqlite3_prepare_v2(store.db, "SELECT seq, hash FROM chain WHERE "
	    "name = 'anchor'", -1, &st, NULL) != SQLITE_OK)
		return (0);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) ==
	    32) {
		base = sqlite3_column_int64(st, 0);
		memcpy(prev, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (base < 0 || base > INT64_MAX - AUDIT_PRUNE_STEP)
		return (0);
	if (base > 0 && !store_anchor_signed(base, prev)) {
		log_errorx("audit: the chain's anchor at %lld is not where "
		    "this key signed a cut: records were altered; not "
		    "pruning", (long long)base);
		return (0);
	}
	/*
	 * The oldest record still young up to the step's end, from the first
	 * record on: on a log as the writer left it that is the anchor's
	 * next, and a row someone put below the anchor counts too. (Over the
	 * whole log, min(seq) walked every record due for pruning, millions
	 * on a large, old log, at each step.)
	 */
	if (sqlite3_prepare_v2(store.db, "SELECT min(seq) FROM records "
	    "WHERE seq IS NOT NULL AND seq <= ?1 AND end_ms >= ?2", -1, &st,
	    NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, base + AUDIT_PRUNE_STEP);
	sqlite3_bind_int64(st, 2, cutoff);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) !=
	    SQLITE_NULL)
		young = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/*
	 * The newest checkpoint in reach whose signature holds, among those
	 * the rollups have passed: records they have not counted yet stay,
	 * or the reports would never count them.
	 */
	memset(&point, 0, sizeof(point));
	if (sqlite3_prepare_v2(store.db, "SELECT seq, hash, time_ms, "
	    "signature FROM checkpoints WHERE kind = 'checkpoint' AND "
	    "seq > ?1 AND seq <= ?2 AND seq < ?3 AND seq <= coalesce((SELECT "
	    "chain.seq FROM chain WHERE name = 'rollup'), 0) AND seq <= ?4 "
	    "ORDER BY seq DESC", -1, &st, NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 4, ship_limit);
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
		if (evidence_verify(store.key, &point,
		    sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st,
		    3)))
			upto = point.cp_seq;
	}
	sqlite3_finalize(st);
	if (upto == 0) {
		store_rollups_hold(base, young);
		return (0);
	}
	rollups_held = 0;
	/* The chain from the anchor must reach that signed hash. */
	if (sqlite3_prepare_v2(store.db, "SELECT " AUDIT_ROW_COLUMNS " FROM "
	    "records WHERE seq > ?1 AND seq <= ?2 ORDER BY seq", -1, &st,
	    NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, upto);
	for (expect = base + 1; ok && sqlite3_step(st) == SQLITE_ROW;
	    expect++) {
		audit_fields_row(st, &f);
		ok = f.af_seq == expect && audit_chain_hash(store.md, prev, &f,
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
	cp->cp_time_ms = gw_clock_of(CLOCK_REALTIME);
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

	if (store.retention_days <= 0 || store.key == NULL)
		return (0);
	cutoff = (int64_t)time(NULL) * 1000 -
	    (int64_t)store.retention_days * 86400000;
	if ((upto = store_prune_point(cutoff, &cp)) <= 0)
		return (0);
	/* Only a prefix of the chain goes, and its last hash stays. */
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO chain (name, seq, "
	    "hash) SELECT 'anchor', seq, hash FROM records WHERE seq = %lld; "
	    "DELETE FROM records WHERE seq <= %lld AND seq IS NOT NULL;",
	    (long long)upto, (long long)upto);
	if (sqlite3_exec(store.db, "BEGIN IMMEDIATE", NULL, NULL, &err) !=
	    SQLITE_OK || (store.key != NULL && store_sign(&cp) == -1) ||
	    sqlite3_exec(store.db, sql, NULL, NULL, &err) != SQLITE_OK ||
	    sqlite3_exec(store.db, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("audit: pruning: %s", err != NULL ? err :
		    sqlite3_errmsg(store.db));
		sqlite3_free(err);
		sqlite3_exec(store.db, "ROLLBACK", NULL, NULL, NULL);
		return (0);
	}
	return (1);
}
