/*
 * Unit tests of escape.c: each sink's rules on hostile text (controls,
 * bidirectional overrides, invalid and overlong UTF-8, separators), and
 * that no output is ever cut inside an escape or a character.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"

typedef size_t (*esc_fn)(char *, size_t, const char *);

static void
check(esc_fn fn, const char *in, const char *want)
{
	char	 out[256];
	size_t	 n = fn(out, sizeof(out), in);

	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void
test_log(void **state)
{
	(void)state;
	check(esc_log, "alice", "alice");
	check(esc_log, "a\nb\rc\td", "a\\nb\\rc\\td");
	check(esc_log, "back\\slash", "back\\\\slash");
	check(esc_log, "\x1b[2J\x07\x7f", "\\x1b[2J\\x07\\x7f");
	check(esc_log, "caf\xc3\xa9", "caf\xc3\xa9");		/* é kept */
	check(esc_log, "\xc2\x9b" "31m", "\\xc2\\x9b31m");	/* C1 CSI */
	check(esc_log, "a\xe2\x80\xae" "b", "a\\xe2\\x80\\xaeb");	/* RLO */
	check(esc_log, "\xff" "\xfe", "\\xff\\xfe");
	check(esc_log, "\xc0\xaf", "\\xc0\\xaf");		/* overlong / */
	check(esc_log, "\xed\xa0\x80", "\\xed\\xa0\\x80");	/* surrogate */
	check(esc_log, "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
	check(esc_log, "\xe2\x82", "\\xe2\\x82");		/* cut short */
	check(esc_log, "q\"]", "q\"]");
}

static void
test_sd(void **state)
{
	(void)state;
	check(esc_sd, "x\" verdict=\"allow\"]", "x\\\" verdict=\\\"allow\\\"\\]");
	check(esc_sd, "a\\b", "a\\\\b");
	check(esc_sd, "a\nb", "a\\nb");
}

static void
test_json(void **state)
{
	(void)state;
	check(esc_json, "alice", "\"alice\"");
	check(esc_json, "q\"\\", "\"q\\\"\\\\\"");
	check(esc_json, "\x01\n", "\"\\u0001\\n\"");
	check(esc_json, "bad\xff", "\"bad\\ufffd\"");
	check(esc_json, "\xe2\x80\xa8", "\"\\u2028\"");
	check(esc_json, "\xc2\x85", "\"\\u0085\"");
	check(esc_json, "\xe6\x97\xa5", "\"\xe6\x97\xa5\"");
}

static void
test_csv(void **state)
{
	(void)state;
	check(esc_csv, "plain", "plain");
	check(esc_csv, "a,b", "\"a,b\"");
	check(esc_csv, "say \"hi\"", "\"say \"\"hi\"\"\"");
	check(esc_csv, "=1+2", "\"'=1+2\"");
	check(esc_csv, "+1", "\"'+1\"");
	check(esc_csv, "-1", "\"'-1\"");
	check(esc_csv, "@SUM(A1)", "\"'@SUM(A1)\"");
	check(esc_csv, "a\r\nb", "a\\r\\nb");
	check(esc_csv, "", "");
}

/* Every output size: terminated, within bounds, never cut mid-escape. */
static void
test_truncation(void **state)
{
	static const esc_fn	 fns[] = { esc_log, esc_sd, esc_json, esc_csv };
	const char		*in = "=a\xc3\xa9\n\"]\xff,\xe6\x97\xa5z";
	char			 full[128], out[128];
	size_t			 f, len, n;

	(void)state;
	for (f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
		fns[f](full, sizeof(full), in);
		for (len = 1; len < sizeof(full); len++) {
			memset(out, 'Z', sizeof(out));
			n = fns[f](out, len, in);
			assert_true(n < len);
			assert_int_equal(out[n], '\0');
			assert_int_equal(strlen(out), n);
			/* A prefix of the whole, up to the closing quote. */
			if (fns[f] == esc_log || fns[f] == esc_sd) {
				assert_memory_equal(out, full, n);
				assert_true(full[n] == '\0' || full[n] == '\\' ||
				    (full[n] & 0xc0) != 0x80);
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_sd),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_truncation),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
