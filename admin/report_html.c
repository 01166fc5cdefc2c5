/*
 * report_html.c: socksctl audit report --format html. One self-contained
 * page: traffic over time, top users and top denied destinations as SVG
 * drawn here (nothing fetched from the network), then the report's table.
 * Every text from the log goes through html_text(): controls and invalid
 * UTF-8 escaped as in a log line, then HTML's five characters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "admin.h"
#include "escape.h"
#include "report.h"

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

void
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
