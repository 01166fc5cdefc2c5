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
	"packets_down, udp_destinations, udp_denied, auth_method, node"

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
	const char	*clientaddr = NULL, *node = NULL;
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
		else if (strcmp(opt, "--node") == 0)
			node = v;
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
	    "?9) AND (?10 IS NULL OR node = ?10) ORDER BY start_ms DESC, id "
	    "DESC LIMIT ?8");
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
	if (node)
		sqlite3_bind_text(st, 10, node, -1, SQLITE_STATIC);
	t = table_new(14, "#id", "#session", "start", "end", "user", "client",
	    "command", "dst", "verdict", "#rule", "#up", "#down", "close",
	    "node");
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
		    col(st, 18), col(st, 28));
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
