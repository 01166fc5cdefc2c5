/*
 * Unit tests of the configuration parser (values, defaults, every error
 * naming FILE:LINE) and of the destination guard.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gatewayd.h"

/* The guard's callers link these from gatewayd.c and worker.c. */
_Atomic unsigned	 gw_nsessions;
_Atomic uint64_t	 gw_next_sid;

static char	 tmpdir[] = "/tmp/socksgw-conf-XXXXXX";

static char *
write_conf(const char *name, const char *text)
{
	char	*path;
	FILE	*f;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return (path);
}

static void
test_conf_values(void **state)
{
	struct conf	*c;
	char		*path, *cause = NULL;

	(void)state;
	path = write_conf("good.conf",
	    "# comment line\n"
	    "listen 127.0.0.1:1080\n"
	    "listen [::1]:1081   # trailing comment\n"
	    "listen *:1082\n"
	    "auth none\n"
	    "workers 3\n"
	    "handshake_timeout 7\n"
	    "connect_timeout 8\n"
	    "idle_timeout 9\n"
	    "max_sessions 100\n"
	    "relay_buffer 64K\n"
	    "resolv_conf dns/resolv.conf\n"
	    "hosts_file /etc/hosts\n"
	    "user nobody\n"
	    "insecure_allow_loopback_destinations yes\n"
	    "\n   \t\n");
	c = conf_load(path, &cause);
	assert_null(cause);
	assert_non_null(c);
	assert_int_equal(c->c_nlisten, 3);
	assert_string_equal(c->c_listen[0].cl_text, "127.0.0.1:1080");
	assert_string_equal(c->c_listen[1].cl_text, "[::1]:1081");
	assert_string_equal(c->c_listen[2].cl_text, "0.0.0.0:1082");
	assert_int_equal(c->c_workers, 3);
	assert_int_equal(c->c_handshake_timeout, 7);
	assert_int_equal(c->c_connect_timeout, 8);
	assert_int_equal(c->c_idle_timeout, 9);
	assert_int_equal(c->c_max_sessions, 100);
	assert_int_equal(c->c_relay_buffer, 64 * 1024);
	assert_int_equal(c->c_allow_loopback, 1);
	assert_string_equal(c->c_user, "nobody");
	assert_string_equal(c->c_hosts_file, "/etc/hosts");
	/* Relative paths are relative to the configuration's folder. */
	assert_true(strncmp(c->c_resolv_conf, tmpdir, strlen(tmpdir)) == 0);
	assert_string_equal(c->c_resolv_conf + strlen(tmpdir),
	    "/dns/resolv.conf");
	conf_unref(c);
	free(path);
}

static void
test_conf_defaults(void **state)
{
	struct conf	*c;
	char		*path, *cause = NULL;

	(void)state;
	path = write_conf("empty.conf", "# nothing\n");
	c = conf_load(path, &cause);
	assert_non_null(c);
	assert_int_equal(c->c_nlisten, 1);
	assert_string_equal(c->c_listen[0].cl_text, "127.0.0.1:1080");
	assert_int_equal(c->c_auth, AUTH_NONE);
	assert_int_equal(c->c_allow_loopback, 0);
	assert_string_equal(c->c_resolv_conf, "/etc/resolv.conf");
	assert_string_equal(c->c_pam_service, "socksgw");
	conf_unref(c);
	free(path);
}

static void
test_conf_errors(void **state)
{
	struct conf	*c;
	char		*path, *cause = NULL, *want;
	size_t		 i;
	const char	*expect[] = {
		":2: unknown keyword 'lisen'",
		":3: listen 127.0.0.1: missing :PORT",
		":4: listen ::1:80: IPv6 addresses are written [ADDR]:PORT",
		":5: listen 127.0.0.1:70000: bad port",
		":6: workers 0: expected a whole number from 1 to 64",
		":7: handshake_timeout 5s: expected a whole number",
		":8: auth magic: expected none or pam",
		":9: insecure_allow_loopback_destinations maybe: expected yes",
		":10: relay_buffer 12Q: expected a size",
		":11: idle_timeout: missing value",
		":13: workers given twice",
		":14: listen host.example:80: bad IPv4 address",
		":15: auth pam: RFC 1929 authentication through PAM is not "
		    "built yet",
		":16: max_sessions: one value expected, got '1 2'",
	};

	(void)state;
	path = write_conf("bad.conf",
	    "listen 127.0.0.1:1080\n"
	    "lisen 127.0.0.1:1080\n"
	    "listen 127.0.0.1\n"
	    "listen ::1:80\n"
	    "listen 127.0.0.1:70000\n"
	    "workers 0\n"
	    "handshake_timeout 5s\n"
	    "auth magic\n"
	    "insecure_allow_loopback_destinations maybe\n"
	    "relay_buffer 12Q\n"
	    "idle_timeout\n"
	    "workers 2\n"
	    "workers 2\n"
	    "listen host.example:80\n"
	    "auth pam\n"
	    "max_sessions 1 2\n");
	c = conf_load(path, &cause);
	assert_null(c);
	assert_non_null(cause);
	for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_true(asprintf(&want, "%s%s", path, expect[i]) > 0);
		if (strstr(cause, want) == NULL)
			fail_msg("missing \"%s\" in:\n%s", want, cause);
		free(want);
	}
	/* Exactly one line per error. */
	for (i = 0, want = cause; (want = strchr(want, '\n')) != NULL; want++)
		i++;
	assert_int_equal(i + 1, sizeof(expect) / sizeof(expect[0]));
	free(cause);
	free(path);
}

static void
test_conf_missing_file(void **state)
{
	char	*cause = NULL;

	(void)state;
	assert_null(conf_load("/nonexistent/gatewayd.conf", &cause));
	assert_string_equal(cause,
	    "/nonexistent/gatewayd.conf: No such file or directory");
	free(cause);
}

static const char *
guard(const struct conf *c, const char *ip, uint16_t port)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	}
	return (guard_refuse(c, (struct sockaddr *)&ss));
}

static void
test_guard_ranges(void **state)
{
	struct conf	*c = conf_default();
	size_t		 i;
	const char	*refused[] = {
		"127.0.0.1", "127.255.0.9", "0.0.0.0", "0.1.2.3",
		"169.254.169.254", "224.0.0.1", "239.1.1.1", "255.255.255.255",
		"240.0.0.1", "::1", "::", "fe80::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254",
	};
	const char	*allowed[] = {
		"192.0.2.1", "198.51.100.7", "8.8.8.8", "10.1.2.3",
		"2001:db8::1", "::ffff:192.0.2.1", "126.255.255.255",
		"128.0.0.1",
	};

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (guard(c, refused[i], 80) == NULL)
			fail_msg("%s was not refused", refused[i]);
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (guard(c, allowed[i], 80) != NULL)
			fail_msg("%s was refused: %s", allowed[i],
			    guard(c, allowed[i], 80));
	/* The test keyword opens loopback and nothing else. */
	c->c_allow_loopback = 1;
	assert_null(guard(c, "127.0.0.1", 80));
	assert_null(guard(c, "::1", 80));
	assert_null(guard(c, "::ffff:127.0.0.2", 80));
	assert_non_null(guard(c, "169.254.169.254", 80));
	assert_non_null(guard(c, "0.0.0.0", 80));
	conf_unref(c);
}

static void
test_guard_self(void **state)
{
	struct conf		*c = conf_default();
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	char			*cause = NULL;
	int			 fd;
	uint16_t		 port;

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	assert_int_equal(guard_self_init(c, &fd, 1, &cause), 0);
	c->c_allow_loopback = 1;
	/* Our own listening socket is never a destination. */
	assert_non_null(guard(c, "127.0.0.1", port));
	assert_non_null(guard(c, "::ffff:127.0.0.1", port));
	assert_null(guard(c, "127.0.0.1", (uint16_t)(port + 1)));
	assert_null(guard(c, "127.0.0.2", port));
	/* A remote host on the same port is someone else's. */
	assert_null(guard(c, "192.0.2.1", port));
	guard_self_free();
	close(fd);
	conf_unref(c);
}

static int
setup(void **state)
{
	(void)state;
	return (mkdtemp(tmpdir) == NULL ? -1 : 0);
}

static int
teardown(void **state)
{
	char	 cmd[64];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return (system(cmd) == 0 ? 0 : -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_values),
		cmocka_unit_test(test_conf_defaults),
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_conf_missing_file),
		cmocka_unit_test(test_guard_ranges),
		cmocka_unit_test(test_guard_self),
	};

	log_init(0, "test");
	return (cmocka_run_group_tests(tests, setup, teardown));
}
