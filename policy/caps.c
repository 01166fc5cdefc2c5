/*
 * caps.c: bandwidth caps and byte quotas (schema 0005), compiled into the
 * snapshot and looked up per request, and the calendar periods quotas are
 * counted in.
 *
 * Each cap is one struct policy_cap in p_caps; the maps point at them by
 * index (se_bits: bandwidth, se_flag: quota, -1 for none), so a group's
 * cap and the same cap reached through a member are one entry.
 *
 * Resolution. Bandwidth has two independent levels, both enforced: the
 * user's own cap (else the default), shared by that user's sessions, and
 * one group cap, shared by every session of every member; a member of
 * several capped groups joins the lowest. A quota is counted per user:
 * the user's own, else the strictest of its groups' (lowest bytes per
 * nominal second), else the default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "policy_int.h"

static const char *const period_names[] = {
	[POLICY_PERIOD_NONE] = "none",
	[POLICY_PERIOD_HOUR] = "hour",
	[POLICY_PERIOD_DAY] = "day",
	[POLICY_PERIOD_WEEK] = "week",
	[POLICY_PERIOD_MONTH] = "month",
};

/* Nominal lengths, only to compare quotas of different periods. */
static const double period_seconds[] = {
	[POLICY_PERIOD_NONE] = 1,
	[POLICY_PERIOD_HOUR] = 3600,
	[POLICY_PERIOD_DAY] = 86400,
	[POLICY_PERIOD_WEEK] = 7 * 86400,
	[POLICY_PERIOD_MONTH] = 30.436875 * 86400,
};

const char *
policy_period_name(enum policy_period per)
{
	return (per <= POLICY_PERIOD_MONTH ? period_names[per] : "?");
}

enum policy_period
policy_period_parse(const char *s)
{
	int	 i;

	for (i = POLICY_PERIOD_HOUR; s != NULL && i <= POLICY_PERIOD_MONTH; i++)
		if (strcmp(s, period_names[i]) == 0)
			return ((enum policy_period)i);
	return (POLICY_PERIOD_NONE);
}

/*
 * The period holding `now`, [*start, *end), on the calendar of the local
 * timezone (TZ): hours on the local clock's hour (a zone 30 minutes off
 * UTC has them at :30 UTC), days from local midnight, weeks from Monday,
 * months from the 1st. Days around a DST change are 23 or 25 hours long.
 */
int
policy_period_bounds(enum policy_period per, time_t now, time_t *start,
    time_t *end)
{
	struct tm	 tm, next;
	long		 off;

	if (localtime_r(&now, &tm) == NULL)
		return (-1);
	if (per == POLICY_PERIOD_HOUR) {
		off = tm.tm_gmtoff % 3600;
		*start = now - (((now + off) % 3600) + 3600) % 3600;
		*end = *start + 3600;
		return (0);
	}
	tm.tm_sec = tm.tm_min = tm.tm_hour = 0;
	if (per == POLICY_PERIOD_WEEK)
		tm.tm_mday -= (tm.tm_wday + 6) % 7;
	else if (per == POLICY_PERIOD_MONTH)
		tm.tm_mday = 1;
	else if (per != POLICY_PERIOD_DAY)
		return (-1);
	next = tm;
	tm.tm_isdst = -1;
	if ((*start = mktime(&tm)) == (time_t)-1)
		return (-1);
	if (per == POLICY_PERIOD_DAY)
		next.tm_mday += 1;
	else if (per == POLICY_PERIOD_WEEK)
		next.tm_mday += 7;
	else
		next.tm_mon += 1;
	next.tm_isdst = -1;
	if ((*end = mktime(&next)) == (time_t)-1)
		return (-1);
	return (0);
}

static int
caps_add(struct policy *p, uint64_t value, enum policy_period per,
    const char *group)
{
	struct policy_cap	*c;
	size_t			 cap;

	if (p->p_ncaps == p->p_capscap) {
		cap = p->p_capscap ? p->p_capscap * 2 : 16;
		if ((c = reallocarray(p->p_caps, cap, sizeof(*c))) == NULL)
			return (-1);
		p->p_caps = c;
		p->p_capscap = cap;
	}
	c = &p->p_caps[p->p_ncaps];
	memset(c, 0, sizeof(*c));
	c->pc_value = value;
	c->pc_period = (uint8_t)per;
	if (group != NULL && (c->pc_group = strdup(group)) == NULL)
		return (-1);
	return ((int)p->p_ncaps++);
}

/* Is quota a stricter than quota b (indexes, -1: none)? */
static int
caps_quota_stricter(const struct policy *p, int32_t a, int32_t b)
{
	const struct policy_cap	*x, *y;

	if (a < 0)
		return (0);
	if (b < 0)
		return (1);
	x = &p->p_caps[a];
	y = &p->p_caps[b];
	return ((double)x->pc_value / period_seconds[x->pc_period] <
	    (double)y->pc_value / period_seconds[y->pc_period]);
}

static int
caps_bw_stricter(const struct policy *p, int32_t a, int32_t b)
{
	return (a >= 0 && (b < 0 ||
	    p->p_caps[a].pc_value < p->p_caps[b].pc_value));
}

/*
 * Reads one row (name, bandwidth, quota, quota_period) into map; groups'
 * caps carry the group's name, the key their sessions share.
 */
static int
caps_row(struct policy *p, sqlite3_stmt *st, struct strmap *map, int group)
{
	struct strmap_entry	*e;
	const char		*name = (const char *)sqlite3_column_text(st, 0);
	int			 i;

	if (strmap_put(map, name, &e) == -1)
		return (-1);
	e->se_bits = e->se_flag = -1;
	if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
		if ((i = caps_add(p, (uint64_t)sqlite3_column_int64(st, 1),
		    POLICY_PERIOD_NONE, group ? name : NULL)) == -1)
			return (-1);
		e->se_bits = i;
	}
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		if ((i = caps_add(p, (uint64_t)sqlite3_column_int64(st, 2),
		    policy_period_parse((const char *)
		    sqlite3_column_text(st, 3)), NULL)) == -1)
			return (-1);
		e->se_flag = i;
	}
	return (0);
}

/* The strictest database group of each member, by the groups' entries. */
static int
caps_membership(struct policy *p, sqlite3_stmt *st)
{
	const struct strmap_entry	*g;
	struct strmap_entry		*e;
	const char			*user;

	user = (const char *)sqlite3_column_text(st, 0);
	if ((g = strmap_get(&p->p_group_caps,
	    (const char *)sqlite3_column_text(st, 1))) == NULL)
		return (0);
	if (strmap_get(&p->p_usergroup_caps, user) == NULL) {
		if (strmap_put(&p->p_usergroup_caps, user, &e) == -1)
			return (-1);
		e->se_bits = e->se_flag = -1;
	} else if (strmap_put(&p->p_usergroup_caps, user, &e) == -1)
		return (-1);
	if (caps_bw_stricter(p, g->se_bits, e->se_bits))
		e->se_bits = g->se_bits;
	if (caps_quota_stricter(p, g->se_flag, e->se_flag))
		e->se_flag = g->se_flag;
	return (0);
}

/*
 * Compiles the caps inside the snapshot's read transaction: 0, or -1 with
 * *failed_sql the statement that failed (NULL: out of memory).
 */
int
caps_compile(struct policy *p, sqlite3 *db, const char **failed_sql)
{
	static const char *const sql[] = {
		"SELECT name, bandwidth, quota, quota_period FROM groups "
		    "WHERE bandwidth IS NOT NULL OR quota IS NOT NULL",
		"SELECT name, bandwidth, quota, quota_period FROM users "
		    "WHERE bandwidth IS NOT NULL OR quota IS NOT NULL",
		"SELECT u.name, g.name FROM users u JOIN user_groups ug ON "
		    "ug.user_id = u.id JOIN groups g ON g.id = ug.group_id "
		    "WHERE g.bandwidth IS NOT NULL OR g.quota IS NOT NULL",
		"SELECT 'default', (SELECT value FROM settings WHERE key = "
		    "'bandwidth'), (SELECT value FROM settings WHERE key = "
		    "'quota'), (SELECT value FROM settings WHERE key = "
		    "'quota_period')",
	};
	const struct strmap_entry	*d;
	struct strmap			 defaults;
	sqlite3_stmt			*st;
	size_t				 i;
	int				 rc, r = 0;

	p->p_default_bw = p->p_default_quota = -1;
	memset(&defaults, 0, sizeof(defaults));
	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) !=
		    SQLITE_OK) {
			*failed_sql = sql[i];
			strmap_free(&defaults);
			return (-1);
		}
		while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (i == 0)
				r = caps_row(p, st, &p->p_group_caps, 1);
			else if (i == 1)
				r = caps_row(p, st, &p->p_user_caps, 0);
			else if (i == 2)
				r = caps_membership(p, st);
			else
				r = caps_row(p, st, &defaults, 0);
		}
		sqlite3_finalize(st);
		if (r == -1) {
			*failed_sql = NULL;
			strmap_free(&defaults);
			return (-1);
		}
		if (rc != SQLITE_DONE) {
			*failed_sql = sql[i];
			strmap_free(&defaults);
			return (-1);
		}
	}
	if ((d = strmap_get(&defaults, "default")) != NULL) {
		p->p_default_bw = d->se_bits;
		/* A default quota without its period is no quota. */
		if (d->se_flag >= 0 &&
		    p->p_caps[d->se_flag].pc_period != POLICY_PERIOD_NONE)
			p->p_default_quota = d->se_flag;
	}
	strmap_free(&defaults);
	return (0);
}

void
caps_free(struct policy *p)
{
	size_t	 i;

	for (i = 0; i < p->p_ncaps; i++)
		free(p->p_caps[i].pc_group);
	free(p->p_caps);
	strmap_free(&p->p_user_caps);
	strmap_free(&p->p_usergroup_caps);
	strmap_free(&p->p_group_caps);
}

int
caps_any(const struct policy *p)
{
	return (p->p_ncaps > 0);
}

/* The user's own cap, else the default: bytes a second, 0 for none. */
uint64_t
policy_user_bandwidth(const struct policy *p, const struct policy_req *req,
    char *from, size_t fromlen)
{
	const struct strmap_entry	*e;

	if (from != NULL && fromlen > 0)
		from[0] = '\0';
	if (req->user == NULL || p->p_ncaps == 0)
		return (0);
	if ((e = strmap_get(&p->p_user_caps, req->user)) != NULL &&
	    e->se_bits >= 0) {
		if (from != NULL)
			snprintf(from, fromlen, "user %s", req->user);
		return (p->p_caps[e->se_bits].pc_value);
	}
	if (p->p_default_bw < 0)
		return (0);
	if (from != NULL)
		snprintf(from, fromlen, "default");
	return (p->p_caps[p->p_default_bw].pc_value);
}

/*
 * The group cap the request's sessions share: bytes a second, 0 for none;
 * *group is the group's name (valid while the snapshot is).
 */
uint64_t
policy_group_bandwidth(const struct policy *p, const struct policy_req *req,
    const char **group)
{
	const struct strmap_entry	*e;
	int32_t				 best = -1;
	size_t				 i;

	*group = NULL;
	if (req->user == NULL || p->p_ncaps == 0)
		return (0);
	if ((e = strmap_get(&p->p_usergroup_caps, req->user)) != NULL)
		best = e->se_bits;
	for (i = 0; i < req->ngroups; i++)
		if ((e = strmap_get(&p->p_group_caps, req->groups[i])) !=
		    NULL && caps_bw_stricter(p, e->se_bits, best))
			best = e->se_bits;
	if (best < 0)
		return (0);
	*group = p->p_caps[best].pc_group;
	return (p->p_caps[best].pc_value);
}

/* The request's user's quota: 0 and out zeroed for none. */
int
policy_quota(const struct policy *p, const struct policy_req *req,
    struct policy_quota *out, char *from, size_t fromlen)
{
	const struct strmap_entry	*e;
	int32_t				 best = -1;
	size_t				 i;

	memset(out, 0, sizeof(*out));
	if (from != NULL && fromlen > 0)
		from[0] = '\0';
	if (req->user == NULL || p->p_ncaps == 0)
		return (0);
	if ((e = strmap_get(&p->p_user_caps, req->user)) != NULL &&
	    e->se_flag >= 0) {
		best = e->se_flag;
		if (from != NULL)
			snprintf(from, fromlen, "user %s", req->user);
	} else {
		if ((e = strmap_get(&p->p_usergroup_caps, req->user)) !=
		    NULL && e->se_flag >= 0) {
			best = e->se_flag;
			if (from != NULL)
				snprintf(from, fromlen, "groups of user %s",
				    req->user);
		}
		for (i = 0; i < req->ngroups; i++) {
			e = strmap_get(&p->p_group_caps, req->groups[i]);
			if (e != NULL &&
			    caps_quota_stricter(p, e->se_flag, best)) {
				best = e->se_flag;
				if (from != NULL)
					snprintf(from, fromlen, "group %s",
					    req->groups[i]);
			}
		}
		if (best < 0 && (best = p->p_default_quota) >= 0 &&
		    from != NULL)
			snprintf(from, fromlen, "default");
	}
	if (best < 0)
		return (0);
	out->pq_bytes = p->p_caps[best].pc_value;
	out->pq_period = (enum policy_period)p->p_caps[best].pc_period;
	return (1);
}

/*
 * A byte count as operators write it: digits with an optional fraction
 * and unit K, M, G or T (powers of 1024, as curl --limit-rate counts),
 * optionally followed by B. 0 with *out set, or -1.
 */
int
policy_bytes_parse(const char *text, uint64_t *out)
{
	static const char units[] = "KMGT";
	const char	*u;
	char		*ep;
	double		 v, mult = 1;

	/* Digits and a point only: strtod would also take 1e3 and 0x10. */
	if (text[0] < '0' || text[0] > '9')
		return (-1);
	v = strtod(text, &ep);
	if ((size_t)(ep - text) != strspn(text, "0123456789."))
		return (-1);
	if (*ep != '\0' && (u = strchr(units, *ep & ~0x20)) != NULL) {
		for (mult = 1024; u > units; u--)
			mult *= 1024;
		ep++;
	}
	if (*ep == 'B' || *ep == 'b')
		ep++;
	if (*ep != '\0' || !(v * mult < 9.0e18))
		return (-1);
	*out = (uint64_t)(v * mult + 0.5);
	return (0);
}

/* For people: 10M, 1.46G, 512 (at most 3 significant digits). */
void
policy_bytes_format(uint64_t n, char *out, size_t outlen)
{
	static const char units[] = "KMGT";
	double		 v = (double)n;
	int		 i = -1;

	while (v >= 1024 && i < 3) {
		v /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(out, outlen, "%llu", (unsigned long long)n);
	else if (v == (double)(uint64_t)v)
		snprintf(out, outlen, "%llu%c", (unsigned long long)v, units[i]);
	else
		snprintf(out, outlen, "%.*f%c", v < 10 ? 2 : v < 100 ? 1 : 0, v,
		    units[i]);
}
