/*
 * report.h: what socksctl's audit reports share: cmd_report.c runs the
 * queries and prints tables, CSV and JSON; report_html.c prints the HTML
 * page with its SVG charts.
 */
#ifndef REPORT_H
#define REPORT_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;

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
	struct sqlite3	*r_db;
};

/* A result: column names ('#' before a number) and rows of text. */
struct rows {
	int		 rw_ncols;
	const char	*rw_cols[REPORT_COLS];
	char		**rw_cells;
	size_t		 rw_n;
};

const char	*cell(const struct rows *, size_t, int);
void		 rows_free(struct rows *);
void		 report_query(struct report *, const char *, struct rows *);
void		 print_html(struct report *, const struct rows *);

#endif
