/*
 * audit_chain.c: what the audit log's evidence is made of, shared by
 * auditd (which writes it) and socksctl (which checks and reports it):
 * the hash chain over completed rows, a row's fields as the chain covers
 * them, and the hourly rollups the reports read.
 *
 * Each completed row takes the next place (seq) in the chain: its hash is
 * SHA-256 over the previous hash and its own fields, each length-prefixed
 * (NULL distinct from ""), so an edited, inserted or deleted row shows in
 * `socksctl audit verify`. A field added in a later schema is hashed only
 * when present, after all the others (auth_method, then node).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "audit_chain.h"

/* The chain ------------------------------------------------------------- */

static void
chain_put(EVP_MD_CTX *ctx, const char *s)
{
	unsigned char	 len[4];
	size_t		 n = s ? strlen(s) : 0;

	/* Length-prefixed, NULL distinct from "": no two rows collide. */
	if (s == NULL)
		memset(len, 0xff, 4);
	else {
		len[0] = (unsigned char)(n >> 24);
		len[1] = (unsigned char)(n >> 16);
		len[2] = (unsigned char)(n >> 8);
		len[3] = (unsigned char)n;
	}
	EVP_DigestUpdate(ctx, len, 4);
	if (n > 0)
		EVP_DigestUpdate(ctx, s, n);
}

static void
chain_put_int(EVP_MD_CTX *ctx, int64_t v, int is_null)
{
	char		 buf[24], *p = buf + sizeof(buf) - 1;
	uint64_t	 u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	if (is_null) {
		chain_put(ctx, NULL);
		return;
	}
	/* Decimal, as printf would write it; this runs for every field. */
	*p = '\0';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	chain_put(ctx, p);
}

/* SHA-256 over prev and the fields of a completed record. */
int
audit_chain_hash(void *reuse, const unsigned char prev[32],
    const struct audit_fields *f, unsigned char out[32])
{
	EVP_MD_CTX	*ctx = reuse;
	unsigned int	 len = 32;
	int		 ok;

	/* The writer keeps one context; a one-off call makes its own. */
	if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
		return (-1);
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	EVP_DigestUpdate(ctx, prev, 32);
	chain_put_int(ctx, f->af_seq, 0);
	chain_put(ctx, f->af_kind);
	chain_put_int(ctx, f->af_session_id, 0);
	chain_put_int(ctx, f->af_start_ms, 0);
	chain_put_int(ctx, f->af_end_ms, 0);
	chain_put(ctx, f->af_user);
	chain_put(ctx, f->af_client_addr);
	chain_put_int(ctx, f->af_client_port, 0);
	chain_put(ctx, f->af_command);
	chain_put(ctx, f->af_dst_host);
	chain_put(ctx, f->af_dst_addr);
	chain_put_int(ctx, f->af_dst_port, f->af_dst_port < 0);
	chain_put(ctx, f->af_dst_country);
	chain_put(ctx, f->af_verdict);
	chain_put_int(ctx, f->af_rule_id, 0);
	chain_put(ctx, f->af_reason);
	chain_put_int(ctx, f->af_bytes_up, 0);
	chain_put_int(ctx, f->af_bytes_down, 0);
	chain_put(ctx, f->af_close_reason);
	chain_put(ctx, f->af_protocol);
	chain_put(ctx, f->af_ident);
	chain_put_int(ctx, f->af_packets_up, 0);
	chain_put_int(ctx, f->af_packets_down, 0);
	chain_put_int(ctx, f->af_udp_dests, 0);
	chain_put_int(ctx, f->af_udp_denied, 0);
	/*
	 * Added later (audit schema 8): hashed only when present and last,
	 * so an older record hashes as it did, and a field added to it or
	 * taken from a newer one breaks the chain all the same.
	 */
	if (f->af_node != NULL) {
		/*
		 * Schema 9 on: auth_method is always hashed, NULL or not,
		 * before the node, so that neither value can pass for the
		 * other's.
		 */
		chain_put(ctx, f->af_auth_method);
		chain_put(ctx, f->af_node);
	} else if (f->af_auth_method != NULL)
		chain_put(ctx, f->af_auth_method);
	ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1;
	if (reuse == NULL)
		EVP_MD_CTX_free(ctx);
	return (ok ? 0 : -1);
}

/*
 * A completed row as AUDIT_ROW_COLUMNS selects it, as its hash covers it
 * (socksctl audit verify and the writer's own check before pruning).
 */
void
audit_fields_row(sqlite3_stmt *st, struct audit_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->af_seq = sqlite3_column_int64(st, 19);
	f->af_kind = (const char *)sqlite3_column_text(st, 1);
	f->af_session_id = sqlite3_column_int64(st, 2);
	f->af_start_ms = sqlite3_column_int64(st, 3);
	f->af_end_ms = sqlite3_column_int64(st, 4);
	f->af_user = (const char *)sqlite3_column_text(st, 5);
	f->af_client_addr = (const char *)sqlite3_column_text(st, 6);
	f->af_client_port = sqlite3_column_int64(st, 7);
	f->af_command = (const char *)sqlite3_column_text(st, 8);
	f->af_dst_host = (const char *)sqlite3_column_text(st, 9);
	f->af_dst_addr = (const char *)sqlite3_column_text(st, 10);
	f->af_dst_port = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(st, 11);
	f->af_dst_country = (const char *)sqlite3_column_text(st, 12);
	f->af_verdict = (const char *)sqlite3_column_text(st, 13);
	f->af_rule_id = sqlite3_column_int64(st, 14);
	f->af_reason = (const char *)sqlite3_column_text(st, 15);
	f->af_bytes_up = sqlite3_column_int64(st, 16);
	f->af_bytes_down = sqlite3_column_int64(st, 17);
	f->af_close_reason = (const char *)sqlite3_column_text(st, 18);
	f->af_protocol = (const char *)sqlite3_column_text(st, 21);
	f->af_ident = (const char *)sqlite3_column_text(st, 22);
	f->af_packets_up = sqlite3_column_int64(st, 23);
	f->af_packets_down = sqlite3_column_int64(st, 24);
	f->af_udp_dests = sqlite3_column_int64(st, 25);
	f->af_udp_denied = sqlite3_column_int64(st, 26);
	f->af_auth_method = (const char *)sqlite3_column_text(st, 27);
	f->af_node = (const char *)sqlite3_column_text(st, 28);
}

/* Rollups ---------------------------------------------------------------- */

/*
 * Rolls up to max completed records (by seq) past the 'rollup' mark into
 * the hourly tables, in one transaction. Returns how many were rolled up
 * (0: up to date), or -1 with *cause set.
 */
int64_t
audit_rollup(sqlite3 *db, int64_t max, char **cause)
{
	static const char *const steps[] = {
		"INSERT INTO hourly_users SELECT start_ms / 3600000, "
		"coalesce(user, ''), count(*), sum(verdict = 'allow'), "
		"sum(verdict = 'deny'), sum(bytes_up), sum(bytes_down) FROM "
		"records WHERE seq > ?1 AND seq <= ?2 GROUP BY 1, 2 "
		"ON CONFLICT (hour, user) DO UPDATE SET "
		"sessions = sessions + excluded.sessions, "
		"allowed = allowed + excluded.allowed, "
		"denied = denied + excluded.denied, "
		"bytes_up = bytes_up + excluded.bytes_up, "
		"bytes_down = bytes_down + excluded.bytes_down",
		"INSERT INTO hourly_destinations SELECT start_ms / 3600000, "
		"coalesce(dst_host, dst_addr, '-'), verdict, "
		"count(*), sum(bytes_up + bytes_down) FROM records WHERE "
		"kind = 'session' AND seq > ?1 AND seq <= ?2 GROUP BY 1, 2, 3 "
		"ON CONFLICT (hour, destination, verdict) DO UPDATE SET "
		"sessions = sessions + excluded.sessions, "
		"bytes = bytes + excluded.bytes",
		"INSERT INTO hourly_denials SELECT start_ms / 3600000, rule_id, "
		"coalesce(user, ''), count(*), max(reason) FROM records WHERE "
		"verdict = 'deny' AND seq > ?1 AND seq <= ?2 GROUP BY 1, 2, 3 "
		"ON CONFLICT (hour, rule_id, user) DO UPDATE SET "
		"denials = denials + excluded.denials",
	};
	sqlite3_stmt	*st;
	int64_t		 from = 0, top = 0, to;
	size_t		 i;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/*
	 * "seq IS NOT NULL" lets max() read the end of the partial index on
	 * seq; without it SQLite scanned every record, at each step (3.3 s
	 * on a 10,000,000-record log, and the rollups fell behind).
	 */
	if (sqlite3_prepare_v2(db, "SELECT (SELECT seq FROM chain WHERE name = "
	    "'rollup'), (SELECT max(seq) FROM records WHERE seq IS NOT NULL)",
	    -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		from = sqlite3_column_int64(st, 0);
		top = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	to = top - from > max ? from + max : top;
	if (to <= from) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		return (0);
	}
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (sqlite3_prepare_v2(db, steps[i], -1, &st, NULL) !=
		    SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, from);
		sqlite3_bind_int64(st, 2, to);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			goto fail;
		}
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO chain (name, seq, "
	    "hash) VALUES ('rollup', ?1, x'')", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, to);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return (to - from);
fail:
	if (asprintf(cause, "audit rollup: %s", sqlite3_errmsg(db)) < 0)
		*cause = NULL;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return (-1);
}
