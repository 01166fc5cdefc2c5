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

#include "conf.h"
#include "log.h"

#include "base/guard.h"

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
	    "timezone Europe/Paris\n"
	    "geoip_country_path country_code\n"
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
	assert_string_equal(c->c_timezone, "Europe/Paris");
	assert_string_equal(c->c_geoip_path, "country_code");
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
	assert_string_equal(c->c_resolv_conf, "/etc/resolv.conf");
	/* The policy database sits beside the configuration. */
	assert_true(strncmp(c->c_policy_db, tmpdir, strlen(tmpdir)) == 0);
	assert_string_equal(c->c_policy_db + strlen(tmpdir), "/policy.db");
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
		":8: auth magic: expected none, or pam and/or gssapi",
		":9: log_verbose maybe: expected yes",
		":10: relay_buffer 12Q: expected a size",
		":11: idle_timeout: missing value",
		":13: workers given twice",
		":14: listen host.example:80: bad IPv4 address",
		":15: auth_workers 0: expected a whole number from 1 to 64",
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
	    "log_verbose maybe\n"
	    "relay_buffer 12Q\n"
	    "idle_timeout\n"
	    "workers 2\n"
	    "workers 2\n"
	    "listen host.example:80\n"
	    "auth_workers 0\n"
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

/* A configuration that must be refused, with want in the cause. */
static void
conf_refused(const char *text, const char *want)
{
	char	*path, *cause = NULL;

	path = write_conf("auth.conf", text);
	assert_null(conf_load(path, &cause));
	if (strstr(cause, want) == NULL)
		fail_msg("missing \"%s\" in:\n%s", want, cause);
	free(cause);
	free(path);
}

/* auth is a set of methods; Kerberos needs its keytab and service. */
static void
test_conf_auth_methods(void **state)
{
	struct conf	*c;
	char		*path, *cause = NULL;

	(void)state;
	path = write_conf("auth.conf", "auth pam gssapi\n"
	    "krb5_keytab /etc/socksgw/http.keytab\n"
	    "krb5_service HTTP/proxy.example.org\n");
	assert_non_null(c = conf_load(path, &cause));
	assert_int_equal(c->c_auth, AUTH_PAM | AUTH_GSSAPI);
	assert_string_equal(c->c_krb5_service, "HTTP/proxy.example.org");
	conf_unref(c);
	free(path);
	conf_refused("auth gssapi\n",
	    ":1: auth gssapi needs krb5_keytab and krb5_service");
	conf_refused("auth none pam\n",
	    ":1: auth none pam: none cannot go with a login method");
	conf_refused("auth gssapi\nkrb5_keytab /k\n"
	    "krb5_service proxy.example.org\n",
	    ":3: krb5_service proxy.example.org: expected service/host");
	conf_refused("auth gssapi\nkrb5_keytab /k\nkrb5_service HTTP/p\n"
	    "socks4 yes\n", ":4: socks4 yes cannot go with auth gssapi");
}

/* A listener behind a load balancer, and the addresses replies name. */
static void
test_conf_proxy_protocol(void **state)
{
	struct conf	*c;
	char		*path, *cause = NULL;

	(void)state;
	path = write_conf("proxy.conf", "listen 127.0.0.1:1080\n"
	    "listen 10.0.0.5:1081   proxy_protocol\n"
	    "proxy_trusted 10.0.0.2 10.0.1.0/24\n"
	    "advertise 198.51.100.5 2001:db8::5\n");
	assert_non_null(c = conf_load(path, &cause));
	assert_int_equal(c->c_nlisten, 2);
	assert_int_equal(c->c_listen[0].cl_proxy, 0);
	assert_int_equal(c->c_listen[1].cl_proxy, 1);
	assert_string_equal(c->c_listen[1].cl_text, "10.0.0.5:1081");
	assert_int_equal(c->c_proxy_trusted.cc_n, 2);
	assert_int_equal(c->c_proxy_timeout, 3);
	assert_int_equal(c->c_proxy_pending, 1024);
	assert_int_equal(c->c_advertise.cc_n, 2);
	conf_unref(c);
	free(path);
	/* No balancer named: nobody may say who a client is. */
	conf_refused("listen 10.0.0.5:1081 proxy_protocol\n",
	    ":1: listen 10.0.0.5:1081 proxy_protocol needs proxy_trusted");
	conf_refused("listen 10.0.0.5:1081 proxy\nproxy_trusted 10.0.0.2\n",
	    ":1: listen 10.0.0.5:1081 proxy: unknown option");
	conf_refused("advertise 198.51.100.0/24\n",
	    ":1: advertise: one address per family");
	conf_refused("advertise 198.51.100.5 198.51.100.6\n",
	    ":1: advertise: one address per family");
	/* A node name every sink takes as it is. */
	conf_refused("node_name gw\"1\n", ":1: node_name gw\"1: 1 to 64");
	conf_refused("node_name "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    ":1: node_name");
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

static void
sockaddr_of(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	}
}

static int
listener(const char *ip, uint16_t port)
{
	struct sockaddr_storage	 ss;

	sockaddr_of(ip, port, &ss);
	return (guard_is_listener((struct sockaddr *)&ss));
}

static void
test_guard_listeners(void **state)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	socklen_t		 len = sizeof(sin);
	char			*cause = NULL;
	const struct sockaddr_storage *self;
	size_t			 nself;
	int			 fd[2];
	uint16_t		 port, port6;

	(void)state;
	fd[0] = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd[0], (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd[0], (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	/* A wildcard IPv6 listener stands for every local address. */
	fd[1] = socket(AF_INET6, SOCK_STREAM, 0);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	len = sizeof(sin6);
	assert_int_equal(bind(fd[1], (struct sockaddr *)&sin6, sizeof(sin6)),
	    0);
	assert_int_equal(getsockname(fd[1], (struct sockaddr *)&sin6, &len),
	    0);
	port6 = ntohs(sin6.sin6_port);
	assert_int_equal(guard_self_init(fd, 2, &cause), 0);

	assert_true(listener("127.0.0.1", port));
	assert_true(listener("::ffff:127.0.0.1", port));
	assert_false(listener("127.0.0.1", (uint16_t)(port + 1)));
	assert_false(listener("192.0.2.1", port));
	assert_true(listener("::1", port6));
	assert_true(listener("127.0.0.5", port6));
	/* A remote host on the same port is someone else's. */
	assert_false(listener("192.0.2.1", port6));
	assert_false(listener("2001:db8::1", port6));
	/* The own addresses go to the policy as special destinations. */
	self = guard_self_addrs(&nself);
	assert_true(nself >= 2);
	assert_int_equal(self[0].ss_family, AF_INET);
	guard_self_free();
	close(fd[0]);
	close(fd[1]);
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
		cmocka_unit_test(test_conf_auth_methods),
		cmocka_unit_test(test_conf_proxy_protocol),
		cmocka_unit_test(test_conf_missing_file),
		cmocka_unit_test(test_guard_listeners),
	};

	log_init(0, "test");
	return (cmocka_run_group_tests(tests, setup, teardown));
}
