/*
 * cmd_report.c: socksctl audit report KIND, for compliance.
 *
 *	users		sessions, allowed, denied and bytes per user
 *	destinations	the top destinations by sessions or bytes
 *	denials		denied requests by rule and user
 *	timeline	sessions and bytes per hour or day
 *
 * Over --since/--until, for one --user or the members of one --group (as
 * the policy database has them), as a table, CSV, JSON or one
 * self-contained HTML page whose SVG charts (traffic over time, top users,
 * top denied destinations) need nothing from the network (report_html.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <sqlite3.h>

#include "admin.h"
#include "audit_chain.h"
#include "conf.h"
#include "escape.h"

#include "report.h"

/*
 * The members of group ?4, from the policy database (attached as p). An
 * auditor who may not read it gets no --group, and this is cut from the
 * SQL (rows_run), so that nothing names p.
 */
#define GROUP_MEMBERS	"(SELECT u.name FROM p.users u JOIN p.user_groups " \
	"ug ON ug.user_id = u.id JOIN p.groups g ON g.id = ug.group_id " \
	"WHERE g.name = ?4)"

/* The rows a report covers: its period, user and group. */
#define REPORT_WHERE	"start_ms >= ?1 AND start_ms <= ?2 "		\
	"AND (?3 IS NULL OR user = ?3) AND (?4 IS NULL OR user IN "	\
	GROUP_MEMBERS ")"

/* The same through the hourly rollups: a period counts whole hours. */
#define ROLLUP_WHERE	"hour >= ?1 / 3600000 AND hour <= ?2 / 3600000 "	\
	"AND (?3 IS NULL OR user = ?3) AND (?4 IS NULL OR user IN "	\
	GROUP_MEMBERS ")"

/* sql without the group's members (no policy database to ask). */
static char *
sql_without_groups(const char *sql)
{
	static const char	 none[] = "(SELECT NULL WHERE 0)";
	const char		*at;
	struct text		 t;
	FILE			*f = text_open(&t);

	while ((at = strstr(sql, GROUP_MEMBERS)) != NULL) {
		fprintf(f, "%.*s%s", (int)(at - sql), sql, none);
		sql = at + strlen(GROUP_MEMBERS);
	}
	fprintf(f, "%s", sql);
	return (text_close(&t));
}

static void
rows_run(struct report *r, struct rows *rw, const char *sql)
{
	sqlite3_stmt	*st;
	size_t		 cap = 0;
	char		*cut = NULL;
	int		 i, rc;

	if (r->r_no_policy)
		sql = cut = sql_without_groups(sql);
	if (sqlite3_prepare_v2(r->r_db, sql, -1, &st, NULL) != SQLITE_OK)
		ctl_error("report: %s (SQL: %s)", sqlite3_errmsg(r->r_db), sql);
	free(cut);
	sqlite3_bind_int64(st, 1, r->r_since);
	sqlite3_bind_int64(st, 2, r->r_until);
	if (r->r_user != NULL)
		sqlite3_bind_text(st, 3, r->r_user, -1, SQLITE_STATIC);
	if (r->r_group != NULL)
		sqlite3_bind_text(st, 4, r->r_group, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->r_top);
	sqlite3_bind_int64(st, 6, r->r_bucket_ms);
	rw->rw_n = 0;
	rw->rw_cells = NULL;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && rw->rw_n <
	    REPORT_ROWS_MAX) {
		if (rw->rw_n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((rw->rw_cells = reallocarray(rw->rw_cells,
			    cap * (size_t)rw->rw_ncols, sizeof(char *))) == NULL)
				ctl_error("out of memory");
		}
		for (i = 0; i < rw->rw_ncols; i++) {
			const unsigned char *v = sqlite3_column_text(st, i);

			if ((rw->rw_cells[rw->rw_n * (size_t)rw->rw_ncols +
			    (size_t)i] = strdup(v ? (const char *)v : "")) ==
			    NULL)
				ctl_error("out of memory");
		}
		rw->rw_n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ctl_error("report: %s", sqlite3_errmsg(r->r_db));
	sqlite3_finalize(st);
}

const char *
cell(const struct rows *rw, size_t row, int col)
{
	return (rw->rw_cells[row * (size_t)rw->rw_ncols + (size_t)col]);
}

void
rows_free(struct rows *rw)
{
	size_t	 i;

	for (i = 0; i < rw->rw_n * (size_t)rw->rw_ncols; i++)
		free(rw->rw_cells[i]);
	free(rw->rw_cells);
	rw->rw_cells = NULL;
	rw->rw_n = 0;
}

#define ROLLUP_USER	"CASE user WHEN '' THEN '(anonymous)' ELSE user END"

static const char *
report_rollup_sql(struct report *r, const char *kind, char *sql, size_t len)
{
	if (strcmp(kind, "users") == 0)
		snprintf(sql, len, "SELECT " ROLLUP_USER ", sum(sessions), "
		    "sum(allowed), sum(denied), sum(bytes_up), sum(bytes_down) "
		    "FROM hourly_users WHERE " ROLLUP_WHERE " GROUP BY user "
		    "ORDER BY %s DESC, 1 LIMIT CASE WHEN ?5 > 0 THEN ?5 ELSE -1 "
		    "END", r->r_by_bytes ? "sum(bytes_up) + sum(bytes_down)" :
		    "sum(sessions)");
	else if (strcmp(kind, "destinations") == 0 ||
	    strcmp(kind, "denied-destinations") == 0)
		snprintf(sql, len, "SELECT destination, sum(sessions), "
		    "sum(bytes) FROM hourly_destinations WHERE %s hour >= ?1 / "
		    "3600000 AND hour <= ?2 / 3600000 GROUP BY 1 "
		    "ORDER BY %s DESC, 1 LIMIT CASE WHEN ?5 > 0 THEN ?5 ELSE 10 "
		    "END", strcmp(kind, "denied-destinations") == 0 ?
		    "verdict = 'deny' AND" : "", r->r_by_bytes ? "3" : "2");
	else if (strcmp(kind, "denials") == 0)
		snprintf(sql, len, "SELECT rule_id, " ROLLUP_USER ", "
		    "sum(denials), max(reason) FROM hourly_denials WHERE "
		    ROLLUP_WHERE " GROUP BY rule_id, user ORDER BY 3 DESC, 1, 2 "
		    "LIMIT CASE WHEN ?5 > 0 THEN ?5 ELSE -1 END");
	else
		snprintf(sql, len, "SELECT strftime('%%Y-%%m-%%dT%%H:%%MZ', "
		    "(hour * 3600000 / ?6) * ?6 / 1000, 'unixepoch'), "
		    "sum(sessions), sum(bytes_up), sum(bytes_down) FROM "
		    "hourly_users WHERE " ROLLUP_WHERE " GROUP BY hour * 3600000 "
		    "/ ?6 ORDER BY 1");
	return (sql);
}

void
report_query(struct report *r, const char *kind, struct rows *rw)
{
	char	 sql[1024];

	if (strcmp(kind, "users") == 0) {
		rw->rw_ncols = 6;
		rw->rw_cols[0] = "user";
		rw->rw_cols[1] = "#sessions";
		rw->rw_cols[2] = "#allowed";
		rw->rw_cols[3] = "#denied";
		rw->rw_cols[4] = "#bytes_up";
		rw->rw_cols[5] = "#bytes_down";
		snprintf(sql, sizeof(sql), "SELECT coalesce(user, "
		    "'(anonymous)'), count(*), sum(verdict = 'allow'), "
		    "sum(verdict = 'deny'), sum(bytes_up), sum(bytes_down) FROM "
		    "records WHERE " REPORT_WHERE " GROUP BY user ORDER BY %s "
		    "DESC, 1 LIMIT CASE WHEN ?5 > 0 THEN ?5 ELSE -1 END",
		    r->r_by_bytes ? "sum(bytes_up) + sum(bytes_down)" :
		    "count(*)");
	} else if (strcmp(kind, "destinations") == 0 ||
	    strcmp(kind, "denied-destinations") == 0) {
		rw->rw_ncols = 3;
		rw->rw_cols[0] = "destination";
		rw->rw_cols[1] = "#sessions";
		rw->rw_cols[2] = "#bytes";
		snprintf(sql, sizeof(sql), "SELECT coalesce(dst_host, dst_addr, "
		    "'-'), count(*), sum(bytes_up + bytes_down) FROM records "
		    "WHERE kind = 'session' AND %s "
		    REPORT_WHERE " GROUP BY 1 ORDER BY %s DESC, 1 LIMIT CASE "
		    "WHEN ?5 > 0 THEN ?5 ELSE 10 END",
		    strcmp(kind, "denied-destinations") == 0 ?
		    "verdict = 'deny' AND" : "", r->r_by_bytes ? "3" : "2");
	} else if (strcmp(kind, "denials") == 0) {
		rw->rw_ncols = 4;
		rw->rw_cols[0] = "#rule";
		rw->rw_cols[1] = "user";
		rw->rw_cols[2] = "#denials";
		rw->rw_cols[3] = "reason";
		snprintf(sql, sizeof(sql), "SELECT rule_id, coalesce(user, "
		    "'(anonymous)'), count(*), max(reason) FROM records WHERE "
		    "verdict = 'deny' AND " REPORT_WHERE " GROUP BY rule_id, "
		    "user ORDER BY 3 DESC, 1, 2 LIMIT CASE WHEN ?5 > 0 THEN ?5 "
		    "ELSE -1 END");
	} else if (strcmp(kind, "timeline") == 0) {
		rw->rw_ncols = 4;
		rw->rw_cols[0] = "period";
		rw->rw_cols[1] = "#sessions";
		rw->rw_cols[2] = "#bytes_up";
		rw->rw_cols[3] = "#bytes_down";
		snprintf(sql, sizeof(sql), "SELECT strftime('%%Y-%%m-%%dT%%H:%%M"
		    "Z', (start_ms / ?6) * ?6 / 1000, 'unixepoch'), count(*), "
		    "sum(bytes_up), sum(bytes_down) FROM records WHERE "
		    REPORT_WHERE " GROUP BY start_ms / ?6 ORDER BY 1");
	} else if (strcmp(kind, "nodes") == 0) {
		/* Which gateway served what: a fleet's (--central) or one's. */
		rw->rw_ncols = 6;
		rw->rw_cols[0] = "node";
		rw->rw_cols[1] = "#sessions";
		rw->rw_cols[2] = "#allowed";
		rw->rw_cols[3] = "#denied";
		rw->rw_cols[4] = "#users";
		rw->rw_cols[5] = "#bytes";
		snprintf(sql, sizeof(sql), "SELECT coalesce(node, '(unnamed)'), "
		    "count(*), sum(verdict = 'allow'), sum(verdict = 'deny'), "
		    "count(DISTINCT user), sum(bytes_up + bytes_down) FROM "
		    "records WHERE " REPORT_WHERE " GROUP BY node ORDER BY %s "
		    "DESC, 1 LIMIT CASE WHEN ?5 > 0 THEN ?5 ELSE -1 END",
		    r->r_by_bytes ? "6" : "2");
	} else
		ctl_usage_error("audit report %s: users, destinations, denials, "
		    "timeline or nodes", kind);
	/*
	 * Destinations of one user or group, and nodes (the rollups have no
	 * node): only the records know.
	 */
	if (r->r_rollups && strcmp(kind, "nodes") != 0 &&
	    !(strstr(kind, "destinations") != NULL &&
	    (r->r_user != NULL || r->r_group != NULL)))
		report_rollup_sql(r, kind, sql, sizeof(sql));
	rows_run(r, rw, sql);
}

/* Text out ---------------------------------------------------------------- */

static void
csv_field(const char *s)
{
	char	 buf[ESC_FIELD_MAX * 2 + 4];

	esc_csv(buf, sizeof(buf), s);
	fputs(buf, stdout);
}

static void
print_rows(const struct rows *rw, enum report_format fmt)
{
	struct table	*t;
	size_t		 r;
	int		 c;

	if (fmt == FMT_CSV) {
		for (c = 0; c < rw->rw_ncols; c++)
			printf("%s%s", c ? "," : "", rw->rw_cols[c] +
			    (rw->rw_cols[c][0] == '#'));
		printf("\r\n");
		for (r = 0; r < rw->rw_n; r++) {
			for (c = 0; c < rw->rw_ncols; c++) {
				if (c)
					putchar(',');
				csv_field(cell(rw, r, c));
			}
			printf("\r\n");
		}
		return;
	}
	t = table_new(rw->rw_ncols, rw->rw_cols[0], rw->rw_cols[1],
	    rw->rw_ncols > 2 ? rw->rw_cols[2] : "", rw->rw_ncols > 3 ?
	    rw->rw_cols[3] : "", rw->rw_ncols > 4 ? rw->rw_cols[4] : "",
	    rw->rw_ncols > 5 ? rw->rw_cols[5] : "");
	for (r = 0; r < rw->rw_n; r++)
		table_row(t, cell(rw, r, 0), cell(rw, r, 1), rw->rw_ncols > 2 ?
		    cell(rw, r, 2) : "", rw->rw_ncols > 3 ? cell(rw, r, 3) : "",
		    rw->rw_ncols > 4 ? cell(rw, r, 4) : "", rw->rw_ncols > 5 ?
		    cell(rw, r, 5) : "");
	table_print(t, fmt == FMT_JSON);
}

/*
 * Brings the hourly rollups up to date (gatewayd's writer keeps them close
 * when it has time). Without write access, reports read the records.
 */
static int
report_rollup(struct ctl *ctl)
{
	sqlite3	*db;
	char	*cause = NULL;
	int64_t	 n;

	if (sqlite3_open_v2(ctl->ctl_conf->c_audit_db, &db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return (0);
	}
	sqlite3_busy_timeout(db, 10000);
	n = audit_rollup(db, INT64_MAX, &cause);
	sqlite3_close(db);
	if (n == -1) {
		fprintf(stderr, "socksctl: %s; reading the records instead\n",
		    cause ? cause : "rollup failed");
		free(cause);
		return (0);
	}
	return (1);
}

int
audit_report(struct ctl *ctl, struct args *a)
{
	struct report	 r;
	struct rows	 rw;
	enum report_format fmt = FMT_TABLE;
	const char	*opt, *v, *node = NULL;
	char		 sql[600];
	sqlite3_stmt	*st;
	int		 central = 0;
	char		*own = NULL;

	memset(&r, 0, sizeof(r));
	memset(&rw, 0, sizeof(rw));
	if ((r.r_kind = args_next(a)) == NULL)
		ctl_usage_error("audit report users|destinations|denials|"
		    "timeline|nodes");
	r.r_since = ((int64_t)time(NULL) - 7 * 86400) * 1000;
	r.r_until = ((int64_t)time(NULL) + 60) * 1000;
	r.r_bucket_ms = 3600000;
	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--central") == 0) {
			central = 1;
			continue;
		}
		v = args_value(a, opt);
		if (strcmp(opt, "--since") == 0)
			r.r_since = parse_when(opt, v);
		else if (strcmp(opt, "--node") == 0)
			node = v;
		else if (strcmp(opt, "--until") == 0)
			r.r_until = parse_when(opt, v);
		else if (strcmp(opt, "--user") == 0)
			r.r_user = v;
		else if (strcmp(opt, "--group") == 0)
			r.r_group = v;
		else if (strcmp(opt, "--top") == 0)
			r.r_top = (int)parse_id(v, "--top");
		else if (strcmp(opt, "--by") == 0) {
			if (strcmp(v, "bytes") != 0 && strcmp(v, "sessions") !=
			    0)
				ctl_usage_error("--by %s: sessions or bytes", v);
			r.r_by_bytes = v[0] == 'b';
		} else if (strcmp(opt, "--bucket") == 0) {
			if (strcmp(v, "hour") != 0 && strcmp(v, "day") != 0)
				ctl_usage_error("--bucket %s: hour or day", v);
			r.r_bucket_ms = v[0] == 'd' ? 86400000 : 3600000;
		} else if (strcmp(opt, "--format") == 0) {
			if (strcmp(v, "table") == 0)
				fmt = FMT_TABLE;
			else if (strcmp(v, "csv") == 0)
				fmt = FMT_CSV;
			else if (strcmp(v, "json") == 0)
				fmt = FMT_JSON;
			else if (strcmp(v, "html") == 0)
				fmt = FMT_HTML;
			else
				ctl_usage_error("--format %s: table, csv, json "
				    "or html", v);
		} else
			ctl_usage_error("audit report: unknown option '%s'",
			    opt);
	}
	if (ctl->ctl_json)
		fmt = FMT_JSON;
	if (strcmp(r.r_kind, "users") != 0 && strcmp(r.r_kind,
	    "destinations") != 0 && strcmp(r.r_kind, "denials") != 0 &&
	    strcmp(r.r_kind, "timeline") != 0 && strcmp(r.r_kind, "nodes") != 0)
		ctl_usage_error("audit report %s: users, destinations, denials, "
		    "timeline or nodes", r.r_kind);
	if (node != NULL && !central)
		ctl_usage_error("audit report --node: with --central (a node's "
		    "own log is its own)");
	/*
	 * Across the fleet: the period's records from the central store, in
	 * a scratch log the rest reads as it reads this node's.
	 */
	if (central) {
		own = ctl->ctl_conf->c_audit_db;
		ctl->ctl_conf->c_audit_db = central_report_log(ctl, r.r_since,
		    r.r_until, node);
	}
	r.r_rollups = report_rollup(ctl);
	r.r_db = audit_db(ctl);
	/*
	 * Groups are the policy database's. An auditor who may not read it
	 * (the package's socksgw-auditors) gets every report but --group,
	 * through empty stand-ins for its tables.
	 */
	if (access(ctl->ctl_conf->c_policy_db, R_OK) == -1) {
		if (r.r_group != NULL)
			ctl_error("--group needs the policy database: %s: %s",
			    ctl->ctl_conf->c_policy_db, strerror(errno));
		r.r_no_policy = 1;
	} else {
		snprintf(sql, sizeof(sql), "file:%s?mode=ro",
		    ctl->ctl_conf->c_policy_db);
		if (sqlite3_prepare_v2(r.r_db, "ATTACH DATABASE ?1 AS p", -1,
		    &st, NULL) != SQLITE_OK)
			ctl_error("%s", sqlite3_errmsg(r.r_db));
		sqlite3_bind_text(st, 1, sql, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			ctl_error("%s: %s", ctl->ctl_conf->c_policy_db,
			    sqlite3_errmsg(r.r_db));
		sqlite3_finalize(st);
	}
	report_query(&r, r.r_kind, &rw);
	/* The country data's license asks for its attribution. */
	geoip_attribution(ctl->ctl_conf->c_geoip_db, r.r_attribution,
	    sizeof(r.r_attribution));
	if (fmt == FMT_HTML)
		print_html(&r, &rw);
	else
		print_rows(&rw, fmt);
	if (fmt == FMT_TABLE && r.r_attribution[0])
		printf("\ncountry data: %s\n",
		    term_text(r.r_attribution));
	rows_free(&rw);
	sqlite3_close(r.r_db);
	if (central) {
		free(ctl->ctl_conf->c_audit_db);	/* removed at exit */
		ctl->ctl_conf->c_audit_db = own;
	}
	return (0);
}
