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
 * top denied destinations) need nothing from the network.
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

#define REPORT_COLS	8
#define REPORT_ROWS_MAX	100000

enum report_format { FMT_TABLE, FMT_CSV, FMT_JSON, FMT_HTML };

struct report {
	const char	*r_kind;
	int64_t		 r_since, r_until;
	const char	*r_user;
	const char	*r_group;
	char		 r_attribution[512];	/* of the country data */
	int		 r_no_policy;	/* not readable: no groups */
	int		 r_top;
	int		 r_by_bytes;
	int64_t		 r_bucket_ms;
	int		 r_rollups;	/* the hourly tables are up to date */
	sqlite3		*r_db;
};

/* A result: column names ('#' before a number) and rows of text. */
struct rows {
	int		 rw_ncols;
	const char	*rw_cols[REPORT_COLS];
	char		**rw_cells;
	size_t		 rw_n;
};

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
	char			*out = NULL;
	size_t			 len = 0;
	FILE			*f;

	if ((f = open_memstream(&out, &len)) == NULL)
		ctl_error("out of memory");
	while ((at = strstr(sql, GROUP_MEMBERS)) != NULL) {
		fprintf(f, "%.*s%s", (int)(at - sql), sql, none);
		sql = at + strlen(GROUP_MEMBERS);
	}
	fprintf(f, "%s", sql);
	if (fclose(f) != 0)
		ctl_error("out of memory");
	return (out);
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

static const char *
cell(const struct rows *rw, size_t row, int col)
{
	return (rw->rw_cells[row * (size_t)rw->rw_ncols + (size_t)col]);
}

static void
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

static void
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
	} else
		ctl_usage_error("audit report %s: users, destinations, denials "
		    "or timeline", kind);
	/* Destinations of one user or group: only the records know. */
	if (r->r_rollups && !(strstr(kind, "destinations") != NULL &&
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

/* HTML --------------------------------------------------------------------- */

/* Controls and invalid UTF-8 as in a log line, then HTML's five. */
static void
html_text(const char *text)
{
	char		 vis[ESC_FIELD_MAX];
	const char	*s;

	esc_log(vis, sizeof(vis), text);
	for (s = vis; *s != '\0'; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", stdout);
			break;
		case '>':
			fputs("&gt;", stdout);
			break;
		case '&':
			fputs("&amp;", stdout);
			break;
		case '"':
			fputs("&quot;", stdout);
			break;
		case '\'':
			fputs("&#39;", stdout);
			break;
		default:
			putchar(*s);
		}
	}
}

static const char *
human_bytes(double v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KB", "MB", "GB", "TB" };
	int	 u = 0;

	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return (buf);
}

static double
bar_value(const struct rows *rw, size_t r, int vcol, int vcol2)
{
	return (strtod(cell(rw, r, vcol), NULL) + (vcol2 >= 0 ?
	    strtod(cell(rw, r, vcol2), NULL) : 0));
}

/* Horizontal bars: label and value (column vcol, plus vcol2 if >= 0). */
static void
svg_hbars(const char *title, const struct rows *rw, int vcol, int vcol2,
    int bytes, const char *color)
{
	double	 max = 1, v;
	size_t	 r, n = rw->rw_n < 10 ? rw->rw_n : 10;
	char	 buf[32];
	int	 h = 30 + (int)n * 26;

	for (r = 0; r < n; r++)
		if ((v = bar_value(rw, r, vcol, vcol2)) > max)
			max = v;
	printf("<figure><figcaption>");
	html_text(title);
	printf("</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"640\" height=\"%d\" role=\"img\">\n", h);
	if (n == 0)
		printf("<text x=\"10\" y=\"20\" class=\"none\">nothing in this "
		    "period</text>\n");
	for (r = 0; r < n; r++) {
		v = bar_value(rw, r, vcol, vcol2);
		printf("<text x=\"190\" y=\"%zu\" text-anchor=\"end\">",
		    22 + r * 26);
		html_text(cell(rw, r, 0));
		printf("</text><rect x=\"200\" y=\"%zu\" width=\"%.1f\" "
		    "height=\"18\" rx=\"3\" fill=\"%s\"/><text x=\"%.1f\" "
		    "y=\"%zu\" class=\"v\">%s</text>\n", 8 + r * 26,
		    340 * v / max, color, 206 + 340 * v / max, 22 + r * 26,
		    bytes ? human_bytes(v, buf, sizeof(buf)) :
		    (snprintf(buf, sizeof(buf), "%.0f", v), buf));
	}
	printf("</svg></figure>\n");
}

/* Vertical bars over time: sessions, and bytes as a line. */
static void
svg_timeline(const struct rows *rw)
{
	double	 maxs = 1, maxb = 1, s, b, x, w;
	size_t	 r;
	char	 buf[32];

	for (r = 0; r < rw->rw_n; r++) {
		if ((s = strtod(cell(rw, r, 1), NULL)) > maxs)
			maxs = s;
		b = strtod(cell(rw, r, 2), NULL) + strtod(cell(rw, r, 3), NULL);
		if (b > maxb)
			maxb = b;
	}
	printf("<figure><figcaption>Traffic over time: sessions (bars) and "
	    "bytes (line, up to %s)</figcaption>\n<svg xmlns=\"http://www.w3.org"
	    "/2000/svg\" width=\"640\" height=\"260\" role=\"img\">\n"
	    "<line x1=\"40\" y1=\"220\" x2=\"630\" y2=\"220\" class=\"axis\"/>"
	    "<text x=\"36\" y=\"24\" text-anchor=\"end\">%.0f</text>"
	    "<text x=\"36\" y=\"220\" text-anchor=\"end\">0</text>\n",
	    human_bytes(maxb, buf, sizeof(buf)), maxs);
	if (rw->rw_n == 0) {
		printf("<text x=\"60\" y=\"120\" class=\"none\">nothing in this "
		    "period</text></svg></figure>\n");
		return;
	}
	w = 590.0 / (double)rw->rw_n;
	for (r = 0; r < rw->rw_n; r++) {
		s = strtod(cell(rw, r, 1), NULL);
		x = 40 + w * (double)r;
		printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
		    "fill=\"#4e79a7\"><title>", x + w * 0.1, 220 - 196 * s / maxs,
		    w * 0.8, 196 * s / maxs);
		html_text(cell(rw, r, 0));
		printf(": %s sessions</title></rect>\n", cell(rw, r, 1));
	}
	printf("<polyline fill=\"none\" stroke=\"#e15759\" stroke-width=\"2\" "
	    "points=\"");
	for (r = 0; r < rw->rw_n; r++) {
		b = strtod(cell(rw, r, 2), NULL) + strtod(cell(rw, r, 3), NULL);
		printf("%.1f,%.1f ", 40 + w * ((double)r + 0.5),
		    220 - 196 * b / maxb);
	}
	printf("\"/>\n<text x=\"40\" y=\"240\">");
	html_text(cell(rw, 0, 0));
	printf("</text><text x=\"630\" y=\"240\" text-anchor=\"end\">");
	html_text(cell(rw, rw->rw_n - 1, 0));
	printf("</text></svg></figure>\n");
}

static void
html_table(const struct rows *rw)
{
	size_t	 r;
	int	 c;

	printf("<table><thead><tr>");
	for (c = 0; c < rw->rw_ncols; c++) {
		printf("<th>");
		html_text(rw->rw_cols[c] + (rw->rw_cols[c][0] == '#'));
		printf("</th>");
	}
	printf("</tr></thead><tbody>\n");
	for (r = 0; r < rw->rw_n; r++) {
		printf("<tr>");
		for (c = 0; c < rw->rw_ncols; c++) {
			printf("<td%s>", rw->rw_cols[c][0] == '#' ?
			    " class=\"n\"" : "");
			html_text(cell(rw, r, c));
			printf("</td>");
		}
		printf("</tr>\n");
	}
	printf("</tbody></table>\n");
}

static void
print_html(struct report *r, const struct rows *main)
{
	struct rows	 timeline, users, denied;
	char		 since[40], until[40];
	time_t		 t;
	struct tm	 tm;

	t = (time_t)(r->r_since / 1000);
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%d %H:%M UTC", &tm);
	t = (time_t)(r->r_until / 1000);
	gmtime_r(&t, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", &tm);
	report_query(r, "timeline", &timeline);
	r->r_by_bytes = 1;
	report_query(r, "users", &users);
	report_query(r, "denied-destinations", &denied);
	printf("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<title>socksgw report: %s</title>\n<style>\n"
	    "body{font:14px/1.4 sans-serif;margin:24px;color:#222}"
	    "h1{font-size:20px;margin:0 0 4px}p.sub{color:#666;margin:0 0 16px}"
	    "figure{margin:16px 0}figcaption{font-weight:bold;margin-bottom:4px}"
	    "svg text{font:12px sans-serif;fill:#333}svg text.v{fill:#555}"
	    "svg .axis{stroke:#999}svg .none{fill:#999}"
	    "table{border-collapse:collapse;margin-top:8px}"
	    "th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}"
	    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
	    ".grid{display:flex;flex-wrap:wrap;gap:24px}\n</style></head><body>\n"
	    "<h1>socksgw: %s</h1><p class=\"sub\">%s to %s", r->r_kind,
	    r->r_kind, since, until);
	if (r->r_user != NULL) {
		printf(", user ");
		html_text(r->r_user);
	}
	if (r->r_group != NULL) {
		printf(", group ");
		html_text(r->r_group);
	}
	printf("</p>\n");
	svg_timeline(&timeline);
	printf("<div class=\"grid\">\n");
	svg_hbars("Top users by traffic (both ways)", &users, 4, 5, 1,
	    "#59a14f");
	svg_hbars("Top denied destinations (requests)", &denied, 1, -1, 0,
	    "#e15759");
	printf("</div>\n<h2>");
	html_text(r->r_kind);
	printf("</h2>\n");
	html_table(main);
	if (r->r_attribution[0]) {
		printf("<footer><p class=\"sub\">Country data: ");
		html_text(r->r_attribution);
		printf("</p></footer>\n");
	}
	printf("</body></html>\n");
	rows_free(&timeline);
	rows_free(&users);
	rows_free(&denied);
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
	const char	*opt, *v;
	char		 sql[600];
	sqlite3_stmt	*st;

	memset(&r, 0, sizeof(r));
	memset(&rw, 0, sizeof(rw));
	if ((r.r_kind = args_next(a)) == NULL)
		ctl_usage_error("audit report users|destinations|denials|"
		    "timeline");
	r.r_since = ((int64_t)time(NULL) - 7 * 86400) * 1000;
	r.r_until = ((int64_t)time(NULL) + 60) * 1000;
	r.r_bucket_ms = 3600000;
	while ((opt = args_next(a)) != NULL) {
		v = args_value(a, opt);
		if (strcmp(opt, "--since") == 0)
			r.r_since = parse_when(opt, v);
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
	    strcmp(r.r_kind, "timeline") != 0)
		ctl_usage_error("audit report %s: users, destinations, denials "
		    "or timeline", r.r_kind);
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
	return (0);
}
