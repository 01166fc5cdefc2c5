/*
 * audit_ship_log.c: what the audit shipper (audit_ship.c) reads of the
 * local log: a batch of completed records after a chain place, as the
 * central INSERT takes them; whether the log continues the central chain;
 * where it starts; how far behind the central store is.
 *
 * The log is the shipper's read-only connection (WAL: reading never holds
 * the writer up). Integers are shipped as integers whatever a row holds,
 * texts as the bytes they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_chain.h"

#include "base/clock.h"

#include "audit_ship_int.h"

/* Which of AUDIT_ROW_COLUMNS are integers; the rest are bytes. */
static int
ship_int_column(int i)
{
	static const unsigned char ints[SHIP_COLUMNS] = {
		[0] = 1, [2] = 1, [3] = 1, [4] = 1, [7] = 1, [11] = 1,
		[14] = 1, [16] = 1, [17] = 1, [19] = 1, [23] = 1, [24] = 1,
		[25] = 1, [26] = 1,
	};

	return (ints[i]);
}

/* A local statement's first row's blob of 32 bytes into out: 1, or 0. */
static int
ship_local_hash(sqlite3 *db, const char *sql, int64_t seq,
    unsigned char out[32])
{
	sqlite3_stmt	*st;
	int		 found = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) ==
	    32) {
		memcpy(out, sqlite3_column_blob(st, 0), 32);
		found = 1;
	}
	sqlite3_finalize(st);
	return (found);
}

/*
 * Does the local log continue the central chain at seq (hash there)? 1,
 * or 0 with why. seq 0 is the start of every chain.
 */
int
ship_continues(sqlite3 *db, const char *node, int64_t seq,
    const unsigned char *hash, char *why, size_t len)
{
	unsigned char	 h[32];

	if (seq == 0)
		return (1);
	if (ship_local_hash(db, "SELECT hash FROM records WHERE seq = ?1",
	    seq, h) || ship_local_hash(db, "SELECT hash FROM chain WHERE "
	    "name = 'anchor' AND seq = ?1", seq, h)) {
		if (hash != NULL && memcmp(h, hash, 32) == 0)
			return (1);
		snprintf(why, len, "the central store's chain for node '%s' "
		    "does not continue this log at place %lld (another node "
		    "writes under this node_name, or this log was replaced)",
		    node, (long long)seq);
		return (0);
	}
	snprintf(why, len, "the central store has node '%s' up to chain "
	    "place %lld, which this log does not hold (%s)", node,
	    (long long)seq, "pruned before it was shipped, or another log");
	return (0);
}

static const char *
ship_keep(struct ship_rows *b, const void *p, size_t n)
{
	char	*copy;

	if ((copy = malloc(n + 1)) == NULL)
		return (NULL);
	memcpy(copy, p, n);
	copy[n] = '\0';
	b->own[b->nown++] = copy;
	return (copy);
}

void
ship_rows_free(struct ship_rows *b)
{
	while (b->nown > 0)
		free(b->own[--b->nown]);
}

/*
 * Reads up to SHIP_BATCH completed records after seq into b; the last one's
 * seq and hash into *last and lasthash. -1 when out of memory.
 */
int
ship_read(sqlite3 *db, struct ship_rows *b, int64_t seq, int64_t *last,
    unsigned char lasthash[32])
{
	sqlite3_stmt	*st;
	char		 num[24];
	int		 i, k, rc = 0;

	b->n = 0;
	if (sqlite3_prepare_v2(db, "SELECT " AUDIT_ROW_COLUMNS " FROM "
	    "records WHERE seq > ?1 AND seq IS NOT NULL ORDER BY seq LIMIT ?2",
	    -1, &st, NULL) != SQLITE_OK)
		return (-1);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int(st, 2, SHIP_BATCH);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		for (i = 0; i < SHIP_COLUMNS; i++) {
			k = 2 + b->n * SHIP_COLUMNS + i;
			b->fmt[k] = 0;
			b->len[k] = 0;
			b->val[k] = NULL;
			if (sqlite3_column_type(st, i) == SQLITE_NULL)
				continue;
			if (ship_int_column(i)) {
				/* As an integer, whatever the row holds. */
				snprintf(num, sizeof(num), "%lld", (long long)
				    sqlite3_column_int64(st, i));
				b->val[k] = ship_keep(b, num, strlen(num));
			} else {
				const void	*p = sqlite3_column_blob(st, i);
				int		 n = sqlite3_column_bytes(st, i);

				b->val[k] = ship_keep(b, p != NULL ? p : "",
				    (size_t)n);
				b->len[k] = n;
				b->fmt[k] = 1;		/* bytea, as is */
			}
			if (b->val[k] == NULL)
				rc = -1;
		}
		*last = sqlite3_column_int64(st, 19);
		memset(lasthash, 0, 32);
		if (sqlite3_column_bytes(st, 20) == 32)
			memcpy(lasthash, sqlite3_column_blob(st, 20), 32);
		b->n++;
	}
	sqlite3_finalize(st);
	return (rc);
}

/*
 * Where the local chain starts, for a node new to the central store: its
 * anchor (the last pruned record), or place 0.
 */
int64_t
ship_anchor(sqlite3 *db, unsigned char hash[32])
{
	sqlite3_stmt	*st;
	int64_t		 seq = 0;

	if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM chain WHERE "
	    "name = 'anchor'", -1, &st, NULL) != SQLITE_OK)
		return (0);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) ==
	    32) {
		seq = sqlite3_column_int64(st, 0);
		memcpy(hash, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	return (seq);
}

/* The local head and the age of the oldest record not shipped yet. */
void
ship_lag(sqlite3 *db, struct ship_status *ss)
{
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v2(db, "SELECT (SELECT max(seq) FROM records "
	    "WHERE seq IS NOT NULL), (SELECT end_ms FROM records WHERE seq = "
	    "?1)", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, (int64_t)ss->ss_shipped_seq + 1);
	if (sqlite3_step(st) == SQLITE_ROW) {
		ss->ss_head_seq = (uint64_t)sqlite3_column_int64(st, 0);
		ss->ss_lag_ms = sqlite3_column_type(st, 1) == SQLITE_NULL ?
		    0 : gw_clock_of(CLOCK_REALTIME) - sqlite3_column_int64(st,
		    1);
		if (ss->ss_lag_ms < 0)
			ss->ss_lag_ms = 0;
	}
	sqlite3_finalize(st);
}
