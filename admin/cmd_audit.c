/*
 * cmd_audit.c: socksctl audit list|show|verify. The audit database is
 * opened read-only (WAL mode: reading never blocks gatewayd's writer).
 * Times are ISO 8601 (UTC with a Z, local otherwise) or relative to now
 * (-30m, -1h, -7d).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "admin.h"
#include "audit_chain.h"
#include "conf.h"
#include "escape.h"
#include "evidence.h"

sqlite3 *
audit_db(struct ctl *ctl)
{
	sqlite3		*db;
	const char	*path = ctl->ctl_conf->c_audit_db;

	if (path == NULL)
		ctl_error("%s: no audit_db configured", ctl->ctl_conf_path);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
	    SQLITE_OPEN_NOFOLLOW,
	    NULL) != SQLITE_OK)
		ctl_error("%s: %s", path, policy_db_errmsg(path, db));
	sqlite3_busy_timeout(db, 5000);
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

static void
format_ms(sqlite3_stmt *st, int col, char *out, size_t len)
{
	struct tm	 tm;
	time_t		 t;
	int64_t		 ms;

	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		snprintf(out, len, "%s", "");
		return;
	}
	ms = sqlite3_column_int64(st, col);
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + strlen(out), len - strlen(out), ".%03dZ",
	    (int)(ms % 1000));
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char	*v = sqlite3_column_text(st, i);

	return (v != NULL ? (const char *)v : "");
}

#define AUDIT_COLUMNS	"id, kind, session_id, start_ms, end_ms, user, "     \
	"client_addr, client_port, command, dst_host, dst_addr, dst_port, "   \
	"dst_country, verdict, rule_id, reason, bytes_up, bytes_down, "       \
	"close_reason, seq, hex(hash), protocol, ident, packets_up, "        \
	"packets_down, udp_destinations, udp_denied"

static int
audit_list(struct ctl *ctl, struct args *a)
{
	const char	*opt, *v;
	char		 sql[1024], start[40], end[40], client[64], dst[300];
	char		 rule[24], up[24], down[24], id[24], sid[24];
	struct table	*t;
	sqlite3_stmt	*st;
	sqlite3		*db;
	const char	*user = NULL, *verdict = NULL, *dsttext = NULL;
	const char	*clientaddr = NULL;
	int64_t		 since = INT64_MIN, until = INT64_MAX, limit = 100;
	int64_t		 rule_id = -1, session = -1;

	while ((opt = args_next(a)) != NULL) {
		v = args_value(a, opt);
		if (strcmp(opt, "--user") == 0)
			user = v;
		else if (strcmp(opt, "--session") == 0)
			session = parse_id(v, "--session");
		else if (strcmp(opt, "--since") == 0)
			since = parse_when(opt, v);
		else if (strcmp(opt, "--until") == 0)
			until = parse_when(opt, v);
		else if (strcmp(opt, "--verdict") == 0) {
			if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0)
				ctl_usage_error("--verdict %s: allow or deny",
				    v);
			verdict = v;
		} else if (strcmp(opt, "--dst") == 0)
			dsttext = v;
		else if (strcmp(opt, "--client") == 0)
			clientaddr = v;
		else if (strcmp(opt, "--rule") == 0)
			rule_id = strtoll(v, NULL, 10);
		else if (strcmp(opt, "--limit") == 0)
			limit = parse_id(v, "--limit");
		else
			ctl_usage_error("audit list: unknown option '%s'", opt);
	}
	db = audit_db(ctl);
	snprintf(sql, sizeof(sql), "SELECT " AUDIT_COLUMNS " FROM records "
	    "WHERE start_ms >= ?1 AND start_ms <= ?2 "
	    "AND (?3 IS NULL OR user = ?3) AND (?4 IS NULL OR verdict = ?4) "
	    "AND (?5 IS NULL OR instr(coalesce(dst_host, '') || ' ' || "
	    "coalesce(dst_addr, ''), ?5) > 0) AND (?6 IS NULL OR client_addr "
	    "= ?6) AND (?7 < 0 OR rule_id = ?7) AND (?9 < 0 OR session_id = "
	    "?9) ORDER BY start_ms DESC, id DESC LIMIT ?8");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, until);
	if (user)
		sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
	if (verdict)
		sqlite3_bind_text(st, 4, verdict, -1, SQLITE_STATIC);
	if (dsttext)
		sqlite3_bind_text(st, 5, dsttext, -1, SQLITE_STATIC);
	if (clientaddr)
		sqlite3_bind_text(st, 6, clientaddr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, rule_id);
	sqlite3_bind_int64(st, 8, limit);
	sqlite3_bind_int64(st, 9, session);
	t = table_new(13, "#id", "#session", "start", "end", "user", "client",
	    "command", "dst", "verdict", "#rule", "#up", "#down", "close");
	while (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, sizeof(id), "%lld", sqlite3_column_int64(st, 0));
		snprintf(sid, sizeof(sid), "%lld", sqlite3_column_int64(st, 2));
		format_ms(st, 3, start, sizeof(start));
		format_ms(st, 4, end, sizeof(end));
		snprintf(client, sizeof(client), "%s:%d", col(st, 6),
		    sqlite3_column_int(st, 7));
		if (sqlite3_column_type(st, 11) == SQLITE_NULL)
			snprintf(dst, sizeof(dst), "%s", col(st, 9));
		else if (strcmp(col(st, 9), col(st, 10)) == 0 ||
		    col(st, 10)[0] == '\0')
			snprintf(dst, sizeof(dst), "%s:%d", col(st, 9),
			    sqlite3_column_int(st, 11));
		else
			snprintf(dst, sizeof(dst), "%s:%d (%s)", col(st, 9),
			    sqlite3_column_int(st, 11), col(st, 10));
		snprintf(rule, sizeof(rule), "%lld",
		    sqlite3_column_int64(st, 14));
		snprintf(up, sizeof(up), "%lld", sqlite3_column_int64(st, 16));
		snprintf(down, sizeof(down), "%lld",
		    sqlite3_column_int64(st, 17));
		table_row(t, id, sid, start, end[0] ? end : "open", col(st, 5),
		    client, col(st, 8), dst, col(st, 13), rule, up, down,
		    sqlite3_column_type(st, 4) == SQLITE_NULL ? "(open)" :
		    col(st, 18));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	table_print(t, ctl->ctl_json);
	return (0);
}

static int
audit_show(struct ctl *ctl, int64_t id)
{
	static const char *const names[] = { "id", "kind", "session_id",
	    "start", "end", "user", "client_addr", "client_port", "command",
	    "dst_host", "dst_addr", "dst_port", "dst_country", "verdict",
	    "rule_id", "reason", "bytes_up", "bytes_down", "close_reason",
	    "seq", "hash", "protocol", "ident", "packets_up", "packets_down",
	    "udp_destinations", "udp_denied" };
	sqlite3_stmt	*st;
	sqlite3		*db = audit_db(ctl);
	char		 v[80];
	const char	*val;
	int		 i;

	if (sqlite3_prepare_v2(db, "SELECT " AUDIT_COLUMNS " FROM records "
	    "WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW)
		ctl_error("audit record %lld: no such record", (long long)id);
	if (ctl->ctl_json)
		printf("{");
	for (i = 0; i < 27; i++) {
		if (i == 3 || i == 4) {
			format_ms(st, i, v, sizeof(v));
			val = v;
		} else
			val = col(st, i);
		out_kv(ctl->ctl_json, names[i], val, i == 0);
	}
	if (ctl->ctl_json)
		printf("}\n");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (0);
}

/*
 * Recomputes the chain from its anchor. The first record whose place or
 * hash is wrong is reported: a gap is a deletion; a hash that does not
 * follow is an edit or an insertion.
 */
static int
audit_verify_chain(sqlite3 *db, int64_t *verified)
{
	struct audit_fields	 f;
	unsigned char		 prev[32], h[32];
	sqlite3_stmt		*st;
	int64_t			 expect = 1, n = 0, seq;
	int			 bad = 0;

	memset(prev, 0, sizeof(prev));
	if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM chain WHERE name = "
	    "'anchor'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 1) == 32) {
		expect = sqlite3_column_int64(st, 0) + 1;
		memcpy(prev, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT " AUDIT_ROW_COLUMNS " FROM records "
	    "WHERE seq IS NOT NULL OR end_ms IS NOT NULL ORDER BY seq IS NULL, "
	    "seq",
	    -1, &st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	while (!bad && sqlite3_step(st) == SQLITE_ROW) {
		int64_t	 id = sqlite3_column_int64(st, 0);

		if (sqlite3_column_type(st, 19) == SQLITE_NULL) {
			fprintf(stderr, "audit record %lld: completed but not in "
			    "the chain (inserted)\n", (long long)id);
			bad = 1;
			break;
		}
		seq = sqlite3_column_int64(st, 19);
		if (seq != expect) {
			fprintf(stderr, "audit record %lld: chain place %lld, "
			    "%lld expected: %lld record%s deleted before it\n",
			    (long long)id, (long long)seq, (long long)expect,
			    (long long)(seq - expect), seq - expect == 1 ? "" :
			    "s");
			bad = 1;
			break;
		}
		audit_fields_row(st, &f);
		if (audit_chain_hash(NULL, prev, &f, h) == -1)
			ctl_error("SHA-256 failed");
		if (sqlite3_column_bytes(st, 20) != 32 ||
		    memcmp(h, sqlite3_column_blob(st, 20), 32) != 0) {
			fprintf(stderr, "audit record %lld (chain place %lld): "
			    "hash mismatch: the record was edited, or inserted "
			    "into the chain\n", (long long)id, (long long)seq);
			bad = 1;
			break;
		}
		memcpy(prev, h, 32);
		expect++;
		n++;
	}
	sqlite3_finalize(st);
	*verified = n;
	return (bad);
}

/*
 * A checkpoint against the records: the row at its place must carry its
 * hash, unless a signed prune removed that place. 0, or 1 (reported).
 */
static int
audit_check_point(sqlite3 *db, const struct checkpoint *cp, int64_t pruned,
    const char *from)
{
	sqlite3_stmt	*st;
	int		 found, same;

	if (cp->cp_seq <= pruned)
		return (0);
	if (sqlite3_prepare_v2(db, "SELECT hash FROM records WHERE seq = ?1",
	    -1, &st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, cp->cp_seq);
	found = sqlite3_step(st) == SQLITE_ROW;
	same = found && sqlite3_column_bytes(st, 0) == 32 &&
	    memcmp(sqlite3_column_blob(st, 0), cp->cp_hash, 32) == 0;
	sqlite3_finalize(st);
	if (!found) {
		fprintf(stderr, "signed %s at chain place %lld%s: that record "
		    "is gone: records were deleted up to it\n", cp->cp_kind,
		    (long long)cp->cp_seq, from);
		return (1);
	}
	if (!same) {
		fprintf(stderr, "signed %s at chain place %lld%s: the record "
		    "there differs from what was signed: the chain was "
		    "rewritten (edited and recomputed)\n", cp->cp_kind,
		    (long long)cp->cp_seq, from);
		return (1);
	}
	return (0);
}

/* The value of name="..." in an RFC 5424 line, or NULL. */
static const char *
audit_sd_value(const char *line, const char *name, char *out, size_t len)
{
	char		 pat[32];
	const char	*p, *q;

	snprintf(pat, sizeof(pat), " %s=\"", name);
	if ((p = strstr(line, pat)) == NULL)
		return (NULL);
	p += strlen(pat);
	if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= len)
		return (NULL);
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return (out);
}

/*
 * Checkpoints kept off the machine (syslog lines, one a line): each must
 * be signed, and be in the database, and match its records. Catches the
 * newest rows deleted together with the checkpoints after them.
 */
static int
audit_verify_external(sqlite3 *db, EVP_PKEY *key, const char *path,
    int64_t pruned, int64_t *count)
{
	struct checkpoint	 cp;
	unsigned char		 sig[EVIDENCE_SIG_LEN];
	sqlite3_stmt		*st;
	char			*line = NULL, kind[16], seq[24], hash[80];
	char			 time_ms[24], sighex[160], from[64];
	size_t			 cap = 0;
	FILE			*f;
	int			 bad = 0, lineno = 0, inside;

	if ((f = fopen(path, "r")) == NULL)
		ctl_error("--checkpoints %s: %s", path, strerror(errno));
	while (getline(&line, &cap, f) != -1 && !bad) {
		lineno++;
		if (audit_sd_value(line, "kind", kind, sizeof(kind)) == NULL ||
		    audit_sd_value(line, "seq", seq, sizeof(seq)) == NULL ||
		    audit_sd_value(line, "hash", hash, sizeof(hash)) == NULL ||
		    audit_sd_value(line, "time_ms", time_ms,
		    sizeof(time_ms)) == NULL ||
		    audit_sd_value(line, "sig", sighex, sizeof(sighex)) == NULL)
			continue;	/* another kind of line */
		memset(&cp, 0, sizeof(cp));
		cp.cp_kind = strcmp(kind, "prune") == 0 ? "prune" :
		    "checkpoint";
		cp.cp_seq = strtoll(seq, NULL, 10);
		cp.cp_time_ms = strtoll(time_ms, NULL, 10);
		if (evidence_unhex(hash, cp.cp_hash, 32) == -1 ||
		    evidence_unhex(sighex, sig, sizeof(sig)) == -1 ||
		    !evidence_verify(key, &cp, sig, sizeof(sig))) {
			fprintf(stderr, "%s:%d: a checkpoint line the public key "
			    "did not sign\n", path, lineno);
			bad = 1;
			break;
		}
		(*count)++;
		snprintf(from, sizeof(from), " (%s:%d)", path, lineno);
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM checkpoints "
		    "WHERE kind = ?1 AND seq = ?2 AND time_ms = ?3", -1, &st,
		    NULL) != SQLITE_OK)
			ctl_error("%s", sqlite3_errmsg(db));
		sqlite3_bind_text(st, 1, cp.cp_kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, cp.cp_seq);
		sqlite3_bind_int64(st, 3, cp.cp_time_ms);
		inside = sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_int64(st, 0) > 0;
		sqlite3_finalize(st);
		if (!inside && cp.cp_seq > pruned) {
			fprintf(stderr, "signed %s at chain place %lld%s is "
			    "missing from the database: it was deleted\n",
			    cp.cp_kind, (long long)cp.cp_seq, from);
			bad = 1;
			break;
		}
		bad = audit_check_point(db, &cp, pruned, from);
	}
	free(line);
	fclose(f);
	return (bad);
}

/*
 * socksctl audit verify [--pubkey FILE] [--checkpoints FILE]: the chain
 * from its anchor, then every signed checkpoint: its signature, the
 * anchor against the newest signed prune, each checkpoint against the
 * record at its place, and checkpoints kept elsewhere.
 */
static int
audit_verify(struct ctl *ctl, struct args *a)
{
	struct checkpoint	 cp;
	char			 keypath[PATH_MAX], pubpath[PATH_MAX];
	char			 fp[EVIDENCE_FP_LEN], *cause = NULL;
	const char		*opt, *pub = NULL, *ext = NULL;
	unsigned char		 anchor[32];
	sqlite3_stmt		*st;
	sqlite3			*db;
	EVP_PKEY		*key;
	int64_t			 n = 0, points = 0, outside = 0, restarted = 0;
	int64_t			 anchor_seq = 0, pruned = 0;
	int			 bad, have_anchor = 0, signed_anchor = 0;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--pubkey") == 0)
			pub = args_value(a, opt);
		else if (strcmp(opt, "--checkpoints") == 0)
			ext = args_value(a, opt);
		else
			ctl_usage_error("audit verify: unknown option %s", opt);
	}
	db = audit_db(ctl);
	evidence_paths(ctl->ctl_conf->c_audit_db, keypath, pubpath,
	    sizeof(keypath));
	if ((key = evidence_pubkey_load(pub != NULL ? pub : pubpath,
	    &cause)) == NULL)
		ctl_error("%s (the public key: --pubkey FILE)", cause != NULL ?
		    cause : "out of memory");
	evidence_fingerprint(key, fp);
	if ((bad = audit_verify_chain(db, &n)) != 0)
		goto done;

	if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM chain WHERE name = "
	    "'anchor'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 1) == 32) {
		have_anchor = 1;
		anchor_seq = sqlite3_column_int64(st, 0);
		memcpy(anchor, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT id, kind, seq, hash, time_ms, "
	    "signature FROM checkpoints ORDER BY id", -1, &st, NULL) !=
	    SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	while (!bad && sqlite3_step(st) == SQLITE_ROW) {
		memset(&cp, 0, sizeof(cp));
		cp.cp_kind = strcmp((const char *)sqlite3_column_text(st, 1),
		    "prune") == 0 ? "prune" : "checkpoint";
		cp.cp_seq = sqlite3_column_int64(st, 2);
		cp.cp_time_ms = sqlite3_column_int64(st, 4);
		if (sqlite3_column_bytes(st, 3) != 32 ||
		    !evidence_verify(key, (memcpy(cp.cp_hash,
		    sqlite3_column_blob(st, 3), 32), &cp),
		    sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st,
		    5))) {
			fprintf(stderr, "checkpoint %lld: the public key did not "
			    "sign it: forged or altered\n",
			    (long long)sqlite3_column_int64(st, 0));
			bad = 1;
			break;
		}
		points++;
		if (cp.cp_kind[0] == 'p' && cp.cp_seq >= pruned) {
			pruned = cp.cp_seq;
			signed_anchor = have_anchor && cp.cp_seq == anchor_seq &&
			    memcmp(cp.cp_hash, anchor, 32) == 0;
		}
	}
	sqlite3_finalize(st);
	if (!bad && have_anchor && !signed_anchor) {
		fprintf(stderr, "the chain's anchor (place %lld) is not the "
		    "newest signed prune: records were deleted behind a forged "
		    "anchor\n", (long long)anchor_seq);
		bad = 1;
	}
	/* Every checkpoint against the records it names. */
	if (!bad && sqlite3_prepare_v2(db, "SELECT kind, seq, hash FROM "
	    "checkpoints WHERE kind = 'checkpoint' ORDER BY seq", -1, &st,
	    NULL) == SQLITE_OK) {
		while (!bad && sqlite3_step(st) == SQLITE_ROW) {
			memset(&cp, 0, sizeof(cp));
			cp.cp_kind = "checkpoint";
			cp.cp_seq = sqlite3_column_int64(st, 1);
			memcpy(cp.cp_hash, sqlite3_column_blob(st, 2), 32);
			bad = audit_check_point(db, &cp, pruned, "");
		}
		sqlite3_finalize(st);
	}
	if (!bad && ext != NULL)
		bad = audit_verify_external(db, key, ext, pruned, &outside);
	/*
	 * Rows a restart completed from a crashed run's open rows: their
	 * fields are what the database held then, which no signature from
	 * before the crash covers. Said, not failed.
	 */
	if (!bad && sqlite3_prepare_v2(db, "SELECT count(*) FROM records WHERE "
	    "close_reason IN ('gateway restarted', 'proxy restarted')", -1,
	    &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			restarted = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (!bad && restarted > 0 && !ctl->ctl_json)
		printf("note: %lld records were completed at a restart from "
		    "the open rows a crashed run left; their fields are as the "
		    "database held them then, covered by no earlier "
		    "signature\n", (long long)restarted);
	if (!bad && pub == NULL && !ctl->ctl_json)
		printf("note: the public key beside the database was used; "
		    "whoever can write there can replace it: pin a copy with "
		    "--pubkey\n");
done:
	EVP_PKEY_free(key);
	sqlite3_close(db);
	if (bad)
		return (1);
	if (ctl->ctl_json)
		printf("{\"verified\": %lld, \"checkpoints\": %lld, "
		    "\"external_checkpoints\": %lld, \"key\": \"%s\", "
		    "\"completed_at_restart\": %lld, \"pinned_key\": %s, "
		    "\"intact\": true}\n", (long long)n, (long long)points,
		    (long long)outside, fp, (long long)restarted,
		    pub != NULL ? "true" : "false");
	else
		printf("%lld records verified, %lld signed checkpoints (key %s)"
		    "%s: the chain is intact\n", (long long)n, (long long)points,
		    fp, ext != NULL ? ", and those kept elsewhere" : "");
	return (0);
}

int
cmd_audit(struct ctl *ctl, struct args *a)
{
	const char	*verb = args_next(a), *v;

	if (verb == NULL)
		ctl_usage_error("audit: list, show or verify expected");
	if (strcmp(verb, "list") == 0)
		return (audit_list(ctl, a));
	if (strcmp(verb, "show") == 0) {
		if ((v = args_next(a)) == NULL)
			ctl_usage_error("audit show ID");
		args_done(a);
		return (audit_show(ctl, parse_id(v, "record id")));
	}
	if (strcmp(verb, "report") == 0)
		return (audit_report(ctl, a));
	if (strcmp(verb, "verify") == 0)
		return (audit_verify(ctl, a));
	ctl_usage_error("audit %s: unknown verb", verb);
}

/* socksctl log: who changed the policy, newest first. */
int
cmd_log(struct ctl *ctl, struct args *a)
{
	struct table	*t;
	sqlite3_stmt	*st;
	const char	*opt;
	char		 id[24];
	int64_t		 limit = 100;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "revert") == 0) {
			if ((opt = args_next(a)) == NULL)
				ctl_usage_error("log revert ID");
			limit = parse_id(opt, "change id");
			args_done(a);
			return (log_revert(ctl, limit));
		}
		if (strcmp(opt, "--limit") != 0)
			ctl_usage_error("log: unknown option '%s'", opt);
		limit = parse_id(args_value(a, opt), "--limit");
	}
	st = sql_prepare(ctl, "SELECT id, time, os_user, command, detail FROM "
	    "changes ORDER BY id DESC LIMIT ?1");
	sqlite3_bind_int64(st, 1, limit);
	t = table_new(5, "#id", "time", "os_user", "command", "detail");
	while (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, sizeof(id), "%lld", sqlite3_column_int64(st, 0));
		table_row(t, id, col(st, 1), col(st, 2), col(st, 3), col(st, 4));
	}
	sqlite3_finalize(st);
	table_print(t, ctl->ctl_json);
	return (0);
}
