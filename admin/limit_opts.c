/*
 * limit_opts.c: the limit options of socksctl user, group and defaults:
 * one table (option, column or settings key, kind, bounds), each value
 * parsed and bounded with a message that says what is expected, stored
 * in a users or groups row, and printed back as the option would take it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "admin.h"
#include "limit_opts.h"

const struct limit_def limit_defs[] = {
	{ "--max-sessions", "max_sessions", LK_COUNT, 0, 1000000000 },
	{ "--rate", "rate", LK_RATE, 0, 1000000 },
	{ "--burst", "burst", LK_COUNT, 1, 1000000 },
	{ "--bandwidth", "bandwidth", LK_BYTES, 1024, 1099511627776.0 },
	{ "--quota", "quota", LK_QUOTA, 0, 1125899906842624.0 },
	{ "--client-rate", "client_rate", LK_RATE, 0, 1000000 },
	{ "--client-burst", "client_burst", LK_COUNT, 1, 1000000 },
};
_Static_assert(sizeof(limit_defs) / sizeof(limit_defs[0]) == LIMIT_NALL,
    "LIMIT_NALL counts limit_defs");

static __attribute__((noreturn)) void
limit_usage(const struct limit_def *ld, const char *text)
{
	char	 lo[16], hi[16];

	policy_bytes_format((uint64_t)ld->ld_min, lo, sizeof(lo));
	policy_bytes_format((uint64_t)ld->ld_max, hi, sizeof(hi));
	switch (ld->ld_kind) {
	case LK_RATE:
		ctl_usage_error("%s '%s': expected sessions a second, above 0 "
		    "and at most %.0f, or none", ld->ld_opt, text, ld->ld_max);
	case LK_BYTES:
		ctl_usage_error("%s '%s': expected bytes a second from %s to "
		    "%s, with K, M, G or T (x1024), e.g. 10M, or none",
		    ld->ld_opt, text, lo, hi);
	case LK_QUOTA:
		ctl_usage_error("%s '%s': expected BYTES/PERIOD with BYTES up "
		    "to %s (K, M, G, T: x1024) and PERIOD hour, day, week or "
		    "month, e.g. 5G/day, or none", ld->ld_opt, text, hi);
	default:
		ctl_usage_error("%s '%s': expected a count from %.0f to %.0f, "
		    "or none", ld->ld_opt, text, ld->ld_min, ld->ld_max);
	}
}

/* An option's value within its bounds, or "none" (-1). */
static double
limit_parse(const struct limit_def *ld, const char *text,
    const char **period)
{
	char		 bytes[32];
	const char	*slash;
	uint64_t	 n;
	char		*ep;
	double		 v;

	if (strcmp(text, "none") == 0)
		return (-1);
	errno = 0;
	switch (ld->ld_kind) {
	case LK_QUOTA:
		if ((slash = strchr(text, '/')) == NULL ||
		    (size_t)(slash - text) >= sizeof(bytes) ||
		    policy_period_parse(slash + 1) == POLICY_PERIOD_NONE)
			limit_usage(ld, text);
		memcpy(bytes, text, (size_t)(slash - text));
		bytes[slash - text] = '\0';
		*period = policy_period_name(policy_period_parse(slash + 1));
		if (policy_bytes_parse(bytes, &n) == -1)
			limit_usage(ld, text);
		v = (double)n;
		break;
	case LK_BYTES:
		/* "10M/s" reads as it is meant. */
		slash = strchr(text, '/');
		if (slash != NULL && strcmp(slash, "/s") != 0)
			limit_usage(ld, text);
		snprintf(bytes, sizeof(bytes), "%.*s", slash ? (int)(slash -
		    text) : (int)strlen(text), text);
		if (policy_bytes_parse(bytes, &n) == -1)
			limit_usage(ld, text);
		v = (double)n;
		break;
	case LK_RATE:
		v = strtod(text, &ep);
		if (text[0] < '0' || text[0] > '9' || *ep != '\0' ||
		    errno != 0 || !(v > 0))
			limit_usage(ld, text);
		break;
	default:
		v = (double)strtoll(text, &ep, 10);
		if (text[0] < '0' || text[0] > '9' || *ep != '\0' ||
		    errno != 0)
			limit_usage(ld, text);
		break;
	}
	if (v < ld->ld_min || v > ld->ld_max)
		limit_usage(ld, text);
	return (v);
}

/* 1 when opt is one of the first n limit options (value consumed). */
int
limit_option(struct args *a, const char *opt, struct limit_opts *lo,
    size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (strcmp(opt, limit_defs[i].ld_opt) == 0) {
			lo->lo_value[i] = limit_parse(&limit_defs[i],
			    args_value(a, opt), &lo->lo_period[i]);
			lo->lo_set[i] = 1;
			return (1);
		}
	}
	return (0);
}

/* Binds a limit: NULL for none, an integer where it is one ("5", not "5.0"). */
void
limit_bind(sqlite3_stmt *st, int col, double v)
{
	if (v >= 0 && v == (double)(int64_t)v)
		sqlite3_bind_int64(st, col, (int64_t)v);
	else if (v >= 0)
		sqlite3_bind_double(st, col, v);
}

/* Writes the limits given in lo to row id of table (users or groups). */
void
limit_store(struct ctl *ctl, const char *table, int64_t id,
    const struct limit_opts *lo)
{
	sqlite3_stmt	*st;
	char		 sql[128];
	size_t		 i;

	for (i = 0; i < LIMIT_NUSER; i++) {
		if (!lo->lo_set[i])
			continue;
		snprintf(sql, sizeof(sql), "UPDATE %s SET %s = ?1%s WHERE id = "
		    "?2", table, limit_defs[i].ld_name,
		    limit_defs[i].ld_kind == LK_QUOTA ? ", quota_period = ?3" :
		    "");
		st = sql_prepare(ctl, sql);
		limit_bind(st, 1, lo->lo_value[i]);
		sqlite3_bind_int64(st, 2, id);
		if (lo->lo_value[i] >= 0 && lo->lo_period[i] != NULL)
			sqlite3_bind_text(st, 3, lo->lo_period[i], -1,
			    SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			ctl_sql_error(ctl, sql);
		sqlite3_finalize(st);
	}
}

/*
 * Column col of st as the option would take it ("10M", "5G/day"; a quota's
 * period in column col + 1), or "none".
 */
void
limit_text(const struct limit_def *ld, sqlite3_stmt *st, int col, char *out,
    size_t outlen)
{
	char	 n[16];

	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		snprintf(out, outlen, "none");
		return;
	}
	if (ld->ld_kind != LK_BYTES && ld->ld_kind != LK_QUOTA) {
		snprintf(out, outlen, "%s", sqlite3_column_text(st, col));
		return;
	}
	policy_bytes_format((uint64_t)sqlite3_column_int64(st, col), n,
	    sizeof(n));
	if (ld->ld_kind == LK_QUOTA)
		snprintf(out, outlen, "%s/%s", n,
		    sqlite3_column_text(st, col + 1) ?
		    (const char *)sqlite3_column_text(st, col + 1) : "?");
	else
		snprintf(out, outlen, "%s/s", n);
}
