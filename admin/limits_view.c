/*
 * limits_view.c: the bandwidth caps and quota a user is under, and what
 * it has used of the quota, as socksctl prints them (user list and show,
 * explain). The compiled policy resolves them, exactly as gatewayd does;
 * usage is what gatewayd last wrote to the audit database (at most a
 * second behind).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "admin.h"
#include "conf.h"

struct policy *
ctl_policy(struct ctl *ctl)
{
	struct policy_options	 opts;
	struct policy		*p;
	char			*cause = NULL;

	memset(&opts, 0, sizeof(opts));
	opts.geoip_db = ctl->ctl_conf->c_geoip_db;
	opts.geoip_path = ctl->ctl_conf->c_geoip_path;
	if ((p = policy_compile(ctl_db(ctl), &opts, &cause)) == NULL)
		ctl_error("%s", cause ? cause : "out of memory");
	return (p);
}

/* The audit database for usage, or NULL when there is none to read. */
sqlite3 *
usage_db_open(struct ctl *ctl)
{
	sqlite3		*db;
	const char	*path = ctl->ctl_conf->c_audit_db;

	if (path == NULL || sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOFOLLOW,
	    NULL) != SQLITE_OK)
		return (NULL);
	sqlite3_busy_timeout(db, 5000);
	return (db);
}

/* Bytes user relayed in the period that started at start; -1: unknown. */
static int64_t
usage_bytes(sqlite3 *db, const char *user, enum policy_period per,
    time_t start)
{
	sqlite3_stmt	*st;
	int64_t		 n = -1;

	if (db == NULL || sqlite3_prepare_v2(db, "SELECT coalesce((SELECT "
	    "bytes FROM usage WHERE user = ?1 AND period = ?2 AND "
	    "period_start = ?3), 0)", -1, &st, NULL) != SQLITE_OK)
		return (-1);
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, policy_period_name(per), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)start);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (n);
}

void
limits_view(const struct policy *p, const struct policy_req *req,
    sqlite3 *audit, struct limits_view *lv)
{
	char		 n[16], m[16], day[32];
	size_t		 len;
	struct tm	 tm;
	time_t		 end;

	memset(lv, 0, sizeof(*lv));
	lv->lv_bandwidth = policy_user_bandwidth(p, req, lv->lv_bw_from,
	    sizeof(lv->lv_bw_from));
	lv->lv_group_bandwidth = policy_group_bandwidth(p, req,
	    &lv->lv_bw_group);
	lv->lv_used = -1;
	if (policy_quota(p, req, &lv->lv_quota, lv->lv_quota_from,
	    sizeof(lv->lv_quota_from)) && policy_period_bounds(
	    lv->lv_quota.pq_period, req->now, &lv->lv_period_start, &end) == 0)
		lv->lv_used = usage_bytes(audit, req->user,
		    lv->lv_quota.pq_period, lv->lv_period_start);

	/* The same facts as text for the tables. */
	snprintf(lv->lv_bw_text, sizeof(lv->lv_bw_text), "none");
	if (lv->lv_bandwidth > 0) {
		policy_bytes_format(lv->lv_bandwidth, n, sizeof(n));
		snprintf(lv->lv_bw_text, sizeof(lv->lv_bw_text), "%s/s%s", n,
		    strcmp(lv->lv_bw_from, "default") == 0 ? " (default)" : "");
	}
	if (lv->lv_group_bandwidth > 0) {
		len = lv->lv_bandwidth > 0 ? strlen(lv->lv_bw_text) : 0;
		policy_bytes_format(lv->lv_group_bandwidth, n, sizeof(n));
		snprintf(lv->lv_bw_text + len, sizeof(lv->lv_bw_text) - len,
		    "%s@%s %s/s", len ? ", " : "", lv->lv_bw_group, n);
	}
	snprintf(lv->lv_quota_text, sizeof(lv->lv_quota_text), "none");
	lv->lv_used_text[0] = '\0';
	if (lv->lv_quota.pq_period == POLICY_PERIOD_NONE)
		return;
	policy_bytes_format(lv->lv_quota.pq_bytes, n, sizeof(n));
	snprintf(lv->lv_quota_text, sizeof(lv->lv_quota_text), "%s/%s%s", n,
	    policy_period_name(lv->lv_quota.pq_period),
	    strcmp(lv->lv_quota_from, "default") == 0 ? " (default)" :
	    strncmp(lv->lv_quota_from, "user ", 5) == 0 ? "" : " (group)");
	if (lv->lv_used < 0) {
		snprintf(lv->lv_used_text, sizeof(lv->lv_used_text),
		    "unknown (no audit_db)");
		return;
	}
	policy_bytes_format((uint64_t)lv->lv_used, m, sizeof(m));
	localtime_r(&lv->lv_period_start, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M", &tm);
	snprintf(lv->lv_used_text, sizeof(lv->lv_used_text),
	    "%s of %s (%.0f%%) since %s", m, n, lv->lv_quota.pq_bytes ?
	    100.0 * (double)lv->lv_used / (double)lv->lv_quota.pq_bytes : 100.0,
	    day);
}
