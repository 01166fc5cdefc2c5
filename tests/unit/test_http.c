/*
 * Unit tests of the HTTP CONNECT codec (gatewayd/front/http.c): targets,
 * Basic credentials, every refusal class, each proper prefix of a valid
 * head ("need more", never an error or an over-read), and responses.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

static int
parse(const char *text, struct http_request *req)
{
	size_t	 len = strlen(text);
	uint8_t	*copy = malloc(len ? len : 1);	/* ASan sees an over-read */
	int	 r;

	memcpy(copy, text, len);
	r = http_parse_request(copy, len, req);
	free(copy);
	return (r);
}

static void
test_targets(void **state)
{
	struct http_request	 req;
	const struct sockaddr_in6 *sin6 =
	    (const struct sockaddr_in6 *)&req.hr_addr;
	const struct sockaddr_in *sin =
	    (const struct sockaddr_in *)&req.hr_addr;
	const char		*t;

	(void)state;
	t = "CONNECT www.example.org:443 HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(parse(t, &req), (int)strlen(t));
	assert_string_equal(req.hr_host, "www.example.org");
	assert_int_equal(req.hr_port, 443);
	assert_int_equal(req.hr_is_addr, 0);
	assert_int_equal(req.hr_auth, HTTP_AUTH_NONE);

	t = "CONNECT 192.0.2.1:80 HTTP/1.0\r\n\r\n";
	assert_int_equal(parse(t, &req), (int)strlen(t));
	assert_int_equal(req.hr_is_addr, 1);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 80);

	t = "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n";
	assert_int_equal(parse(t, &req), (int)strlen(t));
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 8443);

	/* What follows the head is not the head's. */
	t = "CONNECT a:1 HTTP/1.1\r\n\r\n\x16\x03\x01";
	assert_int_equal(parse(t, &req), (int)strlen(t) - 3);

	assert_int_equal(parse("CONNECT a HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("CONNECT a:x HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("CONNECT a:99999 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("CONNECT :80 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("CONNECT [::1:80 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("CONNECT [nope]:80 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("CONNECT a/b:80 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	/* The names SOCKS refuses: an empty label, two trailing dots. */
	assert_int_equal(parse("CONNECT a..b:80 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("CONNECT a.b..:80 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	t = "CONNECT a.b.:80 HTTP/1.1\r\n\r\n";
	assert_int_equal(parse(t, &req), (int)strlen(t));
}

static void
test_refusals(void **state)
{
	struct http_request	 req;
	char			 big[HTTP_HEAD_MAX + 64];

	(void)state;
	assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_METHOD);
	assert_int_equal(parse("connect a:1 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_METHOD);		/* methods are case-sensitive */
	assert_int_equal(parse("CONNECT a:1 HTTP/1.2\r\n\r\n", &req),
	    HTTP_ERR_VERSION);
	assert_int_equal(parse("CONNECT a:1 HTTQ/1.1\r\n\r\n", &req),
	    HTTP_ERR_MALFORMED);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\n", &req),
	    HTTP_ERR_MALFORMED);	/* bare LF: at once, not at the end */
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\rX", &req),
	    HTTP_ERR_MALFORMED);
	assert_int_equal(parse("CONNECT  a:1 HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_MALFORMED);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\nX : y\r\n\r\n", &req),
	    HTTP_ERR_MALFORMED);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\nX: y\r\n z\r\n\r\n",
	    &req), HTTP_ERR_MALFORMED);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\nContent-Length: 1\r\n"
	    "\r\n", &req), HTTP_ERR_MALFORMED);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\ncontent-length: 0\r\n"
	    "\r\n", &req), (int)strlen("CONNECT a:1 HTTP/1.1\r\ncontent-length:"
	    " 0\r\n\r\n"));
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\ntransfer-encoding: x"
	    "\r\n\r\n", &req), HTTP_ERR_MALFORMED);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "CONNECT a:1 HTTP/1.1\r\nX: ", 25);
	assert_int_equal(parse(big, &req), HTTP_ERR_TOO_LONG);
	/* A head still short of the bound waits. */
	big[HTTP_HEAD_MAX - 1] = '\0';
	assert_int_equal(parse(big, &req), 0);
	assert_int_equal(http_error_status(HTTP_ERR_TOO_LONG), 431);
	assert_int_equal(http_error_status(HTTP_ERR_METHOD), 501);
	assert_int_equal(http_error_status(HTTP_ERR_VERSION), 505);
	assert_int_equal(http_error_status(HTTP_ERR_CREDENTIALS), 400);
}

static void
test_basic(void **state)
{
	struct http_request	 req;

	(void)state;
	/* "alice:s3:cr3t" */
	assert_true(parse("CONNECT a:1 HTTP/1.1\r\nproxy-authorization: "
	    "bAsIc  YWxpY2U6czM6Y3IzdA==\r\n\r\n", &req) > 0);
	assert_int_equal(req.hr_auth, HTTP_AUTH_BASIC);
	assert_string_equal(req.hr_user, "alice");
	assert_string_equal(req.hr_pass, "s3:cr3t");
	/* "ab:c" with no padding, and one with one '=' ("abc:de"). */
	assert_true(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Basic YWI6Yw==\r\n\r\n", &req) > 0);
	assert_string_equal(req.hr_user, "ab");
	assert_string_equal(req.hr_pass, "c");
	assert_true(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Basic YWJjOmRl\r\n\r\n", &req) > 0);
	assert_string_equal(req.hr_pass, "de");
	assert_true(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Negotiate YII=\r\n\r\n", &req) > 0);
	assert_int_equal(req.hr_auth, HTTP_AUTH_OTHER);
	/* No colon; a control byte ("a\x01:b"); bad alphabet; twice. */
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Basic YWJj\r\n\r\n", &req), HTTP_ERR_CREDENTIALS);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Basic YQE6Yg==\r\n\r\n", &req), HTTP_ERR_CREDENTIALS);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Basic YW*6Yw==\r\n\r\n", &req), HTTP_ERR_CREDENTIALS);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Basic YWI6Yw=\r\n\r\n", &req), HTTP_ERR_CREDENTIALS);
	assert_int_equal(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Basic YWI6Yw==\r\nProxy-Authorization: Basic YWI6Yw==\r\n\r\n",
	    &req), HTTP_ERR_MALFORMED);
}

static void
test_pac(void **state)
{
	struct http_request	 req;

	(void)state;
	assert_true(parse("GET /proxy.pac HTTP/1.1\r\nHost: g\r\n\r\n",
	    &req) > 0);
	assert_int_equal(req.hr_kind, HTTP_REQ_PAC);
	assert_int_equal(req.hr_head_only, 0);
	assert_true(parse("HEAD /wpad.dat HTTP/1.0\r\n\r\n", &req) > 0);
	assert_int_equal(req.hr_kind, HTTP_REQ_PAC);
	assert_int_equal(req.hr_head_only, 1);
	assert_int_equal(parse("GET /proxy.pac?x HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_METHOD);
	assert_int_equal(parse("POST /proxy.pac HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_METHOD);
	assert_int_equal(parse("GET http://g/proxy.pac HTTP/1.1\r\n\r\n",
	    &req), HTTP_ERR_METHOD);
	assert_int_equal(parse("GET /proxy.pac HTTP/1.1\r\nContent-Length: "
	    "2\r\n\r\nhi", &req), HTTP_ERR_MALFORMED);
}

static void
test_prefixes(void **state)
{
	const char		*t = "CONNECT [::1]:443 HTTP/1.1\r\n"
	    "Host: [::1]:443\r\nProxy-Authorization: Basic YWI6Yw==\r\n"
	    "User-Agent: t\r\n\r\n";
	struct http_request	 req;
	uint8_t			*copy;
	size_t			 i, len = strlen(t);

	(void)state;
	for (i = 0; i < len; i++) {
		copy = malloc(i ? i : 1);
		memcpy(copy, t, i);
		assert_int_equal(http_parse_request(copy, i, &req), 0);
		free(copy);
	}
	assert_int_equal(parse(t, &req), (int)len);
}

static void
test_responses(void **state)
{
	char	 buf[512];
	size_t	 n;

	(void)state;
	n = http_build_response(buf, sizeof(buf), 200, NULL, NULL);
	assert_int_equal(n, strlen("HTTP/1.1 200 Connection established\r\n"
	    "\r\n"));
	assert_memory_equal(buf, "HTTP/1.1 200 Connection established\r\n\r\n",
	    n);
	n = http_build_response(buf, sizeof(buf), 403, "X-A: b\r\n",
	    "no\r\nSet-Cookie: x\x01\n");
	assert_true(n > 0);
	buf[n] = '\0';
	/* The body cannot add a field: its CR and controls are '?'. */
	assert_non_null(strstr(buf, "Content-Length: 19\r\nConnection: close"
	    "\r\nX-A: b\r\n\r\nno?\nSet-Cookie: x?\n"));
	assert_int_equal(http_build_response(buf, 64, 403, NULL,
	    "a body too long for the buffer it is given"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_pac),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_responses),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
