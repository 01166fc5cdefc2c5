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

/* Appends n bytes to the batch's COPY text: 0, or -1 (out of memory). */
static int
ship_put(struct ship_rows *b, const char *p, size_t n)
{
	char	*grown;
	size_t	 cap;

	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 65536;
		while (cap < b->len + n)
			cap *= 2;
		if ((grown = realloc(b->buf, cap)) == NULL)
			return (-1);
		b->buf = grown;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return (0);
}

/* Bytes as COPY's text form of bytea: \\x and hex, nothing to escape. */
static int
ship_put_bytea(struct ship_rows *b, const unsigned char *p, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 chunk[256];
	size_t			 i, k = 0;

	if (ship_put(b, "\\\\x", 3) == -1)
		return (-1);
	for (i = 0; i < n; i++) {
		chunk[k++] = hex[p[i] >> 4];
		chunk[k++] = hex[p[i] & 15];
		if (k == sizeof(chunk) && (ship_put(b, chunk, k) == -1 ||
		    (k = 0) != 0))
			return (-1);
	}
	return (ship_put(b, chunk, k));
}

void
ship_rows_free(struct ship_rows *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

/*
 * Reads up to SHIP_BATCH completed records after seq into b, as the text
 * of a COPY into audit_records (node, the AUDIT_ROW_COLUMNS, shipped_ms):
 * integers as integers whatever a row holds, every text as bytea hex. The
 * node name needs no escaping (node_name admits letters, digits, '.', '-'
 * and '_'). The last record's seq and hash into *last and lasthash. -1
 * when out of memory.
 */
int
ship_read(sqlite3 *db, struct ship_rows *b, const char *node,
    const char *now, int64_t seq, int64_t *last, unsigned char lasthash[32])
{
	sqlite3_stmt	*st;
	char		 num[24];
	int		 i, n, rc = 0;

	b->n = 0;
	b->len = 0;
	if (sqlite3_prepare_v2(db, "SELECT " AUDIT_ROW_COLUMNS " FROM "
	    "records WHERE seq > ?1 AND seq IS NOT NULL ORDER BY seq LIMIT ?2",
	    -1, &st, NULL) != SQLITE_OK)
		return (-1);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int(st, 2, SHIP_BATCH);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		rc |= ship_put(b, node, strlen(node));
		for (i = 0; i < SHIP_COLUMNS; i++) {
			rc |= ship_put(b, "\t", 1);
			if (sqlite3_column_type(st, i) == SQLITE_NULL)
				rc |= ship_put(b, "\\N", 2);
			else if (ship_int_column(i)) {
				n = snprintf(num, sizeof(num), "%lld",
				    (long long)sqlite3_column_int64(st, i));
				rc |= ship_put(b, num, (size_t)n);
			} else
				rc |= ship_put_bytea(b, sqlite3_column_blob(st,
				    i), (size_t)sqlite3_column_bytes(st, i));
		}
		rc |= ship_put(b, "\t", 1);
		rc |= ship_put(b, now, strlen(now));
		rc |= ship_put(b, "\n", 1);
		*last = sqlite3_column_int64(st, 19);
		memset(lasthash, 0, 32);
		if (sqlite3_column_bytes(st, 20) == 32)
			memcpy(lasthash, sqlite3_column_blob(st, 20), 32);
		b->n++;
	}
	sqlite3_finalize(st);
	return (rc != 0 ? -1 : 0);
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
