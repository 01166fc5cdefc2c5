/*
 * Unit tests of the proxy's copy of authd's cached logins (gatewayd/authd/
 * auth_cache.c): it answers only the user, address and password authd
 * said OK to, never after a refusal emptied it (an OK asked before the
 * emptying included), never once another password was tried for that
 * user and address, never past authd's own expiry, never for a user
 * whose password PAM has just checked anew, and never for a Kerberos
 * login.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/clock.h"
#include "authd/auth.h"

static struct auth_reply	 ok;	/* authd's OK, as the tests need it */

static void
ok_until(int64_t until_ms)
{
	memset(&ok, 0, sizeof(ok));
	ok.ap_status = AUTH_OK;
	snprintf(ok.ap_user, sizeof(ok.ap_user), "alice");
	ok.ap_ngroups = 1;
	snprintf(ok.ap_groups[0], sizeof(ok.ap_groups[0]), "staff");
	ok.ap_cache_until_ms = until_ms;
}

/* find, and on a miss authd's answer rep stored; the result of find. */
static int
login(const char *user, const char *client, const char *pass,
    const struct auth_reply *rep)
{
	struct auth_answer	 ans;
	unsigned char		 digest[32];
	uint64_t		 gen;
	int			 r;

	r = auth_cache_find(user, client, pass, digest, &gen, &ans);
	if (r == 1) {
		assert_string_equal(ans.an_user, "alice");
		assert_int_equal(ans.an_ngroups, 1);
		assert_string_equal(ans.an_groups[0], "staff");
	} else if (r == 0 && rep != NULL)
		auth_cache_answer(user, client, digest, gen, rep);
	return (r);
}

static int
setup(void **state)
{
	(void)state;
	auth_cache_clear();
	ok_until(gw_mono_ms() + 60000);
	return (0);
}

static void
test_answers_what_authd_said(void **state)
{
	(void)state;
	assert_int_equal(login("ALICE", "192.0.2.1", "secret", &ok), 0);
	assert_int_equal(login("ALICE", "192.0.2.1", "secret", NULL), 1);
	assert_int_equal(login("ALICE", "192.0.2.1", "secret", NULL), 1);
	/* Another address, another name: authd is asked. */
	assert_int_equal(login("ALICE", "192.0.2.2", "secret", NULL), 0);
	assert_int_equal(login("alice", "192.0.2.1", "secret", NULL), 0);
}

static void
test_another_password_deletes_the_entry(void **state)
{
	(void)state;
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", &ok), 0);
	assert_int_equal(login("bob", "192.0.2.1", "hunter3", NULL), 0);
	/* The guess went to authd; so does the right password, once. */
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", &ok), 0);
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", NULL), 1);
}

static void
test_an_ok_asked_before_a_refusal_is_not_kept(void **state)
{
	struct auth_answer	 ans;
	unsigned char		 digest[32];
	uint64_t		 gen;

	(void)state;
	assert_int_equal(auth_cache_find("bob", "192.0.2.1", "hunter2",
	    digest, &gen, &ans), 0);
	auth_cache_clear();		/* a refusal arrives first */
	auth_cache_answer("bob", "192.0.2.1", digest, gen, &ok);
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", NULL), 0);
}

static void
test_a_refusal_empties_it(void **state)
{
	(void)state;
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", &ok), 0);
	assert_int_equal(login("carol", "192.0.2.9", "letmein", &ok), 0);
	auth_cache_clear();
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", NULL), 0);
	assert_int_equal(login("carol", "192.0.2.9", "letmein", NULL), 0);
}

static void
test_never_past_authds_expiry(void **state)
{
	struct timespec	 pause = { 0, 700 * 1000000 };

	(void)state;
	/* Long enough for a loaded machine to see the hit before it. */
	ok_until(gw_mono_ms() + 500);
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", &ok), 0);
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", NULL), 1);
	nanosleep(&pause, NULL);
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", NULL), 0);
}

static void
test_a_fresh_pam_ok_replaces_the_users_entries(void **state)
{
	(void)state;
	/* bob's old password cached at two addresses, carol's at one. */
	assert_int_equal(login("bob", "192.0.2.1", "old", &ok), 0);
	assert_int_equal(login("bob", "192.0.2.2", "old", &ok), 0);
	assert_int_equal(login("carol", "192.0.2.1", "letmein", &ok), 0);
	/* authd answered from its cache: nothing else changes. */
	assert_int_equal(login("bob", "192.0.2.3", "old", &ok), 0);
	assert_int_equal(login("bob", "192.0.2.1", "old", NULL), 1);
	/* PAM just checked a new password: authd's entry is that one now. */
	ok.ap_cache_fresh = 1;
	assert_int_equal(login("bob", "192.0.2.9", "new", &ok), 0);
	assert_int_equal(login("bob", "192.0.2.1", "old", NULL), 0);
	assert_int_equal(login("bob", "192.0.2.2", "old", NULL), 0);
	assert_int_equal(login("bob", "192.0.2.9", "new", NULL), 1);
	assert_int_equal(login("carol", "192.0.2.1", "letmein", NULL), 1);
}

static void
test_only_password_oks_are_kept(void **state)
{
	char	 long_name[300];

	(void)state;
	ok.ap_valid_s = 3600;		/* a Kerberos ticket's */
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", &ok), 0);
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", NULL), 0);
	ok.ap_valid_s = 0;
	ok.ap_status = AUTH_BUSY;
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", &ok), 0);
	assert_int_equal(login("bob", "192.0.2.1", "hunter2", NULL), 0);
	/* Names and passwords longer than RFC 1929's are never digested. */
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(login(long_name, "192.0.2.1", "pw", NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_answers_what_authd_said, setup),
		cmocka_unit_test_setup(test_another_password_deletes_the_entry,
		    setup),
		cmocka_unit_test_setup(
		    test_an_ok_asked_before_a_refusal_is_not_kept, setup),
		cmocka_unit_test_setup(test_a_refusal_empties_it, setup),
		cmocka_unit_test_setup(test_never_past_authds_expiry, setup),
		cmocka_unit_test_setup(
		    test_a_fresh_pam_ok_replaces_the_users_entries, setup),
		cmocka_unit_test_setup(test_only_password_oks_are_kept, setup),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
