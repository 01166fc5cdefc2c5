/*
 * Unit tests of a fleet's quota accounting (gatewayd/account/
 * quota_fleet.c) with a fixed clock and the leaser's side played by the
 * test: before the store's first answer a node may use one grant; then
 * no more than it holds; a request the store did not answer waits for
 * the next connection; a short answer (the quota all leased) stops the
 * node at what it holds, and nothing more is asked in that period; a new period starts with nothing held; what a
 * node held before a restart comes back from its own rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "fixed_clock.h"
#include "policy.h"

#include "account/account.h"

#define MIB	(1024 * 1024)

static void
test_a_node_holds_to_its_leases(void **state)
{
	struct policy_quota	 q = { 16 * MIB, POLICY_PERIOD_DAY };
	struct lease_req	 r;
	struct account		*a;
	time_t			 now = utc(2026, 12, 2, 10, 0, 0);
	time_t			 day = utc(2026, 12, 2, 0, 0, 0);
	time_t			 next = utc(2026, 12, 3, 0, 0, 1);

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	quota_fleet_on();
	assert_non_null(a = account_get("alice"));
	/* Before any answer: one grant (a sixteenth of 16 MiB, 1 MiB). */
	assert_int_equal(quota_account_admit(a, &q, now), 0);
	assert_int_equal(quota_account_grant(a, &q, 4 * MIB, now), MIB);
	assert_int_equal(quota_account_admit(a, &q, now), -1);
	/* The leaser is asked for enough to be four grants ahead... */
	assert_int_equal(quota_lease_next(&r), 1);
	assert_string_equal(r.lr_user, "alice");
	assert_int_equal(r.lr_period, POLICY_PERIOD_DAY);
	assert_int_equal(r.lr_start, (int64_t)day);
	assert_int_equal(r.lr_quota, 16 * MIB);
	assert_int_equal(r.lr_want, 5 * MIB);
	/* ...which the store grants: up to 5 MiB in all now. */
	quota_lease_done(&r, 5 * MIB, 1);
	assert_int_equal(quota_lease_next(&r), 0);
	assert_int_equal(quota_account_admit(a, &q, now), 0);
	assert_int_equal(quota_account_grant(a, &q, 4 * MIB, now), 4 * MIB);
	/* The store does not answer: the request waits, nothing more, but
	 * the user is not out of quota (its other sessions run on). */
	assert_int_equal(quota_lease_next(&r), 1);
	assert_int_equal(r.lr_want, 4 * MIB);
	quota_lease_done(&r, 0, 0);
	assert_int_equal(quota_account_grant(a, &q, MIB, now), 0);
	assert_int_equal(quota_account_admit(a, &q, now), -1);
	/* The next connection: the quota is nearly all leased by others.
	 * A short answer is final for the period: nothing more is asked. */
	assert_int_equal(quota_lease_next(&r), 1);
	quota_lease_done(&r, MIB / 2, 1);
	assert_int_equal(quota_account_grant(a, &q, MIB, now), MIB / 2);
	assert_int_equal(quota_account_admit(a, &q, now), -1);
	assert_int_equal(quota_account_used(a, POLICY_PERIOD_DAY),
	    5 * MIB + MIB / 2);
	assert_int_equal(quota_lease_next(&r), 0);
	/* A new day: nothing held, one grant before the store answers. */
	assert_int_equal(quota_account_admit(a, &q, next), 0);
	assert_int_equal(quota_account_grant(a, &q, 4 * MIB, next), MIB);
	/*
	 * A restart's read-back: this node's row for the day. Without an
	 * audit_db its usage before the restart is unknown: all it held
	 * counts as used, never relayed twice.
	 */
	quota_lease_loaded("alice", POLICY_PERIOD_DAY,
	    (int64_t)utc(2026, 12, 3, 0, 0, 0), 5 * MIB, next);
	assert_int_equal(quota_account_used(a, POLICY_PERIOD_DAY), 5 * MIB);
	assert_int_equal(quota_account_grant(a, &q, 8 * MIB, next), 0);
	/* Rows of another period are history. */
	quota_lease_loaded("alice", POLICY_PERIOD_DAY, (int64_t)day, 16 * MIB,
	    next);
	assert_int_equal(quota_account_used(a, POLICY_PERIOD_DAY), 5 * MIB);
	while (quota_lease_next(&r))
		quota_lease_done(&r, 0, 1);
	account_put(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_node_holds_to_its_leases),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
