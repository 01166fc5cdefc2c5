/*
 * Unit tests of authq.c, authd's lock-out and queue, with a clock of the
 * test's own: locks per (user, client) and per client, that cannot be
 * flushed by a flood of other failures; no lock-out for a whole NAT
 * address or for a user everywhere; IPv6 clients by their /64; logins in
 * flight counted and given back; the cleanest client served first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "authd/authq.h"

static const struct authq_limits defaults = {
	.al_pair_limit = 5, .al_prefix_limit = 50, .al_window = 60,
	.al_lockout = 300, .al_inflight = 2, .al_queue = 64,
	.al_prefix6 = 64, .al_expire = 10,
};

/* Queues r; nothing is pushed out. */
static int
push(struct authq *q, const struct auth_request *r, int channel, int64_t now)
{
	struct authq_item	*evicted;
	int			 what = authq_push(q, r, channel, now, &evicted);

	assert_null(evicted);
	return (what);
}

static struct auth_request
login(const char *user, const char *client)
{
	struct auth_request	 r;

	memset(&r, 0, sizeof(r));
	snprintf(r.ar_user, sizeof(r.ar_user), "%s", user);
	snprintf(r.ar_client, sizeof(r.ar_client), "%s", client);
	snprintf(r.ar_pass, sizeof(r.ar_pass), "pw");
	return (r);
}

/* One login through the queue: what it got (RUN, LOCKED...). */
static int
attempt(struct authq *q, const char *user, const char *client,
    enum auth_status pam, int64_t now, int *locks)
{
	struct auth_request	 r = login(user, client);
	struct authq_item	*it;
	int64_t			 wait;
	int			 what, dummy;

	assert_int_equal(push(q, &r, 0, now), AUTHQ_QUEUED);
	what = authq_next(q, now, &it, &wait);
	if (what == AUTHQ_NONE)
		return (what);
	authq_done(q, it, what == AUTHQ_RUN, what == AUTHQ_RUN ? pam :
	    AUTH_LOCKED, now, locks != NULL ? locks : &dummy);
	return (what);
}

static void
test_pair_lock(void **state)
{
	struct authq	*q = authq_new(&defaults);
	int		 i, locks = 0;

	(void)state;
	for (i = 0; i < 5; i++)
		assert_int_equal(attempt(q, "bob", "192.0.2.1", AUTH_FAILED,
		    1000 + i, &locks), AUTHQ_RUN);
	assert_int_equal(locks, AUTHQ_LOCK_PAIR);
	/* The right password too, without PAM. */
	assert_int_equal(attempt(q, "bob", "192.0.2.1", AUTH_OK, 2000, NULL),
	    AUTHQ_LOCKED);
	/* Case does not make another user. */
	assert_int_equal(attempt(q, "BOB", "192.0.2.1", AUTH_OK, 2000, NULL),
	    AUTHQ_LOCKED);
	/* Others behind the same address, and bob elsewhere, go on. */
	assert_int_equal(attempt(q, "alice", "192.0.2.1", AUTH_OK, 2000,
	    NULL), AUTHQ_RUN);
	assert_int_equal(attempt(q, "bob", "198.51.100.1", AUTH_OK, 2000,
	    NULL), AUTHQ_RUN);
	/* Until the lock-out ends. */
	assert_int_equal(attempt(q, "bob", "192.0.2.1", AUTH_OK,
	    1004 + 300 * 1000, NULL), AUTHQ_RUN);
	authq_free(q);
}

/*
 * Old main: 4,096 entries evicted oldest first, so 2,000 failures for
 * random names from fresh addresses reset bob's count.
 */
static void
test_no_flush(void **state)
{
	struct authq	*q = authq_new(&defaults);
	char		 user[32], client[64];
	int		 i;

	(void)state;
	for (i = 0; i < 4; i++)
		attempt(q, "bob", "192.0.2.1", AUTH_FAILED, 1000, NULL);
	for (i = 0; i < 20000; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		snprintf(client, sizeof(client), "10.%d.%d.%d", i >> 16,
		    (i >> 8) & 0xff, i & 0xff);
		attempt(q, user, client, AUTH_FAILED, 2000, NULL);
	}
	assert_true(authq_keys(q) >= 3 * 20000);
	attempt(q, "bob", "192.0.2.1", AUTH_FAILED, 3000, NULL);
	assert_int_equal(attempt(q, "bob", "192.0.2.1", AUTH_OK, 3001, NULL),
	    AUTHQ_LOCKED);
	/* Entries go once their window and lock-out have passed. */
	for (i = 0; i < 200; i++)
		attempt(q, "carol", "192.0.2.9", AUTH_OK, 1000000 + i, NULL);
	assert_true(authq_keys(q) < 3 * 20000);
	authq_free(q);
}

static void
test_prefix_lock_and_ipv6(void **state)
{
	struct authq	*q = authq_new(&defaults);
	char		 user[32], client[64];
	int		 i, locks = 0;

	(void)state;
	/* 50 failures from one /64, each from a new address and name. */
	for (i = 0; i < 50; i++) {
		snprintf(user, sizeof(user), "guess%d", i);
		snprintf(client, sizeof(client), "2001:db8:1:2::%x", i + 1);
		assert_int_equal(attempt(q, user, client, AUTH_FAILED,
		    1000 + i, &locks), AUTHQ_RUN);
	}
	assert_true(locks & AUTHQ_LOCK_PREFIX);
	assert_int_equal(attempt(q, "alice", "2001:db8:1:2:ffff::1", AUTH_OK,
	    2000, NULL), AUTHQ_LOCKED);
	/* The next /64 is another client. */
	assert_int_equal(attempt(q, "alice", "2001:db8:1:3::1", AUTH_OK, 2000,
	    NULL), AUTHQ_RUN);
	authq_free(q);
}

/* One Kerberos token login through the queue, as attempt() does. */
static int
token_attempt(struct authq *q, const char *client, enum auth_status st,
    int64_t now, int *locks)
{
	struct auth_request	 r;
	struct authq_item	*it;
	int64_t			 wait;
	int			 what, dummy;

	memset(&r, 0, sizeof(r));
	snprintf(r.ar_client, sizeof(r.ar_client), "%s", client);
	r.ar_toklen = 3;
	memcpy(r.ar_token, "\x60\x01\x00", 3);
	assert_int_equal(push(q, &r, 0, now), AUTHQ_QUEUED);
	if ((what = authq_next(q, now, &it, &wait)) == AUTHQ_NONE)
		return (what);
	assert_int_equal(authq_request(it, &dummy)->ar_toklen, 3);
	authq_done(q, it, what == AUTHQ_RUN, what == AUTHQ_RUN ? st :
	    AUTH_LOCKED, now, locks != NULL ? locks : &dummy);
	return (what);
}

/*
 * Bad tokens lock their own prefix's Kerberos logins, at the client limit
 * (50), not the pair limit (5): not another prefix, not passwords from
 * the same prefix (an empty user name included), with no delay before;
 * and a ticket whose account PAM refuses is not a failure at all (review
 * of issue 15: every token once shared one counter, so a few addresses
 * delayed every Kerberos login; then five stale tickets behind one NAT
 * address locked a whole office).
 */
static void
test_token_failures(void **state)
{
	struct authq	*q = authq_new(&defaults);
	int		 i, locks = 0;

	(void)state;
	for (i = 0; i < 60; i++)
		assert_int_equal(token_attempt(q, "2001:db8::1", AUTH_REFUSED,
		    1000, &locks), AUTHQ_RUN);
	assert_int_equal(locks, 0);
	for (i = 0; i < 49; i++)
		assert_int_equal(token_attempt(q, "2001:db8::1", AUTH_FAILED,
		    1000, &locks), AUTHQ_RUN);
	assert_int_equal(locks, 0);
	/* No delay after the pair limit: the next one runs at once. */
	assert_int_equal(token_attempt(q, "2001:db8::7", AUTH_FAILED, 1000,
	    &locks), AUTHQ_RUN);
	assert_int_equal(locks, AUTHQ_LOCK_PAIR);
	/* The whole /64's Kerberos logins: locked. */
	assert_int_equal(token_attempt(q, "2001:db8::2", AUTH_OK, 1000, NULL),
	    AUTHQ_LOCKED);
	/* Another prefix: neither locked nor delayed. */
	assert_int_equal(token_attempt(q, "2001:db8:1::1", AUTH_OK, 1000,
	    NULL), AUTHQ_RUN);
	assert_int_equal(token_attempt(q, "192.0.2.9", AUTH_OK, 1000, NULL),
	    AUTHQ_RUN);
	/* Passwords from the locked prefix, an empty user name included. */
	assert_int_equal(attempt(q, "alice", "2001:db8::1", AUTH_OK, 1000,
	    NULL), AUTHQ_RUN);
	assert_int_equal(attempt(q, "", "2001:db8::1", AUTH_FAILED, 1000,
	    NULL), AUTHQ_RUN);
	authq_free(q);
}

/* A user's failures everywhere slow it down, but never lock it out. */
static void
test_user_delay(void **state)
{
	struct authq		*q = authq_new(&defaults);
	struct auth_request	 r;
	struct authq_item	*it;
	char			 client[64];
	int64_t			 wait, now = 1000;
	int			 i, locks;

	(void)state;
	for (i = 0; i < 5; i++) {
		snprintf(client, sizeof(client), "203.0.113.%d", i + 1);
		assert_int_equal(attempt(q, "dave", client, AUTH_FAILED, now,
		    NULL), AUTHQ_RUN);
	}
	/* Past the pair limit across prefixes: 250 ms, then doubling. */
	r = login("dave", "198.51.100.7");
	assert_int_equal(push(q, &r, 0, now), AUTHQ_QUEUED);
	assert_int_equal(authq_next(q, now, &it, &wait), AUTHQ_NONE);
	assert_int_equal(wait, 250);
	assert_int_equal(authq_next(q, now + 250, &it, &wait), AUTHQ_RUN);
	authq_done(q, it, 1, AUTH_FAILED, now + 250, &locks);
	assert_int_equal(locks, 0);
	r = login("dave", "198.51.100.7");
	assert_int_equal(push(q, &r, 0, now + 250), AUTHQ_QUEUED);
	assert_int_equal(authq_next(q, now + 250, &it, &wait), AUTHQ_NONE);
	assert_int_equal(wait, 500);
	assert_int_equal(authq_next(q, now + 750, &it, &wait), AUTHQ_RUN);
	authq_done(q, it, 1, AUTH_OK, now + 750, &locks);
	authq_free(q);
}

/* Ten parallel logins with the right password never lock anyone out. */
static void
test_inflight_given_back(void **state)
{
	struct authq_limits	 lim = defaults;
	struct authq		*q;
	struct auth_request	 r = login("erin", "192.0.2.5");
	struct authq_item	*it[10];
	int64_t			 wait;
	int			 i, n, locks, done = 0;

	(void)state;
	lim.al_inflight = 8;
	q = authq_new(&lim);
	for (i = 0; i < 10; i++)
		assert_int_equal(push(q, &r, 0, 1000), AUTHQ_QUEUED);
	while (done < 10) {
		/* No more than the limit in PAM at once... */
		for (n = 0; authq_next(q, 1000, &it[n], &wait) == AUTHQ_RUN;
		    n++)
			;
		assert_true(n > 0 && n <= 5);
		/* ...and each success is given back. */
		for (i = 0; i < n; i++) {
			authq_done(q, it[i], 1, AUTH_OK, 1000, &locks);
			assert_int_equal(locks, 0);
		}
		done += n;
	}
	authq_free(q);
}

/* Logins from failing clients cannot starve a clean one. */
static void
test_clean_client_first(void **state)
{
	struct authq_limits	 lim = defaults;
	struct authq		*q;
	struct auth_request	 r;
	struct authq_item	*it;
	char			 client[64];
	int64_t			 wait;
	int			 i, locks, channel;

	(void)state;
	lim.al_pair_limit = 0;		/* lock-out off: only the order */
	q = authq_new(&lim);
	for (i = 0; i < 40; i++) {
		snprintf(client, sizeof(client), "10.0.0.%d", i + 1);
		attempt(q, "x", client, AUTH_FAILED, 1000, NULL);
		r = login("x", client);
		assert_int_equal(push(q, &r, 1, 1001), AUTHQ_QUEUED);
	}
	r = login("alice", "192.0.2.77");
	assert_int_equal(push(q, &r, 2, 1002), AUTHQ_QUEUED);
	assert_int_equal(authq_next(q, 1003, &it, &wait), AUTHQ_RUN);
	assert_string_equal(authq_request(it, &channel)->ar_user, "alice");
	assert_int_equal(channel, 2);
	authq_done(q, it, 1, AUTH_OK, 1003, &locks);
	/* Waiting logins expire (the client has given up by then). */
	assert_int_equal(authq_next(q, 1001 + 10 * 1000, &it, &wait),
	    AUTHQ_EXPIRED);
	authq_done(q, it, 0, AUTH_ERROR, 1001 + 10 * 1000, &locks);
	authq_free(q);
}

static void
test_lockout_off(void **state)
{
	struct authq_limits	 lim = defaults;
	struct authq		*q;
	int			 i;

	(void)state;
	lim.al_pair_limit = 0;
	q = authq_new(&lim);
	for (i = 0; i < 200; i++)
		assert_int_equal(attempt(q, "bob", "192.0.2.1", AUTH_FAILED,
		    1000 + i, NULL), AUTHQ_RUN);
	assert_int_equal(attempt(q, "bob", "192.0.2.1", AUTH_OK, 2000, NULL),
	    AUTHQ_RUN);
	authq_free(q);
}

/*
 * A few clients cannot keep everyone else out of the queue: one client
 * waits with at most al_queue logins, and when the queue is full a
 * newcomer takes the place of the newest login of the biggest holder.
 */
static void
test_queue_share(void **state)
{
	struct authq		*q = authq_new(&defaults);
	struct auth_request	 r;
	struct authq_item	*evicted;
	char			 client[64];
	int			 i, k, channel, locks;

	(void)state;
	for (k = 0; k < 64; k++) {
		snprintf(client, sizeof(client), "10.1.0.%d", k + 1);
		r = login("x", client);
		for (i = 0; i < 64; i++)
			assert_int_equal(push(q, &r, k, 1000), AUTHQ_QUEUED);
		/* Its share is full. */
		assert_int_equal(authq_push(q, &r, k, 1000, &evicted),
		    AUTHQ_BUSY);
		assert_null(evicted);
	}
	assert_int_equal(authq_pending(q), 4096);
	r = login("alice", "192.0.2.77");
	assert_int_equal(authq_push(q, &r, 99, 1001, &evicted), AUTHQ_QUEUED);
	assert_non_null(evicted);
	assert_int_equal(authq_request(evicted, &channel)->ar_user[0], 'x');
	authq_done(q, evicted, 0, AUTH_BUSY, 1001, &locks);
	assert_int_equal(authq_pending(q), 4096);
	authq_free(q);
}

static void
test_prefix_text(void **state)
{
	char	 out[64];

	(void)state;
	authq_prefix("2001:db8:aa:bb:1:2:3:4", 64, out, sizeof(out));
	assert_string_equal(out, "2001:db8:aa:bb::/64");
	authq_prefix("2001:db8:aa:bb:1:2:3:4", 56, out, sizeof(out));
	assert_string_equal(out, "2001:db8:aa::/56");
	authq_prefix("192.0.2.1", 64, out, sizeof(out));
	assert_string_equal(out, "192.0.2.1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pair_lock),
		cmocka_unit_test(test_no_flush),
		cmocka_unit_test(test_prefix_lock_and_ipv6),
		cmocka_unit_test(test_token_failures),
		cmocka_unit_test(test_user_delay),
		cmocka_unit_test(test_inflight_given_back),
		cmocka_unit_test(test_clean_client_first),
		cmocka_unit_test(test_lockout_off),
		cmocka_unit_test(test_queue_share),
		cmocka_unit_test(test_prefix_text),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
