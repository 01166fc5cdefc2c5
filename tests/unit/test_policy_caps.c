/*
 * Unit tests of bandwidth caps and quotas in the engine: the calendar
 * periods quotas count in, with fixed clocks in fixed time zones (DST
 * days of 23 and 25 hours, weeks from Monday, month ends, leap February,
 * half-hour zones, the repeated hour); byte counts with units; and which
 * cap or quota a user is under (own, strictest group, system groups,
 * default), compiled from a real SQLite policy database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fixed_clock.h"
#include "policy_int.h"

/* POSIX rules, so the test needs no tzdata. */
#define TZ_BERLIN	"CET-1CEST,M3.5.0,M10.5.0/3"
#define TZ_INDIA	"IST-5:30"

static void
in_zone(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static void
period_is(enum policy_period per, time_t now, time_t want_start,
    time_t want_end)
{
	time_t	 start, end;

	if (policy_period_bounds(per, now, &start, &end) != 0)
		fail_msg("%s at %lld: failed", policy_period_name(per),
		    (long long)now);
	if (start != want_start || end != want_end)
		fail_msg("%s at %lld: [%lld, %lld), not [%lld, %lld)",
		    policy_period_name(per), (long long)now, (long long)start,
		    (long long)end, (long long)want_start, (long long)want_end);
}

static void
test_days(void **state)
{
	(void)state;
	in_zone(TZ_BERLIN);
	/* An ordinary day: local midnight is 23:00 UTC in winter. */
	period_is(POLICY_PERIOD_DAY, utc(2026, 11, 27, 10, 0, 0),
	    utc(2026, 11, 26, 23, 0, 0), utc(2026, 11, 27, 23, 0, 0));
	/* The first second is in, the last second is in, the end is not. */
	period_is(POLICY_PERIOD_DAY, utc(2026, 11, 26, 23, 0, 0),
	    utc(2026, 11, 26, 23, 0, 0), utc(2026, 11, 27, 23, 0, 0));
	period_is(POLICY_PERIOD_DAY, utc(2026, 11, 27, 22, 59, 59),
	    utc(2026, 11, 26, 23, 0, 0), utc(2026, 11, 27, 23, 0, 0));
	period_is(POLICY_PERIOD_DAY, utc(2026, 11, 27, 23, 0, 0),
	    utc(2026, 11, 27, 23, 0, 0), utc(2026, 11, 28, 23, 0, 0));
	/* Summer time begins: a day of 23 hours. */
	period_is(POLICY_PERIOD_DAY, utc(2026, 3, 29, 10, 0, 0),
	    utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 22, 0, 0));
	/* And ends: 25 hours. */
	period_is(POLICY_PERIOD_DAY, utc(2026, 10, 25, 12, 0, 0),
	    utc(2026, 10, 24, 22, 0, 0), utc(2026, 10, 25, 23, 0, 0));
	in_zone("UTC0");
	period_is(POLICY_PERIOD_DAY, utc(2026, 11, 27, 10, 0, 0),
	    utc(2026, 11, 27, 0, 0, 0), utc(2026, 11, 28, 0, 0, 0));
}

static void
test_weeks_months(void **state)
{
	(void)state;
	in_zone(TZ_BERLIN);
	/* Sunday belongs to the week that began on Monday. */
	period_is(POLICY_PERIOD_WEEK, utc(2026, 11, 29, 9, 0, 0),
	    utc(2026, 11, 22, 23, 0, 0), utc(2026, 11, 29, 23, 0, 0));
	period_is(POLICY_PERIOD_WEEK, utc(2026, 11, 29, 22, 59, 59),
	    utc(2026, 11, 22, 23, 0, 0), utc(2026, 11, 29, 23, 0, 0));
	period_is(POLICY_PERIOD_WEEK, utc(2026, 11, 29, 23, 0, 0),
	    utc(2026, 11, 29, 23, 0, 0), utc(2026, 12, 6, 23, 0, 0));
	/* A week across the end of summer time: 7 days and an hour. */
	period_is(POLICY_PERIOD_WEEK, utc(2026, 10, 24, 12, 0, 0),
	    utc(2026, 10, 18, 22, 0, 0), utc(2026, 10, 25, 23, 0, 0));
	/* Months: the year's last second, then the new year. */
	period_is(POLICY_PERIOD_MONTH, utc(2026, 12, 31, 22, 59, 59),
	    utc(2026, 11, 30, 23, 0, 0), utc(2026, 12, 31, 23, 0, 0));
	period_is(POLICY_PERIOD_MONTH, utc(2026, 12, 31, 23, 0, 0),
	    utc(2026, 12, 31, 23, 0, 0), utc(2027, 1, 31, 23, 0, 0));
	/* A leap February, and a month that starts in winter time. */
	period_is(POLICY_PERIOD_MONTH, utc(2028, 2, 15, 0, 0, 0),
	    utc(2028, 1, 31, 23, 0, 0), utc(2028, 2, 29, 23, 0, 0));
	period_is(POLICY_PERIOD_MONTH, utc(2026, 3, 30, 0, 0, 0),
	    utc(2026, 2, 28, 23, 0, 0), utc(2026, 3, 31, 22, 0, 0));
}

static void
test_hours(void **state)
{
	(void)state;
	/* A zone half an hour off: hours turn at :30 UTC. */
	in_zone(TZ_INDIA);
	period_is(POLICY_PERIOD_HOUR, utc(2026, 11, 27, 10, 45, 0),
	    utc(2026, 11, 27, 10, 30, 0), utc(2026, 11, 27, 11, 30, 0));
	period_is(POLICY_PERIOD_HOUR, utc(2026, 11, 27, 10, 29, 59),
	    utc(2026, 11, 27, 9, 30, 0), utc(2026, 11, 27, 10, 30, 0));
	/* 02:00-03:00 comes twice at the end of summer time: two hours. */
	in_zone(TZ_BERLIN);
	period_is(POLICY_PERIOD_HOUR, utc(2026, 10, 25, 0, 30, 0),
	    utc(2026, 10, 25, 0, 0, 0), utc(2026, 10, 25, 1, 0, 0));
	period_is(POLICY_PERIOD_HOUR, utc(2026, 10, 25, 1, 30, 0),
	    utc(2026, 10, 25, 1, 0, 0), utc(2026, 10, 25, 2, 0, 0));
}

static void
bytes_are(const char *text, uint64_t want)
{
	uint64_t	 n;

	if (policy_bytes_parse(text, &n) != 0)
		fail_msg("'%s' refused", text);
	if (n != want)
		fail_msg("'%s' is %llu, not %llu", text, (unsigned long long)n,
		    (unsigned long long)want);
}

static void
formats_as(uint64_t n, const char *want)
{
	char	 out[16];

	policy_bytes_format(n, out, sizeof(out));
	if (strcmp(out, want) != 0)
		fail_msg("%llu shows as '%s', not '%s'", (unsigned long long)n,
		    out, want);
}

static void
test_bytes(void **state)
{
	uint64_t	 n;
	size_t		 i;
	static const char *const bad[] = { "", "M", "-1M", "10X", "10MM",
	    "10 M", "1.5.5G", "nan", "99999999999T", "1e3", "0x10", "1e3M" };

	(void)state;
	bytes_are("0", 0);
	bytes_are("512", 512);
	bytes_are("10k", 10240);
	bytes_are("10M", 10485760);
	bytes_are("10MB", 10485760);
	bytes_are("1.5G", 1610612736);
	bytes_are("2T", 2199023255552ULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (policy_bytes_parse(bad[i], &n) == 0)
			fail_msg("'%s' accepted as %llu", bad[i],
			    (unsigned long long)n);
	formats_as(512, "512");
	formats_as(10485760, "10M");
	formats_as(1610612736, "1.50G");
	formats_as(5368709120ULL, "5G");
	formats_as(1048779, "1.00M");
}

static struct policy *
compile(const char *sql)
{
	struct policy	*p;
	sqlite3		*db;
	char		*cause = NULL;

	if ((db = policy_db_open(":memory:", POLICY_DB_CREATE, &cause)) ==
	    NULL)
		fail_msg("%s", cause);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s", sqlite3_errmsg(db));
	if ((p = policy_compile(db, NULL, &cause)) == NULL)
		fail_msg("%s", cause);
	sqlite3_close(db);
	return (p);
}

struct expect {
	const char	*user;
	const char	*groups[2];	/* system groups */
	uint64_t	 bw;
	const char	*bw_from;
	uint64_t	 group_bw;
	const char	*group;
	uint64_t	 quota;
	enum policy_period period;
	const char	*quota_from;
};

static void
test_resolution(void **state)
{
	static const char sql[] =
	    "INSERT INTO groups (name, bandwidth, quota, quota_period) VALUES "
	    "('staff', 104857600, 53687091200, 'month'), "
	    "('kids', 1048576, 1073741824, 'day'), ('plain', NULL, NULL, NULL);"
	    "INSERT INTO users (name, bandwidth, quota, quota_period) VALUES "
	    "('alice', 10485760, 5368709120, 'day'), ('bob', NULL, NULL, NULL),"
	    "('carol', NULL, NULL, NULL);"
	    "INSERT INTO user_groups SELECT u.id, g.id FROM users u, groups g "
	    "WHERE (u.name = 'alice' AND g.name = 'staff') OR "
	    "(u.name = 'bob' AND g.name IN ('staff', 'kids', 'plain'));"
	    "INSERT INTO settings (key, value) VALUES ('bandwidth', '1048576'),"
	    "('quota', '1610612736'), ('quota_period', 'week');";
	static const struct expect want[] = {
		/* Their own, and their group's cap as well. */
		{ "alice", { NULL }, 10485760, "user alice", 104857600,
		    "staff", 5368709120ULL, POLICY_PERIOD_DAY, "user alice" },
		/* The lowest group cap; the strictest quota per second. */
		{ "bob", { NULL }, 1048576, "default", 1048576, "kids",
		    1073741824, POLICY_PERIOD_DAY, "groups of user bob" },
		{ "carol", { NULL }, 1048576, "default", 0, NULL,
		    1610612736, POLICY_PERIOD_WEEK, "default" },
		/* System groups match by name. */
		{ "zed", { "staff", NULL }, 1048576, "default", 104857600,
		    "staff", 53687091200ULL, POLICY_PERIOD_MONTH,
		    "group staff" },
		{ "carol", { "kids", "staff" }, 1048576, "default", 1048576,
		    "kids", 1073741824, POLICY_PERIOD_DAY, "group kids" },
		{ NULL, { NULL }, 0, "", 0, NULL, 0, POLICY_PERIOD_NONE, "" },
	};
	struct policy		*p;
	struct policy_req	 req;
	struct policy_quota	 q;
	const char		*group;
	char			 from[POLICY_REASON_MAX];
	size_t			 i;

	(void)state;
	p = compile(sql);
	assert_true(policy_has_limits(p));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		memset(&req, 0, sizeof(req));
		req.user = want[i].user;
		req.groups = want[i].groups;
		req.ngroups = want[i].groups[1] ? 2 : want[i].groups[0] ? 1 : 0;
		assert_int_equal(policy_user_bandwidth(p, &req, from,
		    sizeof(from)), want[i].bw);
		assert_string_equal(from, want[i].bw_from);
		assert_int_equal(policy_group_bandwidth(p, &req, &group),
		    want[i].group_bw);
		if (want[i].group == NULL)
			assert_null(group);
		else
			assert_string_equal(group, want[i].group);
		assert_int_equal(policy_quota(p, &req, &q, from, sizeof(from)),
		    want[i].quota > 0);
		assert_int_equal(q.pq_bytes, want[i].quota);
		assert_int_equal(q.pq_period, want[i].period);
		assert_string_equal(from, want[i].quota_from);
	}
	policy_unref(p);

	/* No caps anywhere: nothing to enforce, nothing to look up. */
	p = compile("INSERT INTO users (name) VALUES ('alice');");
	assert_false(policy_has_limits(p));
	policy_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days),
		cmocka_unit_test(test_weeks_months),
		cmocka_unit_test(test_hours),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_resolution),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
