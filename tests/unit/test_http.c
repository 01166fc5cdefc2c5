/*
 * Unit tests of the HTTP proxy codec (gatewayd/front/http.c): targets,
 * Basic credentials, every refusal class, each proper prefix of a valid
 * head ("need more", never an error or an over-read), responses; and for
 * forwarding: absolute-form URLs, the body's length (every smuggling
 * shape refused), the rebuilt head, and a chunked body's end found
 * whatever the reads' boundaries.
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

#include <cmocka.h>

#include "base64.h"
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
	    HTTP_ERR_URL);		/* methods are case-sensitive */
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

/*
 * Negotiate (RFC 4559): the token is found in the head, not copied; the
 * front end decodes it (b64_decode, with HTTP_TOKEN_MAX as its bound).
 */
static void
test_negotiate(void **state)
{
	struct http_request	 req;
	const char		*head = "CONNECT a:1 HTTP/1.1\r\n"
	    "Proxy-Authorization: Negotiate  YIIBAQ==\r\n\r\n";
	char			*big;
	uint8_t			 out[8];
	uint8_t			*dec;
	size_t			 n, at;

	(void)state;
	assert_true(parse(head, &req) > 0);
	assert_int_equal(req.hr_auth, HTTP_AUTH_NEGOTIATE);
	assert_int_equal(req.hr_token_len, 8);
	assert_memory_equal(head + req.hr_token_at, "YIIBAQ==", 8);
	assert_int_equal(b64_decode((const uint8_t *)head + req.hr_token_at,
	    req.hr_token_len, out, sizeof(out)), 4);
	assert_memory_equal(out, "\x60\x82\x01\x01", 4);
	assert_true(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Negotiate YII*AQ==\r\n\r\n", &req) > 0);
	assert_int_equal(b64_decode((const uint8_t *)"YII*AQ==", 8, out,
	    sizeof(out)), -1);
	assert_int_equal(b64_decode((const uint8_t *)"YIIBA", 5, out,
	    sizeof(out)), -1);
	/* "Negotiate" with no token is a scheme not taken: a 407 asks. */
	assert_true(parse("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: "
	    "Negotiate \r\n\r\n", &req) > 0);
	assert_int_equal(req.hr_auth, HTTP_AUTH_OTHER);
	/* A token at the bound fits the head; one group more does not. */
	n = HTTP_TOKEN_MAX / 3 * 4;
	assert_non_null(big = malloc(n + 256));
	strcpy(big, "CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: Negotiate ");
	at = strlen(big);
	memset(big + at, 'A', n);
	strcpy(big + at + n, "\r\nUser-Agent: a browser of today\r\n\r\n");
	assert_true(parse(big, &req) > 0);
	assert_int_equal(req.hr_token_len, n);
	assert_non_null(dec = malloc(HTTP_TOKEN_MAX + 3));
	assert_int_equal(b64_decode((uint8_t *)big + at, n, dec,
	    HTTP_TOKEN_MAX), HTTP_TOKEN_MAX);
	assert_int_equal(b64_decode((uint8_t *)big + at, n, dec,
	    HTTP_TOKEN_MAX - 1), -1);
	free(dec);
	free(big);
}

/* base64 both ways, and what the decoder refuses. */
static void
test_base64(void **state)
{
	uint8_t		 in[256], back[256];
	char		 text[400];
	size_t		 n, i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 3);
	for (n = 0; n <= 10; n++) {
		assert_int_equal(b64_encode(in, n, text, sizeof(text)),
		    (long)((n + 2) / 3 * 4));
		if (n > 0)
			assert_int_equal(b64_decode((uint8_t *)text,
			    strlen(text), back, sizeof(back)), (long)n);
		assert_memory_equal(in, back, n);
	}
	assert_int_equal(b64_encode(in, 3, text, 4), -1);	/* no NUL room */
	assert_int_equal(b64_decode((const uint8_t *)"QQ=A", 4, back, 8), -1);
	assert_int_equal(b64_decode((const uint8_t *)"Q===", 4, back, 8), -1);
	assert_int_equal(b64_decode((const uint8_t *)"QUJD", 4, back, 2), -1);
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
	    "NTLM TlRMTVNTUAAB\r\n\r\n", &req) > 0);
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
	/* A URL is forwarded to its host, never served from here. */
	assert_true(parse("GET http://g/proxy.pac HTTP/1.1\r\n\r\n", &req) >
	    0);
	assert_int_equal(req.hr_kind, HTTP_REQ_FORWARD);
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

static void
test_urls(void **state)
{
	struct http_request	 req;
	const struct sockaddr_in *sin =
	    (const struct sockaddr_in *)&req.hr_addr;
	const char		*t;

	(void)state;
	t = "GET http://www.example.org/a?b HTTP/1.1\r\nHost: evil\r\n\r\n";
	assert_int_equal(parse(t, &req), (int)strlen(t));
	assert_int_equal(req.hr_kind, HTTP_REQ_FORWARD);
	assert_string_equal(req.hr_host, "www.example.org");
	assert_int_equal(req.hr_port, 80);
	assert_int_equal(req.hr_body, HTTP_BODY_NONE);
	t = "POST HTTP://192.0.2.7:8080 HTTP/1.0\r\nContent-Length: 12\r\n\r\n";
	assert_int_equal(parse(t, &req), (int)strlen(t));
	assert_int_equal(req.hr_is_addr, 1);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(req.hr_body, HTTP_BODY_LENGTH);
	assert_int_equal(req.hr_length, 12);
	assert_int_equal(req.hr_http10, 1);
	t = "GET http://[2001:db8::1]/ HTTP/1.1\r\n\r\n";
	assert_int_equal(parse(t, &req), (int)strlen(t));
	assert_int_equal(req.hr_port, 80);
	t = "GET http://a.b:/ HTTP/1.1\r\n\r\n";	/* empty port: 80 */
	assert_int_equal(parse(t, &req), (int)strlen(t));
	assert_int_equal(req.hr_port, 80);
	assert_int_equal(parse("GET https://a/ HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_URL);
	assert_int_equal(parse("GET ftp://a/ HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_URL);
	assert_int_equal(parse("GET http:// HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_URL);
	/* Userinfo could make a reader see another host. */
	assert_int_equal(parse("GET http://good@evil/ HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_URL);
	assert_int_equal(parse("GET http://a/#x HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_URL);
	assert_int_equal(parse("GET http://a:99999/ HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("GET http://a..b/ HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_TARGET);
	assert_int_equal(parse("GET * HTTP/1.1\r\n\r\n", &req),
	    HTTP_ERR_METHOD);
}

static void
test_lengths(void **state)
{
	struct http_request	 req;
	const char		*t;

	(void)state;
	t = "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n";
	assert_int_equal(parse(t, &req), (int)strlen(t));
	assert_int_equal(req.hr_body, HTTP_BODY_CHUNKED);
	/* RFC 9112 section 6.3: both, two, unreadable, unknown: refused. */
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: "
	    "chunked\r\nContent-Length: 3\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\n"
	    "Content-Length: 3\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nContent-Length: 3, 3"
	    "\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nContent-Length: +3"
	    "\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nContent-Length: "
	    "1234567890123456789\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nContent-Length:\r\n"
	    "\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: "
	    "gzip, chunked\r\n\r\n", &req), HTTP_ERR_CODING);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: "
	    "chunked\r\nTransfer-Encoding: chunked\r\n\r\n", &req),
	    HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.0\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
	    "\r\n", &req), HTTP_ERR_MALFORMED);
	/* CGI servers read '_' as '-': refused, not passed on. */
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\nContent-Length: 2\r\n"
	    "Content_Length: 9\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(parse("POST http://a/ HTTP/1.1\r\ntransfer_encoding: "
	    "chunked\r\n\r\n", &req), HTTP_ERR_LENGTH);
	assert_int_equal(http_error_status(HTTP_ERR_CODING), 501);
	assert_int_equal(http_error_status(HTTP_ERR_LENGTH), 400);
}

static void
test_forward_head(void **state)
{
	const char		*t = "POST http://www.example.org:8080/p?q=1 "
	    "HTTP/1.1\r\nHost: other.example\r\nProxy-Authorization: Basic "
	    "YWI6Yw==\r\nConnection: keep-alive, X-Secret, Content-Length\r\n"
	    "Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nX-Secret: s\r\n"
	    "Upgrade: h2c\r\nTE: trailers\r\nVia: 1.1 a\r\nContent-Length: 2\r\n"
	    "User-Agent: t\r\n\r\n";
	struct http_request	 req;
	char			 out[HTTP_FORWARD_MAX];
	size_t			 n;
	int			 head;

	(void)state;
	head = parse(t, &req);
	assert_int_equal(head, (int)strlen(t));
	n = http_forward_head((const uint8_t *)t, (size_t)head, &req, out,
	    sizeof(out));
	assert_true(n > 0);
	out[n] = '\0';
	/* Content-Length stays though Connection names it: it frames. */
	assert_string_equal(out, "POST /p?q=1 HTTP/1.1\r\n"
	    "Host: www.example.org:8080\r\nVia: 1.1 a\r\nContent-Length: 2\r\n"
	    "User-Agent: t\r\nVia: 1.1 socksgw\r\nConnection: close\r\n\r\n");
	t = "GET http://a?x HTTP/1.0\r\n\r\n";
	head = parse(t, &req);
	n = http_forward_head((const uint8_t *)t, (size_t)head, &req, out,
	    sizeof(out));
	out[n] = '\0';
	assert_string_equal(out, "GET /?x HTTP/1.0\r\nHost: a\r\n"
	    "Via: 1.0 socksgw\r\nConnection: close\r\n\r\n");
	/* Too small a buffer: nothing, not a cut head. */
	assert_int_equal(http_forward_head((const uint8_t *)t, (size_t)head,
	    &req, out, 20), 0);
}

static void
test_response_heads(void **state)
{
	char		 out[HTTP_RESPONSE_MAX + 256], big[HTTP_RESPONSE_MAX + 64];
	size_t		 n = 0;
	int		 status = 0, r;
	const char	*t = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-A\r\n"
	    "X-A: 1\r\nKeep-Alive: 5\r\nProxy-Connection: keep-alive\r\n"
	    "Content-Length: 2\r\nSet-Cookie: a=b\r\n\r\nok";
	const char	*bad[] = {
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 600 X\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
		"HTTP/1.1 200 OK\nX: y\n\n",
		"HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n",
	};
	size_t		 i;

	(void)state;
	r = http_response_head((const uint8_t *)t, strlen(t), out, sizeof(out),
	    &n, &status, 0);
	assert_int_equal(r, (int)strlen(t) - 2);
	assert_int_equal(status, 200);
	out[n] = '\0';
	assert_string_equal(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Set-Cookie: a=b\r\nVia: 1.1 socksgw\r\nConnection: close\r\n"
	    "\r\n");
	/* Kept alive: the same, without the close. */
	r = http_response_head((const uint8_t *)t, strlen(t), out, sizeof(out),
	    &n, &status, 1);
	out[n] = '\0';
	assert_string_equal(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Set-Cookie: a=b\r\nVia: 1.1 socksgw\r\n\r\n");
	/* Interim: no close of its own, the final head says it. */
	t = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
	r = http_response_head((const uint8_t *)t, strlen(t), out, sizeof(out),
	    &n, &status, 0);
	assert_int_equal(status, 100);
	assert_int_equal(r, 25);
	assert_memory_equal(out, "HTTP/1.1 100 Continue\r\n\r\n", n);
	/* Every proper prefix waits; a head past the bound is refused. */
	t = "HTTP/1.0 404 Not Found\r\nX: y\r\n\r\n";
	for (i = 0; i < strlen(t); i++)
		assert_int_equal(http_response_head((const uint8_t *)t, i, out,
		    sizeof(out), &n, &status, 0), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(http_response_head((const uint8_t *)bad[i],
		    strlen(bad[i]), out, sizeof(out), &n, &status, 0), -1);
	memset(big, 'x', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 21);
	assert_int_equal(http_response_head((const uint8_t *)big, sizeof(big),
	    out, sizeof(out), &n, &status, 0), -1);
}

/* Where a response's body ends, or only the server's close can say. */
static void
test_response_body(void **state)
{
	static const struct {
		const char	*head;
		int		 status, head_only, known;
		enum http_body	 kind;
		uint64_t	 left;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length:  12 \r\n\r\n", 200, 0, 1,
		    HTTP_BODY_LENGTH, 12 },
		{ "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n", 200,
		    0, 1, HTTP_BODY_CHUNKED, 0 },
		{ "HTTP/1.1 204 No Content\r\n\r\n", 204, 0, 1,
		    HTTP_BODY_NONE, 0 },
		{ "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
		    304, 0, 1, HTTP_BODY_NONE, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 200, 1, 1,
		    HTTP_BODY_NONE, 0 },
		/* Only the close can end these. */
		{ "HTTP/1.1 200 OK\r\n\r\n", 200, 0, 0, 0, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1"
		    "\r\n\r\n", 200, 0, 0, 0, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: "
		    "chunked\r\n\r\n", 200, 0, 0, 0, 0 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		    200, 0, 0, 0, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 200, 0, 0,
		    0, 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000\r\n"
		    "\r\n", 200, 0, 0, 0, 0 },
	};
	struct http_body_scan	 b;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(http_response_body((const uint8_t *)
		    cases[i].head, strlen(cases[i].head), cases[i].status,
		    cases[i].head_only, &b), cases[i].known);
		if (cases[i].known) {
			assert_int_equal(b.hb_kind, cases[i].kind);
			assert_int_equal(b.hb_left, cases[i].left);
		}
	}
}

/* Feeds body in pieces of step bytes: how many were taken, or -1. */
static long
take_in_steps(enum http_body kind, uint64_t length, const char *body,
    size_t step, int *ended)
{
	struct http_request	 req;
	struct http_body_scan	 b;
	size_t			 len = strlen(body), at = 0, n;
	long			 r, total = 0;
	uint8_t			*copy;

	memset(&req, 0, sizeof(req));
	req.hr_body = kind;
	req.hr_length = length;
	http_body_begin(&b, &req);
	*ended = 0;
	while (at < len && !*ended) {
		n = len - at < step ? len - at : step;
		copy = malloc(n);		/* ASan sees an over-read */
		memcpy(copy, body + at, n);
		r = http_body_take(&b, copy, n, ended);
		free(copy);
		if (r < 0)
			return (-1);
		assert_true((size_t)r <= n);
		if ((size_t)r < n)
			assert_true(*ended);
		total += r;
		at += n;
	}
	return (total);
}

static void
test_chunked(void **state)
{
	const char	*body = "5;ext=a;b\r\nhello\r\n1A\r\n"
	    "abcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
	const char	*bad[] = {
		"\r\n",				/* no size */
		"g\r\n",
		"5\nhello\r\n0\r\n\r\n",	/* bare LF */
		"5\r\nhelloX\r\n0\r\n\r\n",	/* no CRLF after the data */
		"1000000000000000\r\n",		/* 16 digits */
		"80000000\r\n",			/* 2^31: 32-bit servers */
		"000000001\r\n",		/* 9 digits */
		"5 \r\nhello\r\n0\r\n\r\n",	/* whitespace after a size */
		"5;a=\"b c\"\r\n",		/* a quoted extension */
		"0\r\nno colon\r\n\r\n",	/* a trailer line without a name */
		"0\r\n folded\r\n\r\n",		/* obs-fold in a trailer */
		"0\r\nX: \x01\r\n\r\n",
		"0\r\n\rX",
		"5 x\r\n",
	};
	size_t		 len = strlen(body), step, i;
	char		 more[256];
	int		 ended;

	(void)state;
	/* Every way of cutting the body into reads finds the same end. */
	for (step = 1; step <= len; step++) {
		assert_int_equal(take_in_steps(HTTP_BODY_CHUNKED, 0, body, step,
		    &ended), (long)len);
		assert_true(ended);
	}
	/* What follows the body is not the body's: a smuggled request. */
	snprintf(more, sizeof(more), "%sGET http://evil/ HTTP/1.1\r\n\r\n",
	    body);
	for (step = 1; step <= strlen(more); step += 7) {
		assert_int_equal(take_in_steps(HTTP_BODY_CHUNKED, 0, more, step,
		    &ended), (long)len);
		assert_true(ended);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(take_in_steps(HTTP_BODY_CHUNKED, 0, bad[i], 1,
		    &ended), -1);
	/* A chunk-size line longer than the bound. */
	memset(more, '0', sizeof(more) - 1);
	more[sizeof(more) - 1] = '\0';
	assert_int_equal(take_in_steps(HTTP_BODY_CHUNKED, 0, more, 64, &ended),
	    -1);
	/* A length is counted down, the rest is not the body's. */
	assert_int_equal(take_in_steps(HTTP_BODY_LENGTH, 5, "helloGET", 3,
	    &ended), 5);
	assert_true(ended);
	assert_int_equal(take_in_steps(HTTP_BODY_NONE, 0, "GET", 3, &ended), 0);
	assert_true(ended);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_response_body),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_pac),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_forward_head),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_response_heads),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
