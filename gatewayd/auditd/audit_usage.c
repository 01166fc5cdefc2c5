/*
 * audit_usage.c: quota usage in audit.db. The proxy counts users' bytes;
 * auditd adds them to per-period rows (table usage) in one transaction
 * with the proxy's number of the batch (the intake), so a resend after a
 * crash neither loses nor counts bytes twice, and hands a new proxy run
 * the rows of the current periods.
 */
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "log.h"
#include "policy.h"

#include "audit_proto.h"
#include "audit_store_int.h"

/*
 * Adds users' quota bytes to their usage rows, with the proxy's number
 * of this batch, in one transaction: 0, or -1 (kept by the caller).
 */
int
store_usage(const struct am_usage *u, size_t n, uint64_t useq, int64_t now_ms)
{
	static int	 failing;
	sqlite3_stmt	*st = NULL;
	size_t		 i;
	int		 ok = 1;

	if (sqlite3_exec(store.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(store.db, "INSERT INTO usage (user, "
	    "period, period_start, bytes, updated_ms) VALUES (?1, ?2, ?3, "
	    "max(?4, 0), ?5) ON CONFLICT (user, period, period_start) DO "
	    "UPDATE SET bytes = max(bytes + ?4, 0), updated_ms = ?5", -1, &st,
	    NULL) != SQLITE_OK)
		ok = 0;
	for (i = 0; ok && i < n; i++) {
		sqlite3_bind_text(st, 1, u[i].au_user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, policy_period_name(u[i].au_period),
		    -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, u[i].au_start);
		sqlite3_bind_int64(st, 4, u[i].au_bytes);
		sqlite3_bind_int64(st, 5, now_ms);
		ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (!ok || store_intake_set(store.in.si_records, useq,
	    store.in.si_produced) == -1 ||
	    sqlite3_exec(store.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		/* Said once until it works again: this comes every second. */
		if (!failing)
			log_warnx("audit: writing quota usage: %s; kept until "
			    "it can be written", sqlite3_errmsg(store.db));
		failing = 1;
		sqlite3_exec(store.db, "ROLLBACK", NULL, NULL, NULL);
		return (-1);
	}
	if (failing)
		log_warnx("audit: quota usage is written again");
	failing = 0;
	store.in.si_usage = useq;
	return (0);
}

/*
 * The usage rows of the periods current at now (on the calendar of
 * `timezone`, which auditd has too), for a new proxy's counters.
 */
int
store_usage_rows(int64_t now, int (*fn)(const struct am_usage *, void *),
    void *arg)
{
	struct am_usage	 u;
	sqlite3_stmt	*st;
	const char	*user;
	time_t		 start, end;
	int		 per, rc = SQLITE_DONE;

	if (sqlite3_prepare_v2(store.db, "SELECT user, bytes FROM usage WHERE "
	    "period = ?1 AND period_start = ?2", -1, &st, NULL) != SQLITE_OK)
		return (-1);
	for (per = POLICY_PERIOD_HOUR; per <= POLICY_PERIOD_MONTH; per++) {
		if (policy_period_bounds((enum policy_period)per, (time_t)now,
		    &start, &end) == -1)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, policy_period_name((enum policy_period)
		    per), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)start);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			memset(&u, 0, sizeof(u));
			user = (const char *)sqlite3_column_text(st, 0);
			if (user == NULL || strlen(user) >= sizeof(u.au_user))
				continue;
			memcpy(u.au_user, user, strlen(user));
			u.au_period = (uint8_t)per;
			u.au_start = (int64_t)start;
			u.au_bytes = sqlite3_column_int64(st, 1);
			if (fn(&u, arg) == -1) {
				sqlite3_finalize(st);
				return (-1);
			}
		}
		if (rc != SQLITE_DONE)
			break;
	}
	sqlite3_finalize(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}
