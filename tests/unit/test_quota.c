/*
 * Unit tests of gatewayd's quota accounting (gatewayd/quota.c) with a
 * fixed clock, against a real SQLite audit database written by auditd's
 * own store (gatewayd/audit_store.c): a quota used up
 * refuses, grants given back make room, the period resets on its calendar
 * boundary in the configured time zone (a day at midnight UTC, a week at
 * Monday 00:00 in Berlin) while longer periods keep counting, bytes of a
 * period that ended are written under that period, and usage read back
 * at start counts against the quota.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <unistd.h>

#include "conf.h"
#include "fixed_clock.h"
#include "policy.h"

#include "account/account.h"
#include "auditd/audit_proto.h"
#include "auditd/auditd.h"

static char	 dir[] = "/tmp/test_quota.XXXXXX";

static int
load_row(const struct am_usage *u, void *arg)
{
	quota_load_row(u, *(time_t *)arg);
	return (0);
}

/*
 * A fresh audit database opened by auditd's store, with the clock at now
 * in time zone tz; returns a connection of the test's own to read it.
 */
static sqlite3 *
audit_db_at(const char *tz, time_t now)
{
	struct conf	*c = conf_default();
	sqlite3		*db;
	char		*cause = NULL, path[64];

	setenv("TZ", tz, 1);
	tzset();
	snprintf(path, sizeof(path), "%s/audit.db", dir);
	unlink(path);
	c->c_audit_db = strdup(path);
	if (store_open(c, &cause) == -1)
		fail_msg("audit store: %s", cause ? cause : "?");
	conf_unref(c);
	/* Also what makes the accounting keep bytes for the database. */
	quota_persisted_on();
	if (store_usage_rows((int64_t)now, load_row, &now) == -1)
		fail_msg("reading usage");
	if (sqlite3_open(path, &db) != SQLITE_OK)
		fail_msg("%s", path);
	return (db);
}

/* As the proxy's shipper and auditd do it: deltas, written. */
static void
quota_persist(sqlite3 *db, int64_t now_ms)
{
	static uint64_t	 seq;
	struct am_usage	*d;
	size_t		 n;

	(void)db;
	n = quota_collect_usage(&d, (time_t)(now_ms / 1000));
	if (n > 0)
		assert_int_equal(store_usage(d, n, ++seq, now_ms), 0);
	free(d);
}

static void
audit_db_done(sqlite3 *db)
{
	sqlite3_close(db);
	store_close();
}

/* The usage row's bytes, -1 for no row. */
static int64_t
usage(sqlite3 *db, const char *user, const char *period, time_t start)
{
	sqlite3_stmt	*st;
	int64_t		 n = -1;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT bytes FROM usage WHERE "
	    "user = ?1 AND period = ?2 AND period_start = ?3", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)start);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (n);
}

static void
test_day_used_up_then_reset(void **state)
{
	struct policy_quota	 q = { 1000, POLICY_PERIOD_DAY };
	struct account		*qu;
	time_t			 late = utc(2026, 11, 27, 23, 59, 0);
	time_t			 midnight = utc(2026, 11, 28, 0, 0, 0);
	sqlite3			*db;

	(void)state;
	db = audit_db_at("UTC0", late);
	assert_non_null(qu = account_get("dana"));
	assert_int_equal(quota_account_admit(qu, &q, late), 0);
	/* A grant is at least 256 KiB where there is room: all 1000 here. */
	assert_int_equal(quota_account_grant(qu, &q, 600, late), 1000);
	assert_int_equal(quota_account_admit(qu, &q, late), -1);
	/* The session used 600 of it: 400 go back, and admit again. */
	quota_account_release(qu, 400, late);
	assert_int_equal(quota_account_used(qu, POLICY_PERIOD_DAY), 600);
	assert_int_equal(quota_account_admit(qu, &q, late), 0);
	assert_int_equal(quota_account_grant(qu, &q, 500, late), 400);
	quota_account_release(qu, 0, late);
	assert_int_equal(quota_account_admit(qu, &q, late), -1);
	/* One second before midnight still the old day; at midnight, new. */
	assert_int_equal(quota_account_admit(qu, &q, midnight - 1), -1);
	assert_int_equal(quota_account_admit(qu, &q, midnight), 0);
	assert_int_equal(quota_account_used(qu, POLICY_PERIOD_DAY), 0);
	/* The same week and month go on counting. */
	assert_int_equal(quota_account_used(qu, POLICY_PERIOD_WEEK), 1000);
	assert_int_equal(quota_account_used(qu, POLICY_PERIOD_MONTH), 1000);
	assert_int_equal(quota_account_grant(qu, &q, 300, midnight), 1000);
	quota_account_release(qu, 700, midnight);

	/* Written: the old day under its own start, the new one apart. */
	quota_persist(db, (int64_t)midnight * 1000 + 500);
	assert_int_equal(usage(db, "dana", "day", utc(2026, 11, 27, 0, 0, 0)),
	    1000);
	assert_int_equal(usage(db, "dana", "day", midnight), 300);
	assert_int_equal(usage(db, "dana", "hour", utc(2026, 11, 27, 23, 0,
	    0)), 1000);
	assert_int_equal(usage(db, "dana", "week", utc(2026, 11, 23, 0, 0, 0)),
	    1300);
	assert_int_equal(usage(db, "dana", "month", utc(2026, 11, 1, 0, 0, 0)),
	    1300);
	/* Nothing new: nothing written again. */
	quota_persist(db, (int64_t)midnight * 1000 + 1500);
	assert_int_equal(usage(db, "dana", "day", midnight), 300);
	account_put(qu);
	audit_db_done(db);
}

static void
test_grant_given_back_after_midnight(void **state)
{
	struct policy_quota	 q = { 1000, POLICY_PERIOD_DAY };
	struct account		*qu;
	time_t			 late = utc(2026, 11, 27, 23, 59, 30);
	time_t			 midnight = utc(2026, 11, 28, 0, 0, 0);
	sqlite3			*db;

	(void)state;
	db = audit_db_at("UTC0", late);
	assert_non_null(qu = account_get("gus"));
	assert_int_equal(quota_account_admit(qu, &q, late), 0);
	assert_int_equal(quota_account_grant(qu, &q, 10, late), 1000);
	/* A new day begins (another session of gus sees it), then the first
	 * ends having used 300: 700 go back to the day that counted them. */
	assert_int_equal(quota_account_admit(qu, &q, midnight), 0);
	quota_account_release(qu, 0, midnight);
	quota_account_release(qu, 700, late);
	assert_int_equal(quota_account_used(qu, POLICY_PERIOD_DAY), 0);
	assert_int_equal(quota_account_used(qu, POLICY_PERIOD_WEEK), 300);
	quota_persist(db, (int64_t)midnight * 1000 + 10);
	assert_int_equal(usage(db, "gus", "day", utc(2026, 11, 27, 0, 0, 0)),
	    300);
	assert_int_equal(usage(db, "gus", "day", midnight), -1);
	assert_int_equal(usage(db, "gus", "week", utc(2026, 11, 23, 0, 0, 0)),
	    300);
	account_put(qu);
	audit_db_done(db);
}

static void
test_week_from_monday_in_berlin(void **state)
{
	struct policy_quota	 q = { 100, POLICY_PERIOD_WEEK };
	struct account		*qu;
	/* Sunday 23:59:59 CET is 22:59:59 UTC; Monday begins an hour
	 * before midnight UTC. */
	time_t			 sunday = utc(2026, 11, 29, 22, 59, 59);
	sqlite3			*db;

	(void)state;
	db = audit_db_at("CET-1CEST,M3.5.0,M10.5.0/3", sunday);
	assert_non_null(qu = account_get("emil"));
	assert_int_equal(quota_account_admit(qu, &q, sunday), 0);
	assert_int_equal(quota_account_grant(qu, &q, 150, sunday), 100);
	quota_account_release(qu, 0, sunday);
	assert_int_equal(quota_account_admit(qu, &q, sunday), -1);
	assert_int_equal(quota_account_admit(qu, &q, sunday + 1), 0);
	quota_account_release(qu, 0, sunday);
	account_put(qu);
	audit_db_done(db);
}

static void
test_usage_read_back_counts(void **state)
{
	struct policy_quota	 q = { 1000, POLICY_PERIOD_DAY };
	struct account		*qu;
	time_t			 now = utc(2026, 11, 28, 10, 0, 0);
	sqlite3			*db;

	(void)state;
	db = audit_db_at("UTC0", now);
	assert_non_null(qu = account_get("fritz"));
	/* What an earlier run wrote: today's 900, and last week's 5000. */
	assert_int_equal(sqlite3_exec(db, "INSERT INTO usage (user, period, "
	    "period_start, bytes, updated_ms) VALUES ('fritz', 'day', "
	    "1795824000, 900, 0), ('fritz', 'week', 1794787200, 5000, 0)",
	    NULL, NULL, NULL), SQLITE_OK);
	store_usage_rows((int64_t)now, load_row, &now);
	assert_int_equal(quota_account_admit(qu, &q, now), 0);
	assert_int_equal(quota_account_used(qu, POLICY_PERIOD_DAY), 900);
	assert_int_equal(quota_account_used(qu, POLICY_PERIOD_WEEK), 0);
	assert_int_equal(quota_account_grant(qu, &q, 500, now), 100);
	quota_account_release(qu, 0, now);
	account_put(qu);
	audit_db_done(db);
}

/*
 * An account lives as long as somebody needs it: the session that holds
 * it, and quota.c while the user's counts are worth keeping. A user with
 * nothing used this month is forgotten at the next collection.
 */
static void
test_account_kept_while_counted(void **state)
{
	struct policy_quota	 q = { 1000, POLICY_PERIOD_DAY };
	struct am_usage		*d;
	struct account		*a;
	time_t			 now = utc(2026, 11, 28, 10, 0, 0);
	time_t			 next_month = utc(2026, 12, 2, 0, 0, 0);
	size_t			 before = account_count();

	(void)state;
	setenv("TZ", "UTC0", 1);	/* periods are local time */
	tzset();
	assert_non_null(a = account_get("hana"));
	assert_ptr_equal(account_get("hana"), a);	/* one a user */
	account_put(a);
	assert_int_equal(account_count(), before + 1);
	assert_int_equal(quota_account_admit(a, &q, now), 0);
	assert_int_equal(quota_account_grant(a, &q, 10, now), 1000);
	quota_account_release(a, 900, now);
	account_put(a);			/* the session is gone */
	/* quota.c keeps it: 100 bytes count this month. */
	quota_collect_usage(&d, now);
	free(d);
	assert_int_equal(account_count(), before + 1);
	/* A new month, nothing used in it: forgotten, and freed. */
	quota_collect_usage(&d, next_month);
	free(d);
	assert_int_equal(account_count(), before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: it counts every account there is. */
		cmocka_unit_test(test_account_kept_while_counted),
		cmocka_unit_test(test_day_used_up_then_reset),
		cmocka_unit_test(test_grant_given_back_after_midnight),
		cmocka_unit_test(test_week_from_monday_in_berlin),
		cmocka_unit_test(test_usage_read_back_counts),
	};

	char	 cmd[64];
	int	 rc;

	if (mkdtemp(dir) == NULL)
		return (1);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return (rc);
}
