/*
 * Unit tests of the RFC 1928 / RFC 1929 codec: every field of every
 * message, every malformed variant, and every message delivered one byte
 * at a time (a parser must say "need more" for each proper prefix, never
 * an error and never a read past the end).
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

#include "socks5.h"

typedef int (*parse_fn)(const uint8_t *, size_t, void *);

/* Feeds msg through parse one prefix at a time, each in a fresh buffer. */
static int
parse_prefixes(parse_fn parse, const uint8_t *msg, size_t len, void *out)
{
	uint8_t	*copy;
	size_t	 i;
	int	 r;

	for (i = 0; i < len; i++) {
		/* An exact-size heap copy: ASan catches any over-read. */
		copy = malloc(i ? i : 1);
		memcpy(copy, msg, i);
		r = parse(copy, i, out);
		free(copy);
		assert_int_equal(r, 0);
	}
	copy = malloc(len);
	memcpy(copy, msg, len);
	r = parse(copy, len, out);
	free(copy);
	return (r);
}

static int
greeting_fn(const uint8_t *b, size_t n, void *o)
{
	return (s5_parse_greeting(b, n, o));
}

static int
userpass_fn(const uint8_t *b, size_t n, void *o)
{
	return (s5_parse_userpass(b, n, o));
}

static int
request_fn(const uint8_t *b, size_t n, void *o)
{
	return (s5_parse_request(b, n, o));
}

static void
test_greeting_fields(void **state)
{
	const uint8_t		 msg[] = { 5, 3, 0x00, 0x02, 0x80, 0xaa };
	struct s5_greeting	 g;

	(void)state;
	/* Trailing bytes (a pipelined request) are not consumed. */
	assert_int_equal(parse_prefixes(greeting_fn, msg, 5, &g), 5);
	assert_int_equal(s5_parse_greeting(msg, sizeof(msg), &g), 5);
	assert_int_equal(g.nmethods, 3);
	assert_int_equal(g.methods[0], 0x00);
	assert_int_equal(g.methods[1], 0x02);
	assert_int_equal(g.methods[2], 0x80);
	assert_int_equal(s5_select_method(&g, S5_METHOD_NONE), 0x00);
	assert_int_equal(s5_select_method(&g, S5_METHOD_USERPASS), 0x02);
	assert_int_equal(s5_select_method(&g, S5_METHOD_GSSAPI),
	    S5_METHOD_UNACCEPTABLE);
}

static void
test_greeting_max(void **state)
{
	uint8_t			 msg[S5_GREETING_MAX];
	struct s5_greeting	 g;
	int			 i;

	(void)state;
	msg[0] = 5;
	msg[1] = 255;
	for (i = 0; i < 255; i++)
		msg[2 + i] = (uint8_t)i;
	assert_int_equal(parse_prefixes(greeting_fn, msg, sizeof(msg), &g),
	    S5_GREETING_MAX);
	assert_int_equal(g.nmethods, 255);
	assert_int_equal(g.methods[254], 254);
}

static void
test_greeting_malformed(void **state)
{
	const uint8_t		 v4[] = { 4, 1, 0 };
	const uint8_t		 v0[] = { 0 };
	const uint8_t		 none[] = { 5, 0 };
	struct s5_greeting	 g;

	(void)state;
	/* The version is judged from the very first byte. */
	assert_int_equal(s5_parse_greeting(v4, 1, &g), S5_ERR_VERSION);
	assert_int_equal(s5_parse_greeting(v4, sizeof(v4), &g),
	    S5_ERR_VERSION);
	assert_int_equal(s5_parse_greeting(v0, sizeof(v0), &g),
	    S5_ERR_VERSION);
	assert_int_equal(s5_parse_greeting(none, sizeof(none), &g),
	    S5_ERR_NO_METHODS);
	assert_int_equal(s5_parse_greeting(none, 0, &g), 0);
}

static void
test_userpass_fields(void **state)
{
	const uint8_t		 msg[] = { 1, 5, 'a', 'l', 'i', 'c', 'e', 3,
				    's', '3', 'c' };
	const uint8_t		 empty[] = { 1, 0, 0 };
	struct s5_userpass	 up;

	(void)state;
	assert_int_equal(parse_prefixes(userpass_fn, msg, sizeof(msg), &up),
	    (int)sizeof(msg));
	assert_int_equal(up.ulen, 5);
	assert_string_equal(up.user, "alice");
	assert_int_equal(up.plen, 3);
	assert_string_equal(up.pass, "s3c");
	/* Empty fields parse; refusing them is the authenticator's job. */
	assert_int_equal(s5_parse_userpass(empty, sizeof(empty), &up), 3);
	assert_string_equal(up.user, "");
	assert_string_equal(up.pass, "");
}

static void
test_userpass_max(void **state)
{
	uint8_t			 msg[S5_USERPASS_MAX];
	struct s5_userpass	 up;

	(void)state;
	msg[0] = 1;
	msg[1] = 255;
	memset(msg + 2, 'u', 255);
	msg[257] = 255;
	memset(msg + 258, 'p', 255);
	assert_int_equal(parse_prefixes(userpass_fn, msg, sizeof(msg), &up),
	    S5_USERPASS_MAX);
	assert_int_equal(strlen(up.user), 255);
	assert_int_equal(strlen(up.pass), 255);
}

static void
test_userpass_malformed(void **state)
{
	const uint8_t		 v5[] = { 5, 1, 'a', 1, 'b' };
	struct s5_userpass	 up;

	(void)state;
	assert_int_equal(s5_parse_userpass(v5, sizeof(v5), &up),
	    S5_ERR_VERSION);
	assert_int_equal(s5_parse_userpass(v5, 1, &up), S5_ERR_VERSION);
}

static void
test_request_ipv4(void **state)
{
	const uint8_t		 msg[] = { 5, 1, 0, 1, 192, 0, 2, 7, 0x1f,
				    0x90 };
	struct s5_request	 req;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&req.addr;

	(void)state;
	assert_int_equal(parse_prefixes(request_fn, msg, sizeof(msg), &req),
	    10);
	assert_int_equal(req.cmd, S5_CMD_CONNECT);
	assert_int_equal(req.atyp, S5_ATYP_IPV4);
	assert_int_equal(req.port, 8080);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc0000207);
}

static void
test_request_ipv6(void **state)
{
	uint8_t			 msg[22] = { 5, 2, 0, 4 };
	struct s5_request	 req;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&req.addr;
	struct in6_addr		 want;

	(void)state;
	inet_pton(AF_INET6, "2001:db8::1", &want);
	memcpy(msg + 4, &want, 16);
	msg[20] = 0x01;
	msg[21] = 0xbb;
	assert_int_equal(parse_prefixes(request_fn, msg, sizeof(msg), &req),
	    22);
	assert_int_equal(req.cmd, S5_CMD_BIND);
	assert_int_equal(req.atyp, S5_ATYP_IPV6);
	assert_int_equal(req.port, 443);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 443);
	assert_memory_equal(&sin6->sin6_addr, &want, 16);
}

static void
test_request_domain(void **state)
{
	const uint8_t		 msg[] = { 5, 3, 0, 3, 11, 'e', 'x', 'a', 'm',
				    'p', 'l', 'e', '.', 'o', 'r', 'g', 0, 80 };
	uint8_t			 longest[S5_REQUEST_MAX];
	struct s5_request	 req;

	(void)state;
	assert_int_equal(parse_prefixes(request_fn, msg, sizeof(msg), &req),
	    (int)sizeof(msg));
	assert_int_equal(req.cmd, S5_CMD_UDP_ASSOCIATE);
	assert_int_equal(req.atyp, S5_ATYP_DOMAIN);
	assert_string_equal(req.name, "example.org");
	assert_int_equal(req.port, 80);

	/* The longest name: 253 bytes in labels of 63, and the root. */
	memcpy(longest, (const uint8_t[]){ 5, 1, 0, 3, 254 }, 5);
	memset(longest + 5, 'a', 254);
	longest[5 + 63] = longest[5 + 127] = longest[5 + 191] = '.';
	longest[5 + 253] = '.';
	longest[259] = 0xff;
	longest[260] = 0xff;
	assert_int_equal(parse_prefixes(request_fn, longest, 261, &req), 261);
	assert_int_equal(strlen(req.name), 254);
	assert_int_equal(req.port, 65535);
}

/* A NUL would make PAM see another name than the one sent. */
static void
test_userpass_nul(void **state)
{
	static const uint8_t	 user[] = { 1, 7, 'a', 'l', 'i', 'c', 'e', 0,
				    'x', 2, 'p', 'w' };
	static const uint8_t	 pass[] = { 1, 1, 'a', 3, 'p', 0, 'w' };
	struct s5_userpass	 up;

	(void)state;
	assert_int_equal(s5_parse_userpass(user, sizeof(user), &up),
	    S5_ERR_CREDENTIALS);
	assert_int_equal(s5_parse_userpass(pass, sizeof(pass), &up),
	    S5_ERR_CREDENTIALS);
}

/*
 * Names the policy and a resolver could read differently are refused:
 * the old codec took "a.blocked.example.." (two trailing dots), which
 * the matcher and the resolver disagree about.
 */
static void
test_request_names(void **state)
{
	static const struct {
		const char	*name;
		int		 ok;
	} names[] = {
		{ "example.org", 1 }, { "example.org.", 1 }, { "_dmarc.x-y.z", 1 },
		{ "intranet", 1 }, { "1.2.3.4", 1 },
		{ "a.blocked.example..", 0 }, { "a..b", 0 }, { ".a", 0 },
		{ ".", 0 }, { "..", 0 }, { "a b", 0 }, { "a\"b", 0 },
		{ "a]b", 0 }, { "caf\xc3\xa9.example", 0 }, { "a/b", 0 },
		{ "a:80", 0 }, { "a%2e", 0 }, { "*.example", 0 },
	};
	uint8_t			 msg[S5_REQUEST_MAX];
	struct s5_request	 req;
	size_t			 i, n;
	char			 label[80];

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		n = strlen(names[i].name);
		memcpy(msg, (const uint8_t[]){ 5, 1, 0, 3, (uint8_t)n }, 5);
		memcpy(msg + 5, names[i].name, n);
		msg[5 + n] = 0;
		msg[6 + n] = 80;
		assert_int_equal(s5_parse_request(msg, n + 7, &req),
		    names[i].ok ? (int)n + 7 : S5_ERR_DOMAIN);
	}
	/* A label of 64 bytes, a name of 254 without the root. */
	memset(label, 'a', 64);
	memcpy(msg, (const uint8_t[]){ 5, 1, 0, 3, 64 }, 5);
	memcpy(msg + 5, label, 64);
	msg[69] = 0;
	msg[70] = 80;
	assert_int_equal(s5_parse_request(msg, 71, &req), S5_ERR_DOMAIN);
	memcpy(msg, (const uint8_t[]){ 5, 1, 0, 3, 254 }, 5);
	memset(msg + 5, 'a', 254);
	msg[5 + 63] = msg[5 + 127] = msg[5 + 191] = '.';
	msg[259] = 0;
	msg[260] = 80;
	assert_int_equal(s5_parse_request(msg, 261, &req), S5_ERR_DOMAIN);
}

static void
test_request_malformed(void **state)
{
	struct {
		uint8_t	 msg[12];
		size_t	 len;
		int	 err;
		uint8_t	 rep;
	} cases[] = {
		{ { 4, 1, 0, 1, 1, 2, 3, 4, 0, 80 }, 10, S5_ERR_VERSION,
		    S5_REP_GENERAL_FAILURE },
		{ { 5, 0, 0, 1, 1, 2, 3, 4, 0, 80 }, 10, S5_ERR_COMMAND,
		    S5_REP_CMD_UNSUPPORTED },
		{ { 5, 4, 0, 1, 1, 2, 3, 4, 0, 80 }, 10, S5_ERR_COMMAND,
		    S5_REP_CMD_UNSUPPORTED },
		{ { 5, 1, 1, 1, 1, 2, 3, 4, 0, 80 }, 10, S5_ERR_RESERVED,
		    S5_REP_GENERAL_FAILURE },
		{ { 5, 1, 0, 2, 1, 2, 3, 4, 0, 80 }, 10, S5_ERR_ATYP,
		    S5_REP_ATYP_UNSUPPORTED },
		{ { 5, 1, 0, 0 }, 4, S5_ERR_ATYP, S5_REP_ATYP_UNSUPPORTED },
		{ { 5, 1, 0, 3, 0, 0, 80 }, 7, S5_ERR_DOMAIN,
		    S5_REP_GENERAL_FAILURE },
		{ { 5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80 }, 10, S5_ERR_DOMAIN,
		    S5_REP_GENERAL_FAILURE },
		{ { 5, 1, 0, 3, 3, 'a', ' ', 'b', 0, 80 }, 10, S5_ERR_DOMAIN,
		    S5_REP_GENERAL_FAILURE },
		{ { 5, 1, 0, 3, 2, 'a', '\n', 0, 80 }, 9, S5_ERR_DOMAIN,
		    S5_REP_GENERAL_FAILURE },
	};
	struct s5_request	 req;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(s5_parse_request(cases[i].msg, cases[i].len,
		    &req), cases[i].err);
		assert_int_equal(s5_error_reply(cases[i].err), cases[i].rep);
		assert_non_null(s5_strerror(cases[i].err));
	}
	/* Errors in the fixed header come before the whole message. */
	assert_int_equal(s5_parse_request((const uint8_t[]){ 5, 9 }, 2, &req),
	    S5_ERR_COMMAND);
	assert_int_equal(s5_parse_request((const uint8_t[]){ 5, 1, 0, 7 }, 4,
	    &req), S5_ERR_ATYP);
}

static void
test_reply_build(void **state)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	uint8_t			 out[S5_REPLY_MAX];
	const uint8_t		 want4[] = { 5, 0, 0, 1, 10, 0, 0, 1, 0x04,
				    0x38 };
	const uint8_t		 wantnull[] = { 5, 5, 0, 1, 0, 0, 0, 0, 0, 0 };

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(1080);
	sin.sin_addr.s_addr = htonl(0x0a000001);
	assert_int_equal(s5_build_reply(out, 0, (struct sockaddr *)&sin), 10);
	assert_memory_equal(out, want4, 10);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(443);
	inet_pton(AF_INET6, "2001:db8::2", &sin6.sin6_addr);
	assert_int_equal(s5_build_reply(out, S5_REP_SUCCEEDED,
	    (struct sockaddr *)&sin6), 22);
	assert_int_equal(out[3], S5_ATYP_IPV6);
	assert_memory_equal(out + 4, &sin6.sin6_addr, 16);
	assert_int_equal(out[20], 0x01);
	assert_int_equal(out[21], 0xbb);

	assert_int_equal(s5_build_reply(out, S5_REP_CONN_REFUSED, NULL), 10);
	assert_memory_equal(out, wantnull, 10);
}

static void
test_socks4(void **state)
{
	const uint8_t		 v4[] = { 4, 1, 0, 80, 192, 0, 2, 1, 'b', 'o',
				    'b', 0 };
	const uint8_t		 v4a[] = { 4, 2, 0x1f, 0x90, 0, 0, 0, 9, 0,
				    'w', 'w', 'w', '.', 'x', 0 };
	uint8_t			 toolong[8 + 300];
	struct s4_request	 req;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&req.addr;
	uint8_t			 out[S4_REPLY_LEN];

	(void)state;
	assert_int_equal(parse_prefixes((parse_fn)s4_parse_request, v4,
	    sizeof(v4), &req), (int)sizeof(v4));
	assert_int_equal(req.cmd, S4_CMD_CONNECT);
	assert_int_equal(req.port, 80);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc0000201);
	assert_string_equal(req.userid, "bob");
	assert_string_equal(req.name, "");
	assert_int_equal(parse_prefixes((parse_fn)s4_parse_request, v4a,
	    sizeof(v4a), &req), (int)sizeof(v4a));
	assert_int_equal(req.cmd, S4_CMD_BIND);
	assert_int_equal(req.port, 8080);
	assert_string_equal(req.userid, "");
	assert_string_equal(req.name, "www.x");
	assert_int_equal(s4_parse_request((const uint8_t[]){ 4, 3 }, 2, &req),
	    S5_ERR_COMMAND);
	assert_int_equal(s4_parse_request((const uint8_t[]){ 5 }, 1, &req),
	    S5_ERR_VERSION);
	memset(toolong, 'u', sizeof(toolong));
	memcpy(toolong, v4, 8);
	assert_int_equal(s4_parse_request(toolong, sizeof(toolong), &req),
	    S5_ERR_TOO_LONG);
	s4_build_reply(out, S4_GRANTED, NULL);
	assert_memory_equal(out, ((const uint8_t[]){ 0, 0x5a, 0, 0, 0, 0, 0,
	    0 }), 8);
}

static void
test_udp_header(void **state)
{
	const uint8_t		 v4[] = { 0, 0, 0, 1, 127, 0, 0, 1, 0, 53, 'q' };
	const uint8_t		 name[] = { 0, 0, 2, 3, 3, 'a', '.', 'b', 1, 0,
				    'q' };
	struct s5_udp_header	 h;
	struct sockaddr_in	 sin;
	uint8_t			 out[S5_REPLY_MAX];

	(void)state;
	assert_int_equal(s5_parse_udp_header(v4, sizeof(v4), &h), 10);
	assert_int_equal(h.frag, 0);
	assert_int_equal(h.port, 53);
	assert_int_equal(s5_parse_udp_header(name, sizeof(name), &h), 10);
	assert_int_equal(h.frag, 2);
	assert_string_equal(h.name, "a.b");
	assert_int_equal(h.port, 256);
	assert_true(s5_parse_udp_header(v4, 9, &h) < 0);
	assert_int_equal(s5_parse_udp_header((const uint8_t[]){ 0, 0, 0, 9,
	    1, 2 }, 6, &h), S5_ERR_ATYP);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(53);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	assert_int_equal(s5_build_udp_header(out, (struct sockaddr *)&sin),
	    10);
	assert_memory_equal(out, v4, 10);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(s5_reply_str(S5_REP_TTL_EXPIRED), "TTL expired");
	assert_string_equal(s5_reply_str(0x09), "unassigned");
	assert_string_equal(s5_cmd_str(S5_CMD_CONNECT), "connect");
	assert_string_equal(s5_cmd_str(S5_CMD_UDP_ASSOCIATE), "udp");
}

/* RFC 1961: a frame of the type due, its token in place; the rest refused. */
static void
test_gss_frame(void **state)
{
	uint8_t			 msg[S5_GSS_HEADER + 300], h[S5_GSS_HEADER];
	const uint8_t		 abort_[] = { 1, 0xff };
	const uint8_t		 v5[] = { 5, 3, 0, 1, 'x' };
	const uint8_t		 other[] = { 1, 2, 0, 1, 'x' };
	struct s5_gss_frame	 f;
	size_t			 k;

	(void)state;
	s5_build_gss_header(msg, S5_GSS_DATA, 300);
	memset(msg + S5_GSS_HEADER, 't', 300);
	for (k = 0; k < sizeof(msg); k++)
		assert_int_equal(s5_parse_gss_frame(msg, k, S5_GSS_DATA, &f),
		    0);
	assert_int_equal(s5_parse_gss_frame(msg, sizeof(msg), S5_GSS_DATA,
	    &f), (int)sizeof(msg));
	assert_int_equal(f.len, 300);
	assert_ptr_equal(f.token, msg + S5_GSS_HEADER);
	assert_memory_equal(msg, "\x01\x03\x01\x2c", 4);
	/* The largest token: its length in both bytes. */
	s5_build_gss_header(h, S5_GSS_AUTH, S5_GSS_TOKEN_MAX);
	assert_memory_equal(h, "\x01\x01\xff\xff", 4);
	/* An abort, another version or another type: never skipped. */
	assert_int_equal(s5_parse_gss_frame(abort_, sizeof(abort_),
	    S5_GSS_DATA, &f), S5_ERR_GSS_ABORT);
	assert_int_equal(s5_parse_gss_frame(v5, sizeof(v5), S5_GSS_DATA, &f),
	    S5_ERR_VERSION);
	assert_int_equal(s5_parse_gss_frame(other, 2, S5_GSS_DATA, &f),
	    S5_ERR_GSS_TYPE);
	assert_string_equal(s5_strerror(S5_ERR_GSS_TYPE),
	    "GSSAPI: not the message type expected");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_fields),
		cmocka_unit_test(test_greeting_max),
		cmocka_unit_test(test_greeting_malformed),
		cmocka_unit_test(test_userpass_fields),
		cmocka_unit_test(test_userpass_max),
		cmocka_unit_test(test_userpass_malformed),
		cmocka_unit_test(test_request_ipv4),
		cmocka_unit_test(test_request_ipv6),
		cmocka_unit_test(test_request_domain),
		cmocka_unit_test(test_request_malformed),
		cmocka_unit_test(test_request_names),
		cmocka_unit_test(test_userpass_nul),
		cmocka_unit_test(test_reply_build),
		cmocka_unit_test(test_socks4),
		cmocka_unit_test(test_udp_header),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_gss_frame),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
