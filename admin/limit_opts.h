/*
 * limit_opts.h: the limit options (--max-sessions, --rate, --bandwidth,
 * --quota, ...) that user, group and defaults take: their table, parsing,
 * storing and printing (limit_opts.c).
 */
#ifndef LIMIT_OPTS_H
#define LIMIT_OPTS_H

#include <stddef.h>
#include <stdint.h>

struct args;
struct ctl;
struct sqlite3_stmt;

/*
 * The limit options: the first LIMIT_NUSER are a user's or group's (and
 * their columns); all are defaults (settings keys of the same names).
 */
enum limit_kind {
	LK_COUNT,	/* an integer */
	LK_RATE,	/* sessions a second */
	LK_BYTES,	/* bytes a second, with units */
	LK_QUOTA,	/* bytes/period: columns quota and quota_period */
};
struct limit_def {
	const char	*ld_opt;
	const char	*ld_name;
	enum limit_kind	 ld_kind;
	double		 ld_min, ld_max;
};
extern const struct limit_def limit_defs[];
#define LIMIT_NUSER	5
#define LIMIT_BANDWIDTH	3	/* indexes in limit_defs */
#define LIMIT_QUOTA	4
#define LIMIT_NALL	7	/* rows in limit_defs */
/* One default (settings key ?1) as limit_text reads it, period second. */
#define DEFAULT_LIMIT_SQL	"SELECT CASE WHEN key = 'quota' THEN " \
	"CAST(value AS INTEGER) ELSE value END, (SELECT value FROM settings " \
	"WHERE key = 'quota_period') FROM settings WHERE key = ?1"

/* The limits options gave: lo_value[i] < 0 for "none". */
struct limit_opts {
	int		 lo_set[LIMIT_NALL];
	double		 lo_value[LIMIT_NALL];
	const char	*lo_period[LIMIT_NALL];	/* LK_QUOTA */
};

int	 limit_option(struct args *, const char *, struct limit_opts *, size_t);
void	 limit_bind(struct sqlite3_stmt *, int, double);
void	 limit_store(struct ctl *, const char *, int64_t,
	    const struct limit_opts *);
void	 limit_text(const struct limit_def *, struct sqlite3_stmt *, int,
	    char *, size_t);

#endif
