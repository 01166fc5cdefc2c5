/*
 * cmd_audit.c: socksctl audit list|show (verify: cmd_verify.c; report:
 * cmd_report.c) and socksctl log. The audit database is
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
	"packets_down, udp_destinations, udp_denied, auth_method, node"

/* Milliseconds since the epoch (text) as ISO 8601 UTC; "" for NULL. */
static void
format_ms_text(const char *v, char *out, size_t len)
{
	struct tm	 tm;
	time_t		 t;
	int64_t		 ms;

	if (v == NULL) {
		snprintf(out, len, "%s", "");
		return;
	}
	ms = strtoll(v, NULL, 10);
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + strlen(out), len - strlen(out), ".%03dZ",
	    (int)(ms % 1000));
}

static void
format_ms(sqlite3_stmt *st, int col, char *out, size_t len)
{
	format_ms_text((const char *)sqlite3_column_text(st, col), out, len);
}

struct table *
audit_list_table(void)
{
	return (table_new(14, "#id", "#session", "start", "end", "user",
	    "client", "command", "dst", "verdict", "#rule", "#up", "#down",
	    "close", "node"));
}

#define NN(s)	((s) != NULL ? (s) : "")

/*
 * A listed record, its AUDIT_COLUMNS as text (NULL: SQL NULL), from this
 * log or from the central store (cmd_central.c).
 */
void
audit_list_row(struct table *t, const char *const *v)
{
	char	 start[40], end[40], client[300], dst[600];

	format_ms_text(v[3], start, sizeof(start));
	format_ms_text(v[4], end, sizeof(end));
	snprintf(client, sizeof(client), "%s:%s", NN(v[6]), NN(v[7]));
	if (v[11] == NULL)
		snprintf(dst, sizeof(dst), "%s", NN(v[9]));
	else if (strcmp(NN(v[9]), NN(v[10])) == 0 || NN(v[10])[0] == '\0')
		snprintf(dst, sizeof(dst), "%s:%s", NN(v[9]), v[11]);
	else
		snprintf(dst, sizeof(dst), "%s:%s (%s)", NN(v[9]), v[11],
		    v[10]);
	table_row(t, NN(v[0]), NN(v[2]), start, end[0] ? end : "open",
	    NN(v[5]), client, NN(v[8]), dst, NN(v[13]), NN(v[14]), NN(v[16]),
	    NN(v[17]), v[4] == NULL ? "(open)" : NN(v[18]), NN(v[28]));
}

static int
audit_list(struct ctl *ctl, struct args *a)
{
	struct audit_filter	 f = { .af_since = INT64_MIN,
				    .af_until = INT64_MAX, .af_limit = 100,
				    .af_rule = -1, .af_session = -1 };
	const char		*opt, *v, *vals[29];
	struct table		*t;
	sqlite3_stmt		*st;
	sqlite3			*db;
	int			 i, central = 0;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--central") == 0) {
			central = 1;
			continue;
		}
		v = args_value(a, opt);
		if (strcmp(opt, "--user") == 0)
			f.af_user = v;
		else if (strcmp(opt, "--session") == 0)
			f.af_session = parse_id(v, "--session");
		else if (strcmp(opt, "--since") == 0)
			f.af_since = parse_when(opt, v);
		else if (strcmp(opt, "--until") == 0)
			f.af_until = parse_when(opt, v);
		else if (strcmp(opt, "--verdict") == 0) {
			if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0)
				ctl_usage_error("--verdict %s: allow or deny",
				    v);
			f.af_verdict = v;
		} else if (strcmp(opt, "--dst") == 0)
			f.af_dst = v;
		else if (strcmp(opt, "--client") == 0)
			f.af_client = v;
		else if (strcmp(opt, "--node") == 0)
			f.af_node = v;
		else if (strcmp(opt, "--rule") == 0)
			f.af_rule = strtoll(v, NULL, 10);
		else if (strcmp(opt, "--limit") == 0)
			f.af_limit = parse_id(v, "--limit");
		else
			ctl_usage_error("audit list: unknown option '%s'", opt);
	}
	if (central)
		return (central_list(ctl, &f));
	db = audit_db(ctl);
	if (sqlite3_prepare_v2(db, "SELECT " AUDIT_COLUMNS " FROM records "
	    "WHERE start_ms >= ?1 AND start_ms <= ?2 "
	    "AND (?3 IS NULL OR user = ?3) AND (?4 IS NULL OR verdict = ?4) "
	    "AND (?5 IS NULL OR instr(coalesce(dst_host, '') || ' ' || "
	    "coalesce(dst_addr, ''), ?5) > 0) AND (?6 IS NULL OR client_addr "
	    "= ?6) AND (?7 < 0 OR rule_id = ?7) AND (?9 < 0 OR session_id = "
	    "?9) AND (?10 IS NULL OR node = ?10) ORDER BY start_ms DESC, id "
	    "DESC LIMIT ?8", -1, &st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, f.af_since);
	sqlite3_bind_int64(st, 2, f.af_until);
	if (f.af_user)
		sqlite3_bind_text(st, 3, f.af_user, -1, SQLITE_STATIC);
	if (f.af_verdict)
		sqlite3_bind_text(st, 4, f.af_verdict, -1, SQLITE_STATIC);
	if (f.af_dst)
		sqlite3_bind_text(st, 5, f.af_dst, -1, SQLITE_STATIC);
	if (f.af_client)
		sqlite3_bind_text(st, 6, f.af_client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, f.af_rule);
	sqlite3_bind_int64(st, 8, f.af_limit);
	sqlite3_bind_int64(st, 9, f.af_session);
	if (f.af_node)
		sqlite3_bind_text(st, 10, f.af_node, -1, SQLITE_STATIC);
	t = audit_list_table();
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (i = 0; i < 29; i++)
			vals[i] = (const char *)sqlite3_column_text(st, i);
		audit_list_row(t, vals);
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
	    "udp_destinations", "udp_denied", "auth_method", "node" };
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
	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
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
	if (strcmp(verb, "nodes") == 0)
		return (central_nodes(ctl, a));
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
